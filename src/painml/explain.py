"""Why the model decides as it does: SHAP values in the clinician's vocabulary.

What is explained, exactly. Both families produce one raw score per class
(LightGBM's raw margin, the logistic model's decision function) and the
bundle's temperature calibration turns them into probabilities as
``p = softmax(beta * raw)``. Every value here is scaled by ``beta``
(:attr:`painml.bundle.ModelBundle.temperature_factor`), so for each row and
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
(:func:`painml.features.feature_sources`); screening scores stay as their own
features. :func:`top_reasons` gives the top reasons per row from the estimator
(for the boosted model walking only the explained class's trees,
:func:`class_boosters`); the predictor computes the same reasons from its
compiled model (:mod:`painml.trees`), and a test keeps the two equal.

Plots (matplotlib ``Figure`` objects, no pyplot, every axis labelled "SHAP
value (log-odds of <class>)"): beeswarm and mean-|SHAP| bar per class, a class
comparison, dependence plots and waterfalls. :func:`write_plots` writes them
for a cohort, :func:`log_explanations` logs them under ``shap/`` of a run and
:func:`explain_command` backs ``painml explain``.
"""

from __future__ import annotations

import re
import warnings
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from painml import screening
from painml.bundle import ModelBundle
from painml.columns import BY_NAME
from painml.features import feature_sources
from painml.reasons import (
    AWAY,
    TOWARDS,
    Reason,
    display_name,
    display_value,
    fill_unknown_means,
    fold_matrix,
    folded_names,
    largest,
    plain,
    reason_label,
)

__all__ = [
    "AWAY",
    "TOWARDS",
    "Example",
    "Explanation",
    "RawExplanation",
    "Reason",
    "class_values",
    "display_name",
    "display_value",
    "explain",
    "explain_command",
    "fold",
    "global_figures",
    "log_explanations",
    "pick_examples",
    "plot_bar",
    "plot_beeswarm",
    "plot_class_comparison",
    "plot_dependence",
    "plot_waterfall",
    "reason_label",
    "shap_values",
    "top_reasons",
    "write_plots",
]

FEATURE_MEANS_KEY = "feature_means"
"""Optional bundle metadata: {encoded feature: training mean}, the logistic model's background."""


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
    family = bundle.metadata.get("family") or ("gbm" if hasattr(model, "booster_") else "logistic")
    if family not in ("gbm", "logistic"):
        raise ValueError(f"cannot explain model family {family!r}")
    model_classes = [str(c) for c in model.classes_]
    missing = [c for c in bundle.classes if c not in model_classes]
    if missing:
        raise ValueError(f"the model does not know the classes {missing}")
    beta = bundle.temperature_factor
    if beta is None:
        warnings.warn("the bundle is not calibrated by temperature: explaining the uncalibrated model's log-odds",
                      UserWarning, stacklevel=3)
        beta, scale = 1.0, "uncalibrated model log-odds"
    else:
        scale = "calibrated log-odds"
    return _Encoded(transformer, model, family, encoded, [str(c) for c in encoded.columns],
                    encoded.to_numpy(dtype=np.float64), [model_classes.index(c) for c in bundle.classes],
                    float(beta), scale)


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
    contrib = np.asarray(booster.predict(matrix, pred_contrib=True, validate_features=False,
                                         num_threads=_threads(n)))
    if contrib.shape[1] == m + 1:  # binary objective: one margin x for classes_[1]
        # predict_proba = (1 - s(x), s(x)); its log-ratio is x, so (-x/2, x/2) are its logits
        half = contrib / 2.0
        contrib = np.stack([-half, half], axis=1)
    else:
        contrib = contrib.reshape(n, -1, m + 1)
    values = contrib[:, :, :m].transpose(0, 2, 1)
    return np.ascontiguousarray(values), contrib[:, :, m]


_CLASS_BOOSTERS: "weakref.WeakKeyDictionary[Any, list[Any]]" = weakref.WeakKeyDictionary()


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
    import lightgbm

    n_classes = booster.num_model_per_iteration()
    text = booster.model_to_string()
    head, rest = text.split("\nTree=0\n", 1)
    blocks = re.split(r"\n(?=Tree=\d+\n)", "Tree=0\n" + rest.split("\nend of trees", 1)[0])
    replace = {"num_class=": "num_class=1", "num_tree_per_iteration=": "num_tree_per_iteration=1",
               "objective=": "objective=regression"}
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
        raw = np.asarray(booster.predict(enc.matrix, raw_score=True, validate_features=False,
                                         num_threads=_threads(n)))
        logits = raw[:, enc.order] * enc.beta
        targets = _targets(class_index, logits, bundle.classes)
        values = np.zeros((n, m))
        boosters = class_boosters(booster)
        for t in np.unique(targets):
            rows = np.flatnonzero(targets == t)
            contrib = boosters[enc.order[t]].predict(enc.matrix[rows], pred_contrib=True,
                                                     validate_features=False, num_threads=_threads(len(rows)))
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
    return fill_unknown_means(known_means(bundle.metadata, transformer, names), matrix)


def known_means(metadata: Mapping[str, Any], transformer, names: Sequence[str]) -> np.ndarray:
    """Training mean of each encoded column: stored in the metadata, else 0 after a centring
    ``StandardScaler``, else NaN (unknown)."""
    stored: Mapping[str, float] = metadata.get(FEATURE_MEANS_KEY) or {}
    centred = _standardised_outputs(transformer)
    mean = np.full(len(names), np.nan)
    for j, name in enumerate(names):
        if name in stored:
            mean[j] = float(stored[name])
        elif name in centred:
            mean[j] = 0.0
    return mean


def _standardised_outputs(transformer) -> set[str]:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    out: set[str] = set()
    for name, step, cols in transformer.transformers_:
        last = step.steps[-1][1] if isinstance(step, Pipeline) else step
        if isinstance(last, StandardScaler) and last.with_mean:
            out.update(str(c) for c in transformer.named_transformers_[name].get_feature_names_out(cols))
    return out


# --------------------------------------------------------------------------- folding


def fold(raw: RawExplanation, sources: Mapping[str, str], records: pd.DataFrame | None = None) -> Explanation:
    """Sum encoded columns into the record column or screening score they came from.

    ``sources`` maps every encoded name to its origin (from
    :func:`painml.features.feature_sources`). Folded features are in schema
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


_SOURCES: "weakref.WeakKeyDictionary[Any, dict[str, str]]" = weakref.WeakKeyDictionary()


def _sources(transformer) -> dict[str, str]:
    """:func:`painml.features.feature_sources`, once per fitted transformer (one-row requests repeat it)."""
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
            reasons.append(Reason(feature, reason_label(feature, value), value,
                                  TOWARDS if size >= 0 else AWAY, cls, float(size)))
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


# --------------------------------------------------------------------------- vocabulary

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
# Built on matplotlib.figure.Figure without pyplot (as in painml.evaluate): no
# display, no global state; every plot names the class whose log-odds it shows.

MAX_DISPLAY = 15
DEPENDENCE_FEATURES = 6
_NEG, _POS, _MISSING, _CATEGORY = "#1f77b4", "#d62728", "#b0b0b0", "#2e9d5b"
BEESWARM_NOTE = ("Each dot is one patient. Colour: the feature's value from low or absent (blue) to high or present "
                 "(red); grey: not recorded; green: a category with several levels (see its dependence plot).")


def _margins(fig, labels: Sequence[str], width: float, height: float, fontsize: float = 10, top: float = 0.75,
             bottom: float = 0.65, right: float = 0.97) -> None:
    """Fixed margins (inches) sized to the longest y label: constrained layout measures every text, slowly."""
    longest = max((len(str(label)) for label in labels), default=10)
    left = (0.0068 * fontsize * longest + 0.75) / width
    fig.subplots_adjust(left=min(0.55, left), right=right, top=1 - top / height, bottom=bottom / height)


def axis_label(class_name: str, absolute: bool = False) -> str:
    return f"{'mean |SHAP value|' if absolute else 'SHAP value'} (log-odds of {class_name})"


def _class_pos(explanation: Explanation, k: int | str) -> int:
    return explanation.classes.index(k) if isinstance(k, str) else int(k)


def mean_abs(explanation: Explanation) -> pd.DataFrame:
    """Mean |SHAP| per feature (rows) and class (columns), largest overall first."""
    table = pd.DataFrame(np.abs(explanation.values).mean(axis=0), index=explanation.feature_names,
                         columns=explanation.classes)
    return table.loc[table.sum(axis=1).sort_values(ascending=False).index]


def _value_cmap():
    from matplotlib.colors import LinearSegmentedColormap

    # shap's blue-purple-red: no grey in the middle, so grey can mean "not recorded"
    return LinearSegmentedColormap.from_list("painml_values", ["#1e88e5", "#7c4dbb", "#ff0052"])


_VALUE_CMAP = _value_cmap()


def _swarm(x: np.ndarray, width: float = 0.38, bins: int = 80) -> np.ndarray:
    """Vertical offsets that stack points of similar x (shap's beeswarm layout)."""
    if len(x) == 0:
        return x
    span = x.max() - x.min()
    quant = np.round(bins * (x - x.min()) / (span if span > 0 else 1.0))
    order = np.lexsort((np.arange(len(x)), quant))
    sorted_bins = quant[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_bins)) + 1]
    layer = np.arange(len(x)) - np.repeat(starts, np.diff(np.r_[starts, len(x)]))
    offsets = np.zeros(len(x))
    offsets[order] = np.ceil(layer / 2) * ((layer % 2) * 2 - 1)
    peak = np.abs(offsets).max()
    return offsets * (width / peak) if peak > 0 else offsets


def _scaled_colours(values: np.ndarray) -> np.ndarray:
    """0..1 per feature (5th-95th percentile), NaN kept."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return values
    lo, hi = np.nanpercentile(finite, [5, 95])
    if hi <= lo:
        lo, hi = finite.min(), finite.max()
    if hi <= lo:
        return np.where(np.isfinite(values), 0.5, np.nan)
    return np.clip((values - lo) / (hi - lo), 0, 1)


def plot_beeswarm(explanation: Explanation, k: int | str, max_display: int = MAX_DISPLAY, title: str | None = None):
    """One dot per patient and feature: where the feature pushed this class's log-odds."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    k = _class_pos(explanation, k)
    cls = explanation.classes[k]
    values = explanation.values[:, :, k]
    numbers = numeric_data(explanation)
    order = np.argsort(-np.abs(values).mean(axis=0))[:max_display]
    names = [display_name(explanation.feature_names[j]) for j in order[::-1]]
    height = 0.42 * len(order) + 1.8
    fig = Figure(figsize=(9, height))
    _margins(fig, names, 9, height, right=0.99)
    ax = fig.subplots()
    cmap = _VALUE_CMAP
    for row, j in enumerate(order[::-1]):
        x = values[:, j]
        y = row + _swarm(x)
        c = _scaled_colours(numbers[:, j])
        missing = ~np.isfinite(c)
        spec = BY_NAME.get(explanation.feature_names[j])
        # a category's levels have no low-high order: one neutral colour, its effect is in the dependence plot
        colours = _CATEGORY if spec is not None and spec.kind == "category" and len(spec.allowed) > 2 else cmap(c[~missing])
        ax.scatter(x[missing], y[missing], s=9, color=_MISSING, alpha=0.7, linewidths=0, rasterized=True)
        ax.scatter(x[~missing], y[~missing], s=9, c=colours, alpha=0.85, linewidths=0, rasterized=True)
    ax.axvline(0, color="#555555", linewidth=0.8)
    ax.set_yticks(range(len(order)), names, fontsize=10)
    ax.set_ylim(-0.6, len(order) - 0.4)
    ax.set_xlabel(axis_label(cls) + ";  right = towards " + cls, fontsize=10)
    ax.set_ylabel("feature (largest mean |SHAP| at the top)", fontsize=10)
    ax.set_title(title or f"What pushes the model towards or away from {cls} ({len(values):,} patients)", fontsize=11)
    ax.grid(axis="x", color="#eeeeee")
    bar = fig.colorbar(ScalarMappable(Normalize(0, 1), cmap), ax=ax, ticks=[0, 1], aspect=40, pad=0.01)
    bar.ax.set_yticklabels(["low /\nabsent", "high /\npresent"], fontsize=8)
    bar.set_label("feature value (grey: not recorded; green: category)", fontsize=9)
    return fig


def plot_bar(explanation: Explanation, k: int | str, max_display: int = MAX_DISPLAY, title: str | None = None):
    """Mean |SHAP| per feature for one class: how much each feature moves it on average."""
    from matplotlib.figure import Figure

    k = _class_pos(explanation, k)
    cls = explanation.classes[k]
    table = mean_abs(explanation)[cls].sort_values(ascending=False).iloc[:max_display][::-1]
    names = [display_name(f) for f in table.index]
    height = 0.38 * len(table) + 1.6
    fig = Figure(figsize=(8, height))
    _margins(fig, names, 8, height)
    ax = fig.subplots()
    ax.barh(range(len(table)), table.to_numpy(), color=_POS)
    ax.set_yticks(range(len(table)), names, fontsize=10)
    for y, v in enumerate(table.to_numpy()):
        ax.text(v, y, f" {v:.2f}", va="center", fontsize=8)
    ax.set_xlabel(axis_label(cls, absolute=True), fontsize=10)
    ax.set_ylabel("feature", fontsize=10)
    ax.set_title(title or f"Average influence on {cls} ({explanation.values.shape[0]:,} patients)", fontsize=11)
    ax.margins(x=0.12)
    return fig


def plot_class_comparison(explanation: Explanation, max_display: int = MAX_DISPLAY, title: str | None = None):
    """Mean |SHAP| per feature, one bar per class side by side."""
    from matplotlib.figure import Figure

    table = mean_abs(explanation).iloc[:max_display][::-1]
    n_classes = len(explanation.classes)
    names = [display_name(f) for f in table.index]
    height = 0.55 * len(table) + 1.8
    fig = Figure(figsize=(8.5, height))
    _margins(fig, names, 8.5, height)
    ax = fig.subplots()
    height = 0.8 / n_classes
    colours = ["#2ca02c", "#d62728", "#9467bd", "#ff7f0e", "#1f77b4", "#8c564b"]
    for c, cls in enumerate(explanation.classes):
        ax.barh(np.arange(len(table)) + ((n_classes - 1) / 2 - c) * height, table[cls].to_numpy(), height=height,
                label=cls, color=colours[c % len(colours)])
    ax.set_yticks(range(len(table)), names, fontsize=10)
    ax.set_xlabel("mean |SHAP value| (log-odds of each class: " + ", ".join(explanation.classes) + ")", fontsize=10)
    ax.set_ylabel("feature", fontsize=10)
    ax.set_title(title or "Which features matter for which class", fontsize=11)
    ax.legend(title="class", loc="lower right", fontsize=9)
    return fig


def _categories(feature: str, shown: pd.Series) -> list[Any] | None:
    spec = BY_NAME.get(feature)
    if spec is not None and spec.kind == "category":
        return list(spec.allowed)
    if spec is not None and spec.kind == "binary":
        return [0.0, 1.0]
    if feature in ("paindetect_band", "neupsig_grade"):
        levels = screening.PAINDETECT_BANDS if feature == "paindetect_band" else screening.NEUPSIG_GRADES
        return [float(i) for i in range(len(levels))]
    return None


def plot_dependence(explanation: Explanation, feature: str, title: str | None = None):
    """SHAP value against the recorded value of one feature, one panel per class."""
    from matplotlib.figure import Figure

    j = explanation.feature_names.index(feature)
    shown = explanation.data[feature]
    levels = _categories(feature, shown)
    n_classes = len(explanation.classes)
    fig = Figure(figsize=(4.2 * n_classes, 4.4))
    rotate = levels is not None and len(levels) > 3
    fig.subplots_adjust(left=0.75 / (4.2 * n_classes), right=0.99, top=0.86, bottom=0.3 if rotate else 0.14,
                        wspace=0.28)
    axes = np.atleast_1d(fig.subplots(1, n_classes, sharey=True))
    rng = np.random.default_rng(0)
    raw = shown.to_numpy()
    missing = pd.isna(shown).to_numpy()
    if levels is not None:
        position = {v: i for i, v in enumerate(levels)}
        x = np.array([np.nan if m else position.get(v if isinstance(v, str) else float(v), np.nan)
                      for v, m in zip(raw, missing)], dtype=float)
        x = x + rng.uniform(-0.18, 0.18, len(x))
        ticks = list(range(len(levels)))
        labels = [display_value(feature, v) for v in levels]
        if missing.any():
            x[missing] = -1 + rng.uniform(-0.18, 0.18, int(missing.sum()))
            ticks, labels = [-1, *ticks], [display_value(feature, None), *labels]
    else:
        x = pd.to_numeric(shown, errors="coerce").to_numpy(dtype=float)
        finite = x[np.isfinite(x)]
        integer = finite.size > 0 and np.allclose(finite, np.round(finite))
        if integer:
            x = x + rng.uniform(-0.15, 0.15, len(x))
        ticks = labels = None
        if missing.any() and finite.size:
            gap = max(1.0, 0.08 * (finite.max() - finite.min()))
            x[missing] = finite.min() - 2 * gap + rng.uniform(-gap / 3, gap / 3, int(missing.sum()))
    for k, ax in enumerate(axes):
        cls = explanation.classes[k]
        y = explanation.values[:, j, k]
        ax.scatter(x[~missing], y[~missing], s=8, alpha=0.5, color=_POS, linewidths=0, rasterized=True)
        if missing.any():
            ax.scatter(x[missing], y[missing], s=8, alpha=0.5, color=_MISSING, linewidths=0, rasterized=True,
                       label=display_value(feature, None))
        ax.axhline(0, color="#555555", linewidth=0.8)
        if ticks is not None:
            ax.set_xticks(ticks, labels, rotation=30 if rotate else 0, ha="right" if rotate else "center", fontsize=9)
        elif missing.any():
            ax.legend(loc="best", fontsize=8)
        ax.set_xlabel(display_name(feature), fontsize=10)
        ax.set_ylabel(axis_label(cls), fontsize=10)
        ax.set_title(cls, fontsize=10)
        ax.grid(color="#eeeeee")
    fig.suptitle(title or f"How {display_name(feature)} moves each class ({len(raw):,} patients)", fontsize=11)
    return fig


def plot_waterfall(explanation: Explanation, row: int, k: int | str | None = None, max_display: int = 10,
                   title: str | None = None, subtitle: str | None = None):
    """One patient: from the average patient's log-odds to this patient's, feature by feature."""
    from matplotlib.figure import Figure

    k = int(explanation.predicted[row]) if k is None else _class_pos(explanation, k)
    cls = explanation.classes[k]
    values = explanation.values[row, :, k]
    base = float(explanation.base_values[row, k])
    order = np.argsort(-np.abs(values))
    shown, rest = order[:max_display], order[max_display:]
    items = [(explanation.label(row, explanation.feature_names[j]), float(values[j])) for j in shown]
    if len(rest):
        items.append((f"{len(rest)} other features", float(values[rest].sum())))
    items = items[::-1]
    height = 0.42 * len(items) + 2.2
    # fixed margins instead of constrained layout: measuring every label costs more than drawing them
    longest = max(len(label) for label, _ in items)
    fig = Figure(figsize=(9.5, height))
    fig.subplots_adjust(left=min(0.55, (0.068 * longest + 0.75) / 9.5), right=0.97, top=1 - 1.05 / height,
                        bottom=0.6 / height)
    ax = fig.subplots()
    total = base + sum(v for _, v in items)  # the top bar ends at this patient's logit
    # from the bottom (the smallest contributions) to the top (the largest), starting at the base value
    left = base
    lefts = []
    for _, v in items:
        lefts.append(left)
        left += v
    for y, ((label, v), l0) in enumerate(zip(items, lefts)):
        ax.barh(y, v, left=l0, color=_POS if v >= 0 else _NEG, height=0.7)
        ax.text(l0 + v, y, f" {v:+.2f} " if v >= 0 else f" {v:+.2f} ", va="center",
                ha="left" if v >= 0 else "right", fontsize=8)
    ax.set_yticks(range(len(items)), [label for label, _ in items], fontsize=9.5)
    ax.axvline(base, color="#555555", linestyle="--", linewidth=0.9)
    ax.axvline(total, color="#000000", linewidth=0.9)
    ax.set_xlabel(axis_label(cls), fontsize=10)
    ax.set_ylabel("recorded finding", fontsize=10)
    ends = [base, *(l0 + v for (_, v), l0 in zip(items, lefts))]
    pad = 0.14 * (max(ends) - min(ends) or 1.0)
    ax.set_xlim(min(ends) - pad, max(ends) + pad)
    lo, hi = ax.get_xlim()

    def align(x: float) -> str:
        return "left" if x < lo + 0.3 * (hi - lo) else "right" if x > lo + 0.7 * (hi - lo) else "center"

    ax.text(base, len(items) - 0.35, f"average patient {base:.2f}", ha=align(base), va="bottom", fontsize=8,
            color="#555555")
    p = float(explanation.proba[row, k])
    ax.text(total, -0.9, f"this patient {total:.2f} (probability {p:.0%})", ha=align(total), va="top", fontsize=8)
    ax.set_ylim(-1.3, len(items) + 0.1)
    heading = title or f"Why {cls} (probability {p:.0%})"
    lines = [heading, *([subtitle] if subtitle else []), f"red: towards {cls}, blue: away from {cls}"]
    ax.set_title("\n".join(lines), fontsize=10.5)
    return fig


# --------------------------------------------------------------------------- examples, files, MLflow


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
        for pos, word in ((rows[np.argmax(confidence[rows])], "most certain"),
                          (rows[np.argmin(confidence[rows])], "least certain")):
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


def _records(source: Any) -> Any:
    from painml import schema

    if isinstance(source, schema.Records):
        return source
    return schema.load_records(source)


def file_stem(name: str) -> str:
    """A file-name-safe form of a class, feature or patient id."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("._") or "patient"


def _save(fig: Any, path: Path) -> Path:
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path


def sample_positions(n: int, max_rows: int, seed: int = 0) -> np.ndarray:
    """Up to ``max_rows`` row positions, sorted; the same for the same n."""
    if n <= max_rows:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_rows, replace=False))


def global_figures(explanation: Explanation, n_dependence: int = DEPENDENCE_FEATURES) -> dict[str, Any]:
    """Name -> figure: beeswarm and bar per class, the class comparison, dependence for the top features."""
    figures: dict[str, Any] = {}
    for k, c in enumerate(explanation.classes):
        figures[f"beeswarm_{file_stem(c)}"] = plot_beeswarm(explanation, k)
        figures[f"bar_{file_stem(c)}"] = plot_bar(explanation, k)
    figures["class_comparison"] = plot_class_comparison(explanation)
    for feature in mean_abs(explanation).index[:n_dependence]:
        figures[f"dependence_{file_stem(feature)}"] = plot_dependence(explanation, feature)
    return figures


def reasons_text(explanation: Explanation, row: int, k: int | None = None, n: int = 3) -> list[str]:
    """Plain sentences: "brush allodynia: present pushed towards neuropathic (+0.42 log-odds)"."""
    k = int(explanation.predicted[row]) if k is None else k
    cls = explanation.classes[k]
    values = explanation.values[row, :, k]
    out = []
    for j in np.argsort(-np.abs(values))[:n]:
        v = float(values[j])
        out.append(f"{explanation.label(row, explanation.feature_names[j])} pushed "
                   f"{TOWARDS if v >= 0 else AWAY} {cls} ({v:+.2f} log-odds)")
    return out


def write_plots(bundle: ModelBundle, records_frame, out_dir, patient_ids: Sequence[str] | None = None,
                max_rows: int = 2000) -> list[Path]:
    """Every explanation plot for a cohort into ``out_dir``; returns the files written.

    ``records_frame``: records in the patient-record schema (a DataFrame, a
    file path or :class:`painml.schema.Records`); validated first. Global plots
    use up to ``max_rows`` rows (a fixed random sample). Waterfalls: one per
    requested ``patient_ids`` (named after the id), else for example patients
    (``waterfall_example_<n>.png``, no identifiers). Also writes
    ``mean_abs_shap.csv`` and ``reasons.csv`` (top reasons of each waterfall).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = _records(records_frame)
    frame = records.frame
    positions = []
    if patient_ids:
        ids = frame["patient_id"].astype(str).to_numpy()
        known = set(ids)
        unknown = [str(p) for p in patient_ids if str(p) not in known]
        if unknown:
            raise KeyError(f"patient_id not found in the input: {', '.join(unknown)}")
        positions = [int(np.flatnonzero(ids == str(p))[0]) for p in patient_ids]
    rows = sample_positions(len(frame), max_rows)
    sample = frame.iloc[rows]
    explanation = explain(bundle, records.features.iloc[rows], sample)
    written = []
    for name, fig in global_figures(explanation).items():
        written.append(_save(fig, out / f"{name}.png"))
    table = mean_abs(explanation)
    table.insert(0, "label", [display_name(f) for f in table.index])
    table.index.name = "feature"
    table.to_csv(out / "mean_abs_shap.csv")
    written.append(out / "mean_abs_shap.csv")
    reasons = []
    if patient_ids:
        chosen = explain(bundle, records.features.iloc[positions], frame.iloc[positions])
        for i, pid in enumerate(patient_ids):
            k = int(chosen.predicted[i])
            title = f"Patient {pid}: why {chosen.classes[k]} (probability {chosen.proba[i, k]:.0%})"
            written.append(_save(plot_waterfall(chosen, i, k, title=title), out / f"waterfall_{file_stem(pid)}.png"))
            reasons.append({"patient_id": pid, "predicted_class": chosen.classes[k],
                            "probability": float(chosen.proba[i, k]), **_reason_columns(chosen, i, k)})
    else:
        for n, ex in enumerate(pick_examples(explanation.proba, explanation.classes), start=1):
            k = ex.class_index
            title = (f"Example patient {n}: why {explanation.classes[k]} "
                     f"(probability {explanation.proba[ex.position, k]:.0%})")
            written.append(_save(plot_waterfall(explanation, ex.position, k, title=title, subtitle=ex.caption),
                                 out / f"waterfall_example_{n}.png"))
            reasons.append({"example": f"example patient {n}", "why_chosen": ex.caption,
                            "predicted_class": explanation.classes[k],
                            "probability": float(explanation.proba[ex.position, k]),
                            **_reason_columns(explanation, ex.position, k)})
    pd.DataFrame(reasons).to_csv(out / "reasons.csv", index=False)
    written.append(out / "reasons.csv")
    return written


def _reason_columns(explanation: Explanation, row: int, k: int, n: int = 3) -> dict[str, str]:
    return {f"reason_{i + 1}": text for i, text in enumerate(reasons_text(explanation, row, k, n))}


def log_explanations(run_id: str, bundle: ModelBundle, frame, max_rows: int = 2000) -> list[str]:
    """Write the plots for ``frame`` (e.g. the run's test rows) under ``shap/`` of the run."""
    import tempfile

    from mlflow import MlflowClient

    with tempfile.TemporaryDirectory() as tmp:
        paths = write_plots(bundle, frame, tmp, max_rows=max_rows)
        MlflowClient().log_artifacts(run_id, tmp, artifact_path="shap")
    return [f"shap/{p.name}" for p in paths]


def explain_command(model_uri: str, input_path, out_dir, patient_ids: Sequence[str] | None = None,
                    tracking_uri: str | None = None, max_rows: int = 2000) -> list[Path]:
    """``painml explain``: load a model (``models:/``, ``runs:/`` or a folder), explain a cohort file."""
    from painml import tracking
    from painml.train import load_predictor

    if not Path(model_uri).exists():  # a models:/ or runs:/ URI: resolved against the tracking store
        tracking.use_store(tracking.resolve_tracking_uri(tracking_uri))
    predictor = load_predictor(str(model_uri))
    return write_plots(predictor.bundle, _records(input_path), out_dir, patient_ids=patient_ids, max_rows=max_rows)
