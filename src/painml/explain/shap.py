"""Why the model decides as it does: SHAP values in the clinician's vocabulary.

What is explained, exactly. Both families produce one raw score per class
(LightGBM's raw margin, the logistic model's decision function) and the
bundle's temperature calibration turns them into probabilities as
``p = softmax(beta * raw)``. Every value here is scaled by ``beta``
(:attr:`painml.model.bundle.ModelBundle.temperature_factor`), so for each row and
class ``k``::

    base_values[k] + values[:, k].sum() == beta * raw_k   (the calibrated logit of k)
    softmax(base_values + values.sum(axis=features)) == the calibrated probabilities

The calibrated logit of a class is its log-odds up to one constant per row
(the same for every class), so the difference of two classes' totals is
exactly ``log(p_k / p_l)``. Values are therefore "log-odds of <class>" and the
plots say so. When the bundle is calibrated by something other than
temperature, the uncalibrated model's log-odds are explained and
:attr:`RawExplanation.scale` says so.

- Boosted model: exact TreeSHAP on the encoded matrix, via LightGBM's native
  ``pred_contrib`` (the same numbers as ``shap.TreeExplainer``, which calls it
  for LightGBM; :func:`tree_explainer_values` is kept to check that).
- Logistic model: exact linear SHAP, ``coef[k, j] * (x_j - mean_j)`` with the
  training mean of each encoded column as background. Every encoded column of
  the logistic pipeline ends in a ``StandardScaler`` fitted on the training
  rows, so that mean is 0; a bundle may also carry explicit means under the
  metadata key :data:`FEATURE_MEANS_KEY`.

:func:`fold` sums encoded columns (one-hot levels, missing-value indicators)
back to the record column they came from, using the encoders' fitted state
(:func:`painml.features.encoding.feature_sources`); screening scores stay as their own
features. :func:`top_reasons` gives the top reasons per row from the estimator
(for the boosted model walking only the explained class's trees,
:func:`class_boosters`); the predictor computes the same reasons from its
compiled model (:mod:`painml.model.compiled.trees`), and a test keeps the two equal.

The plots are in :mod:`painml.explain.plots`, the words in
:mod:`painml.record.vocabulary`; writing and logging them is the explain job's
(:mod:`painml.jobs.explain`).
"""

from __future__ import annotations

import re
import warnings
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import lightgbm
import numpy as np
import pandas as pd

from painml.explain.reasons import Reason, fold_matrix, folded_names, largest
from painml.features import screening
from painml.features.encoding import feature_sources
from painml.model.background import fill_unknown_means, known_means
from painml.model.bundle import ModelBundle
from painml.record.columns import BY_NAME, FEATURE_COLUMNS
from painml.record.vocabulary import AWAY, TOWARDS, display_name, display_value, plain, reason_label

__all__ = [
    "Bar",
    "Example",
    "Explanation",
    "RawExplanation",
    "class_values",
    "explain",
    "fold",
    "pick_examples",
    "shap_values",
    "top_reasons",
    "waterfall",
    "what_if_recorded",
]


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, eq=False)
class _Additive:
    """Contributions per row, feature and class that add up, with the base values, to calibrated logits."""

    values: np.ndarray
    base_values: np.ndarray
    feature_names: list[str]
    data: pd.DataFrame
    classes: list[str]
    scale: str

    @property
    def logits(self) -> np.ndarray:
        """Base plus contributions: (rows, classes) calibrated logits, additive by construction."""
        return self.base_values + self.values.sum(axis=1)

    @property
    def proba(self) -> np.ndarray:
        return _softmax(self.logits)


class RawExplanation(_Additive):
    """SHAP values of the encoded features (what the model itself sees).

    ``values`` (rows, encoded features, classes) and ``base_values`` (rows,
    classes) are in calibrated log-odds, classes in ``classes`` order (the
    bundle's label order, not the estimator's alphabetical one).
    """


class Explanation(_Additive):
    """SHAP values folded back to the record's columns and the screening scores.

    ``data`` holds each feature's recorded value (text for categories, NaN
    when missing) on the input's index; ``labels()`` gives readable
    "name: value" strings. Totals are those of the :class:`RawExplanation`.
    """

    @property
    def predicted(self) -> np.ndarray:
        """Index of the most probable class per row."""
        return self.logits.argmax(axis=1)

    @property
    def display_names(self) -> list[str]:
        return [display_name(f) for f in self.feature_names]

    def label(self, row: int, feature: str) -> str:
        return reason_label(feature, self.data[feature].iloc[row])

    def labels(self) -> np.ndarray:
        """(rows, features) array of "name: value" strings."""
        out = np.empty((len(self.data), len(self.feature_names)), dtype=object)
        for j, f in enumerate(self.feature_names):
            name = display_name(f)
            out[:, j] = [f"{name}: {display_value(f, v)}" for v in self.data[f].to_numpy()]
        return out

    def for_class(self, k: int | str):
        """A ``shap.Explanation`` for one class (values (rows, features)), for shap's own plots."""
        # lazy: the shap library takes seconds to import and only this helper needs it
        import shap

        k = self.classes.index(k) if isinstance(k, str) else k
        return shap.Explanation(
            values=self.values[:, :, k],
            base_values=self.base_values[:, k],
            data=numeric_data(self),
            feature_names=self.display_names,
            output_names=[f"log-odds of {self.classes[k]}"],
        )


# --------------------------------------------------------------------------- SHAP values


def shap_values(bundle: ModelBundle, features: pd.DataFrame) -> RawExplanation:
    """Exact SHAP values of the encoded features in calibrated log-odds, for every class."""
    enc = _encode(bundle, features)
    if enc.family == "gbm":
        values, base = _tree_values(enc.model, enc.matrix)
    else:
        values, base = _linear_values(bundle, enc.transformer, enc.model, enc.matrix, enc.names)
    values, base = values[:, :, enc.order] * enc.beta, base[:, enc.order] * enc.beta
    return RawExplanation(values, base, enc.names, enc.encoded, list(bundle.classes), enc.scale)


@dataclass(frozen=True, eq=False)
class _Encoded:
    transformer: Any
    model: Any
    family: str
    encoded: pd.DataFrame
    names: list[str]
    matrix: np.ndarray
    order: list[int]
    """Position in the model's classes_ of each of the bundle's classes."""
    beta: float
    scale: str


def _encode(bundle: ModelBundle, features: pd.DataFrame) -> _Encoded:
    pipeline = bundle.pipeline
    transformer, model = pipeline.named_steps["features"], pipeline.named_steps["model"]
    encoded = transformer.transform(_inputs(transformer, features))
    family = "gbm" if hasattr(model, "booster_") else "logistic" if hasattr(model, "coef_") else None
    if family is None:
        raise ValueError(f"cannot explain a {type(model).__name__} (family {bundle.metadata.family!r})")
    model_classes = [str(c) for c in model.classes_]
    missing = [c for c in bundle.classes if c not in model_classes]
    if missing:
        raise ValueError(f"the model does not know the classes {missing}")
    beta = bundle.temperature_factor
    if beta is None:
        warnings.warn(
            "the bundle is not calibrated by temperature: explaining the uncalibrated model's log-odds",
            UserWarning,
            stacklevel=3,
        )
        beta, scale = 1.0, "uncalibrated model log-odds"
    else:
        scale = "calibrated log-odds"
    return _Encoded(
        transformer,
        model,
        family,
        encoded,
        [str(c) for c in encoded.columns],
        encoded.to_numpy(dtype=np.float64),
        [model_classes.index(c) for c in bundle.classes],
        float(beta),
        scale,
    )


def _inputs(transformer, features: pd.DataFrame) -> pd.DataFrame:
    names = getattr(transformer, "feature_names_in_", None)
    if names is None:
        return features
    absent = [c for c in names if c not in features.columns]
    if absent:
        raise ValueError(f"the features lack the model's input columns {absent}")
    return features.loc[:, list(names)]


def _threads(rows: int) -> int:
    """One thread for a handful of rows (OpenMP start-up costs more than it saves), else all."""
    return 1 if rows < 64 else 0


def _tree_values(model, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """LightGBM's exact TreeSHAP: (rows, features, classes) and (rows, classes), raw margins, model order."""
    booster = model.booster_
    n, m = matrix.shape
    contrib = np.asarray(booster.predict(matrix, pred_contrib=True, validate_features=False, num_threads=_threads(n)))
    if contrib.shape[1] == m + 1:  # binary objective: one margin x for classes_[1]
        # predict_proba = (1 - s(x), s(x)); its log-ratio is x, so (-x/2, x/2) are its logits
        half = contrib / 2.0
        contrib = np.stack([-half, half], axis=1)
    else:
        contrib = contrib.reshape(n, -1, m + 1)
    values = contrib[:, :, :m].transpose(0, 2, 1)
    return np.ascontiguousarray(values), contrib[:, :, m]


_CLASS_BOOSTERS: weakref.WeakKeyDictionary[Any, list[Any]] = weakref.WeakKeyDictionary()


def class_boosters(booster) -> list[Any]:
    """One single-output booster per class (model order), holding that class's trees only.

    A multiclass LightGBM model is one tree per class per iteration; the raw
    margin of class k is the sum of its own trees. Explaining one class with
    its own trees gives exactly the same TreeSHAP values as the full model's
    ``pred_contrib`` for that class, at a third of the cost for three classes.
    """
    cached = _CLASS_BOOSTERS.get(booster)
    if cached is not None:
        return cached
    n_classes = booster.num_model_per_iteration()
    text = booster.model_to_string()
    head, rest = text.split("\nTree=0\n", 1)
    blocks = re.split(r"\n(?=Tree=\d+\n)", "Tree=0\n" + rest.split("\nend of trees", 1)[0])
    replace = {
        "num_class=": "num_class=1",
        "num_tree_per_iteration=": "num_tree_per_iteration=1",
        "objective=": "objective=regression",
    }
    header = []
    for line in head.split("\n"):
        if line.startswith("tree_sizes="):
            continue
        key = next((k for k in replace if line.startswith(k)), None)
        header.append(replace[key] if key else line)
    boosters = []
    for k in range(n_classes):
        trees = [b.split("\n", 1)[1].strip() for i, b in enumerate(blocks) if i % n_classes == k]
        body = "".join(f"Tree={j}\n{t}\n\n" for j, t in enumerate(trees))
        boosters.append(lightgbm.Booster(model_str="\n".join(header) + "\n\n" + body + "end of trees\n"))
    _CLASS_BOOSTERS[booster] = boosters
    return boosters


def class_values(
    bundle: ModelBundle,
    features: pd.DataFrame,
    class_index: int | str | Sequence[int] | np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """SHAP values for one class per row: the hot path behind :func:`top_reasons`.

    Returns ``(values, logits, targets, encoded names)``: values (rows, encoded
    features) for class ``targets[r]`` of each row, and every class's
    calibrated logit (rows, classes), both in calibrated log-odds and bundle
    class order. For the boosted model only the explained class's trees are
    walked.
    """
    enc = _encode(bundle, features)
    n, m = enc.matrix.shape
    booster = getattr(enc.model, "booster_", None)
    if enc.family == "gbm" and booster.num_model_per_iteration() > 1:
        raw = np.asarray(booster.predict(enc.matrix, raw_score=True, validate_features=False, num_threads=_threads(n)))
        logits = raw[:, enc.order] * enc.beta
        targets = _targets(class_index, logits, bundle.classes)
        values = np.zeros((n, m))
        boosters = class_boosters(booster)
        for t in np.unique(targets):
            rows = np.flatnonzero(targets == t)
            contrib = boosters[enc.order[t]].predict(
                enc.matrix[rows], pred_contrib=True, validate_features=False, num_threads=_threads(len(rows))
            )
            values[rows] = contrib[:, :m]
        return values * enc.beta, logits, targets, enc.names
    if enc.family == "gbm":
        full, base = _tree_values(enc.model, enc.matrix)
    else:
        full, base = _linear_values(bundle, enc.transformer, enc.model, enc.matrix, enc.names)
    full, base = full[:, :, enc.order] * enc.beta, base[:, enc.order] * enc.beta
    logits = base + full.sum(axis=1)
    targets = _targets(class_index, logits, bundle.classes)
    return full[np.arange(n), :, targets], logits, targets, enc.names


def tree_explainer_values(bundle: ModelBundle, features: pd.DataFrame) -> np.ndarray:
    """``shap.TreeExplainer`` on the encoded matrix, in calibrated log-odds and bundle class order.

    Used to check that :func:`shap_values` (native ``pred_contrib``) is
    shap's own TreeSHAP; returns values only (rows, encoded features, classes).
    """
    # lazy: the shap library takes seconds to import and only this helper needs it
    import shap

    pipeline = bundle.pipeline
    transformer, model = pipeline.named_steps["features"], pipeline.named_steps["model"]
    encoded = transformer.transform(_inputs(transformer, features))
    explainer = shap.TreeExplainer(model)
    values = np.asarray(explainer.shap_values(encoded))
    if values.ndim == 2:  # binary: one margin
        values = np.stack([-values / 2, values / 2], axis=2)
    order = [[str(c) for c in model.classes_].index(c) for c in bundle.classes]
    return values[:, :, order] * (bundle.temperature_factor or 1.0)


def _linear_values(bundle, transformer, model, matrix: np.ndarray, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Exact linear SHAP: coef * (x - background mean); base = decision function at the mean."""
    coef = np.atleast_2d(np.asarray(model.coef_, dtype=np.float64))
    intercept = np.atleast_1d(np.asarray(model.intercept_, dtype=np.float64))
    mean = background_mean(bundle, transformer, names, matrix)
    centred = matrix - mean
    values = centred[:, :, None] * coef.T[None, :, :]
    base = np.broadcast_to(mean @ coef.T + intercept, (len(matrix), len(intercept))).copy()
    if coef.shape[0] == 1:  # binary: decision x for classes_[1]
        # the temperature calibrator reads a 1-D decision x as logits (-x, x); the bare model's are (-x/2, x/2)
        temperature = hasattr(bundle.estimator, "calibrated_classifiers_") and bundle.temperature_factor is not None
        w = 1.0 if temperature else 0.5
        values = np.concatenate([-w * values, w * values], axis=2)
        base = np.concatenate([-w * base, w * base], axis=1)
    return values, base


def background_mean(bundle: ModelBundle, transformer, names: list[str], matrix: np.ndarray) -> np.ndarray:
    """Training mean of each encoded column (:func:`known_means`); the explained rows' own mean, with a
    warning, for any column whose training mean is not known."""
    return fill_unknown_means(known_means(bundle.metadata.feature_means, transformer, names), matrix)


# --------------------------------------------------------------------------- folding


def fold(raw: RawExplanation, sources: Mapping[str, str], records: pd.DataFrame | None = None) -> Explanation:
    """Sum encoded columns into the record column or screening score they came from.

    ``sources`` maps every encoded name to its origin (from
    :func:`painml.features.encoding.feature_sources`). Folded features are in schema
    order, then screening scores. ``records`` supplies the recorded values for
    the labels (the frame that was explained; when None they are not shown).
    """
    absent = [n for n in raw.feature_names if n not in sources]
    if absent:
        raise ValueError(f"no source known for the encoded columns {absent}")
    folded = folded_names(raw.feature_names, sources)
    matrix = fold_matrix(raw.feature_names, sources, folded)
    values = np.einsum("rec,ef->rfc", raw.values, matrix, optimize=True)
    data = display_data(folded, records, raw.data.index)
    return Explanation(values, raw.base_values, folded, data, raw.classes, raw.scale)


def display_data(folded: Sequence[str], records: pd.DataFrame | None, index: pd.Index) -> pd.DataFrame:
    """The recorded value of each folded feature (scores computed from the record)."""
    if records is None:
        return pd.DataFrame({f: np.full(len(index), np.nan) for f in folded}, index=index)
    scores = [f for f in folded if f in screening.SCORE_NAMES]
    computed = screening.compute_scores(records, scores) if scores else pd.DataFrame(index=records.index)
    out = {}
    for f in folded:
        if f in computed.columns:
            out[f] = computed[f].to_numpy()
        elif f in records.columns:
            out[f] = records[f].to_numpy()
        else:
            out[f] = np.full(len(records), np.nan)
    return pd.DataFrame(out, index=records.index)


def explain(bundle: ModelBundle, features: pd.DataFrame, frame: pd.DataFrame | None = None) -> Explanation:
    """SHAP values folded to the record's columns, with the recorded values for labels."""
    raw = shap_values(bundle, features)
    return fold(raw, _sources(bundle.pipeline.named_steps["features"]), features if frame is None else frame)


_SOURCES: weakref.WeakKeyDictionary[Any, dict[str, str]] = weakref.WeakKeyDictionary()


def _sources(transformer) -> dict[str, str]:
    """:func:`painml.features.encoding.feature_sources`, once per fitted transformer (one-row requests repeat it)."""
    cached = _SOURCES.get(transformer)
    if cached is None:
        cached = _SOURCES[transformer] = feature_sources(transformer)
    return cached


# --------------------------------------------------------------------------- reasons


def top_reasons(
    bundle: ModelBundle,
    features: pd.DataFrame,
    frame: pd.DataFrame | None = None,
    k: int = 3,
    class_index: int | str | Sequence[int] | np.ndarray | None = None,
) -> list[list[Reason]]:
    """The ``k`` largest contributions per row, for the predicted class by default.

    ``features`` are the record's feature columns (``Records.features``);
    ``frame`` the record frame to read displayed values from (defaults to
    ``features``). ``class_index``: one class for every row (position in
    ``bundle.classes`` or its name), or one position per row; None explains
    each row's most probable class. Reasons are ordered by absolute size.
    """
    values, _, targets, names = class_values(bundle, features, class_index)
    sources = _sources(bundle.pipeline.named_steps["features"])
    folded = folded_names(names, sources)
    n = len(features)
    values = values @ fold_matrix(names, sources, folded)
    k = max(0, min(int(k), len(folded)))
    if k == 0 or n == 0:
        return [[] for _ in range(n)]
    top, top_sizes = largest(values, k)
    source = features if frame is None else frame
    needed = sorted(set(top.ravel().tolist()))
    shown = display_data([folded[j] for j in needed], source, features.index)
    columns = {j: shown[folded[j]].to_numpy() for j in needed}
    out: list[list[Reason]] = []
    for r in range(n):
        cls = bundle.classes[targets[r]]
        reasons = []
        for j, size in zip(top[r], top_sizes[r]):
            feature = folded[j]
            value = plain(columns[j][r])
            reasons.append(
                Reason(feature, reason_label(feature, value), value, TOWARDS if size >= 0 else AWAY, cls, float(size))
            )
        out.append(reasons)
    return out


def _targets(class_index, logits: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    n = logits.shape[0]
    if class_index is None:
        return logits.argmax(axis=1)
    if isinstance(class_index, str):
        return np.full(n, list(classes).index(class_index))
    if np.ndim(class_index) == 0:
        return np.full(n, int(class_index))
    targets = np.asarray(class_index, dtype=int)
    if targets.shape != (n,):
        raise ValueError(f"class_index has {targets.shape} entries for {n} rows")
    return targets


# --------------------------------------------------------------------------- helpers


def numeric_data(explanation: Explanation) -> np.ndarray:
    """Feature values as numbers for colouring plots: categories by their allowed position, NaN kept."""
    out = np.full(explanation.data.shape, np.nan)
    for j, f in enumerate(explanation.feature_names):
        column = explanation.data[f]
        spec = BY_NAME.get(f)
        if spec is not None and spec.kind == "category":
            levels = {v: i for i, v in enumerate(spec.allowed)}
            out[:, j] = [levels.get(v, np.nan) for v in column.to_numpy()]
        else:
            out[:, j] = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    return out


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------- plots
# Built on matplotlib.figure.Figure without pyplot (as in painml.evaluation.plots): no
# display, no global state; every plot names the class whose log-odds it shows.


# --------------------------------------------------------------------------- example patients


@dataclass(frozen=True)
class Example:
    """A row chosen to show: its position, why it was chosen, and the class explained."""

    position: int
    caption: str
    class_index: int


def pick_examples(proba: np.ndarray, classes: Sequence[str], y_true: Sequence[str] | None = None) -> list[Example]:
    """Rows worth a waterfall: per class the most and least certain, right and wrong when labels are known.

    Without labels: for each predicted class, its most and least certain
    prediction. With labels: for each true class, the most and least certain
    correct prediction and the most and least certain wrong one. The class
    explained is always the predicted one; rows appear once.
    """
    proba = np.asarray(proba)
    predicted = proba.argmax(axis=1)
    confidence = proba.max(axis=1)
    chosen: dict[int, Example] = {}

    def add(mask: np.ndarray, caption: str) -> None:
        rows = np.flatnonzero(mask)
        if rows.size == 0:
            return
        for pos, word in (
            (rows[np.argmax(confidence[rows])], "most certain"),
            (rows[np.argmin(confidence[rows])], "least certain"),
        ):
            if int(pos) not in chosen:
                chosen[int(pos)] = Example(int(pos), f"{caption}, {word}", int(predicted[pos]))

    if y_true is None:
        for k, c in enumerate(classes):
            add(predicted == k, f"predicted {c}")
    else:
        truth = np.array([list(classes).index(v) for v in y_true])
        for k, c in enumerate(classes):
            add((truth == k) & (predicted == k), f"{c}, predicted correctly")
            add((truth == k) & (predicted != k), f"{c}, predicted wrongly")
    return list(chosen.values())


def sample_positions(n: int, max_rows: int, seed: int = 0) -> np.ndarray:
    """Up to ``max_rows`` row positions, sorted; the same for the same n."""
    if n <= max_rows:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_rows, replace=False))


# --------------------------------------------------------------------------- one patient's waterfall

REMAINDER_GROUPS: dict[str, tuple[str, ...]] = {
    "questionnaire items": ("dn4_interview", "paindetect", "screening"),
    "examination findings": ("examination",),
    "test results": ("tests",),
    "history findings": ("demographics", "pain_history", "descriptors", "comorbidities"),
}
"""How the features a waterfall does not show one by one are grouped: by block of the record."""


def remainder_group(feature: str) -> str:
    """The group of :data:`REMAINDER_GROUPS` a folded feature belongs to (screening scores are questionnaires)."""
    spec = BY_NAME.get(feature)
    block = spec.block if spec is not None else "screening"
    return next((g for g, blocks in REMAINDER_GROUPS.items() if block in blocks), "history findings")


@dataclass(frozen=True)
class Bar:
    """One bar of a waterfall: a feature (``features`` of one) or a group of the remaining ones."""

    label: str
    value: float
    features: tuple[str, ...]
    missing: bool = False
    """True when the bar is one finding that was not recorded: the reason is an absence."""
    group: bool = False
    """True when the bar adds up findings not shown one by one (possibly just one)."""

    def sentence(self, class_name: str) -> str:
        """The bar in words a clinician can repeat; an absence is said to be one."""
        more = "more" if self.value >= 0 else "less"
        size = f"{self.value:+.2f} on the score"
        if self.missing:
            name = display_name(self.features[0])
            return f"{name} was not recorded: its absence made {class_name} {more} likely ({size})"
        return f"{self.label}: made {class_name} {more} likely ({size})"


@dataclass(frozen=True)
class Waterfall:
    """One patient and class: from the average patient's score to this patient's, in bars that add up.

    The scale is the model's score of the class (its calibrated softmax logit): the bars add up exactly on it,
    and the difference between two classes' scores is the log of the ratio of their probabilities. It is not the
    log-odds of the class against all the others, so both ends are anchored in probabilities: ``base_probability``
    is the probability of the class for a patient whose every contribution is zero (the average patient), and
    ``probability`` this patient's.
    """

    class_name: str
    base: float
    total: float
    base_probability: float
    probability: float
    bars: tuple[Bar, ...]
    """Largest first; single findings, then the groups of the rest."""

    @property
    def hidden(self) -> list[Bar]:
        return [b for b in self.bars if b.group]

    @property
    def shown(self) -> list[Bar]:
        return [b for b in self.bars if not b.group]


def waterfall(
    explanation: Explanation, row: int, k: int | None = None, show: int = 10, most: int | None = None
) -> Waterfall:
    """The bars of one patient's waterfall for class ``k`` (default: the predicted one).

    The ``show`` largest findings are shown one by one and the rest grouped by block (:data:`REMAINDER_GROUPS`).
    While a group outweighs the smallest finding shown, its largest member pulling the same way is shown on its
    own (up to ``most`` findings, by default no limit): no hidden remainder then outweighs a reason shown. On
    simulated clinic patients that takes about 16 findings on average and under 40 at most.
    """
    most = len(explanation.feature_names) if most is None else most
    k = int(explanation.predicted[row]) if k is None else k
    values = explanation.values[row, :, k]
    names = explanation.feature_names
    order = [int(j) for j in np.argsort(-np.abs(values), kind="stable")]
    shown, rest = order[:show], order[show:]

    def groups() -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for j in rest:
            out.setdefault(remainder_group(names[j]), []).append(j)
        return out

    while rest and len(shown) < most:
        smallest = min(abs(values[j]) for j in shown) if shown else 0.0
        heavy = {g: js for g, js in groups().items() if abs(values[js].sum()) > smallest}
        if not heavy:
            break
        g, js = max(heavy.items(), key=lambda item: abs(values[item[1]].sum()))
        sign = np.sign(values[js].sum())
        pick = max((j for j in js if np.sign(values[j]) == sign), key=lambda j: abs(values[j]))
        shown.append(pick)
        rest.remove(pick)
    data = explanation.data
    bars = [
        Bar(explanation.label(row, names[j]), float(values[j]), (names[j],), bool(pd.isna(data[names[j]].iloc[row])))
        for j in sorted(shown, key=lambda j: -abs(values[j]))
    ]
    for g, js in sorted(groups().items(), key=lambda item: -abs(values[item[1]].sum())):
        noun = g if len(js) > 1 else g.removesuffix("s")
        bars.append(Bar(f"{len(js)} other {noun}", float(values[js].sum()), tuple(names[j] for j in js), group=True))
    base = explanation.base_values[row]
    return Waterfall(
        explanation.classes[k],
        float(base[k]),
        float(explanation.logits[row, k]),
        float(_softmax(base[None, :])[0, k]),
        float(explanation.proba[row, k]),
        tuple(bars),
    )


# --------------------------------------------------------------------------- what recording a finding would change


@dataclass(frozen=True)
class WhatIf:
    """Recording one missing finding with one value, and how the probabilities would move."""

    feature: str
    label: str
    """"brush allodynia: present"."""
    class_name: str
    """The class whose probability moves the most (often the predicted one)."""
    before: float
    after: float
    predicted_after: str

    @property
    def change(self) -> float:
        return self.after - self.before

    def sentence(self) -> str:
        verb = "raise" if self.change > 0 else "lower"
        tail = f"; the prediction would become {self.predicted_after}" if self.predicted_after else ""
        return (
            f"recording {self.label} would {verb} the probability of {self.class_name} from {self.before:.0%} to "
            f"{self.after:.0%}{tail}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "label": self.label,
            "class_name": self.class_name,
            "before": self.before,
            "after": self.after,
            "predicted_after": self.predicted_after,
            "sentence": self.sentence(),
        }


def _trial_values(feature: str) -> list[Any]:
    """The values tried for a missing finding: every level of a category or yes/no finding. Numbers are not
    tried: any value chosen for them (an extreme, a midpoint) would be a guess about the patient."""
    spec = BY_NAME[feature]
    if spec.kind == "binary":
        return [0.0, 1.0]
    if spec.kind == "category":
        return list(spec.allowed)
    return []


def what_if_recorded(bundle: ModelBundle, frame: pd.DataFrame, top: int = 3, least: float = 0.01) -> list[WhatIf]:
    """For one patient (``frame``: one validated record row), the missing findings whose recording would change
    the prediction most: each missing yes/no or category finding is filled with each value it may take, the
    model predicts every variant at once, and per finding the value moving a class's probability furthest is
    kept. The ``top`` findings by that change, at least ``least``; findings the model does not use never move it."""
    if len(frame) != 1:
        raise ValueError(f"what_if_recorded explains one patient, not {len(frame)}")
    columns = [c for c in bundle_inputs(bundle) if c in BY_NAME and pd.isna(frame[c].iloc[0])]
    trials = [(c, v) for c in columns for v in _trial_values(c)]
    if not trials:
        return []
    features = frame.loc[:, bundle_inputs(bundle)]
    variants = pd.concat([features] * (len(trials) + 1), ignore_index=True)
    for i, (c, v) in enumerate(trials, start=1):
        if BY_NAME[c].kind == "category":
            variants[c] = variants[c].astype(object)
        variants.loc[i, c] = v
    proba = bundle.predict_proba(variants)
    before, after = proba[0], proba[1:]
    classes = list(bundle.classes)
    best_before = int(before.argmax())
    found: dict[str, WhatIf] = {}
    for (c, v), p in zip(trials, after):
        k = int(np.argmax(np.abs(p - before)))
        change = abs(p[k] - before[k])
        if change < least or (c in found and change <= abs(found[c].change)):
            continue
        moved = int(p.argmax())
        found[c] = WhatIf(
            c,
            reason_label(c, v),
            classes[k],
            float(before[k]),
            float(p[k]),
            classes[moved] if moved != best_before else "",
        )
    return sorted(found.values(), key=lambda w: -abs(w.change))[:top]


def bundle_inputs(bundle: ModelBundle) -> list[str]:
    """The record columns the bundle's pipeline takes (its input columns, else every feature column)."""
    names = getattr(bundle.pipeline.named_steps["features"], "feature_names_in_", None)
    return [str(c) for c in names] if names is not None else list(FEATURE_COLUMNS)
