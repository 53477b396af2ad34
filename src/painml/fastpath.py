"""The model without pandas or scikit-learn: records as column arrays, the fitted model as plain arrays.

Scoring a record through scikit-learn means a one-row DataFrame, a
``ColumnTransformer`` that validates and concatenates frames, and a LightGBM
call that converts the frame back to numbers: several milliseconds for a
fraction of a millisecond of arithmetic, and a second or two of imports
before the first one. Here the fitted estimator is read once into a
:class:`CompiledModel`: a JSON description plus arrays, saved next to the
estimator (:data:`painml.bundle.COMPILED_FILE`), and replayed on arrays:

- ``passthrough`` columns are stacked as float64, one-hot encoders use their
  fitted categories (NaN as a category of its own, unknown values as all
  zeros), imputers their statistics and missing-value indicators, scalers
  their mean and scale, the screening step
  :func:`painml.screening.score_arrays`;
- LightGBM's trees through :mod:`painml.trees` (the same sums, bit for bit),
  the logistic model through its coefficients (summed by ``einsum``, whose
  order does not depend on how many rows are scored together: BLAS's does,
  by a few units in the last place);
- temperature calibration with scikit-learn's own operations.

Anything else (sigmoid or isotonic calibration, binary labels, another
model) raises :class:`Unsupported` when compiling and the predictor keeps
scikit-learn's path. Every prediction path (one record, a batch, HTTP,
MLflow's pyfunc) goes through the same compiled model, and the tests check
it against the estimator's own ``predict_proba``.

:class:`RecordChecker` is the matching one-record gate. It accepts a record
only when it can prove that :func:`painml.schema.load_records` would accept
it and produce the same values (plain JSON types, numbers in range, known
category spellings); for anything else it answers None and the caller runs
the schema, which then reports every problem in its own words. A record the
checker accepts is therefore never one the schema would reject.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from painml import screening
from painml.columns import BY_NAME, INPUT_COLUMNS, LABEL, TRUE_PREFIX

__all__ = ["CheckedRecord", "CompiledModel", "RecordChecker", "Unsupported", "columns_of"]

Columns = Mapping[str, np.ndarray]

# The schema's spellings of true and false (painml.schema._BOOLEAN); a test checks they agree.
BOOLEAN_WORDS: dict[str, float] = {
    **dict.fromkeys(("true", "t", "yes", "y", "1", "1.0"), 1.0),
    **dict.fromkeys(("false", "f", "no", "n", "0", "0.0"), 0.0),
}
# Numbers written as text: only plain integers are decided here; anything else
# ("7.5", "1e2") goes to the schema, whose parser may round differently from float().
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]{1,15}")
_SMALL = 64


class Unsupported(Exception):
    """The fitted estimator contains a step the compiled path does not know."""


# --------------------------------------------------------------------------- one record


@dataclass(frozen=True)
class CheckedRecord:
    """A record the schema would accept, in the schema's canonical form: one scalar per record column.

    Findings and numbers are floats (NaN when missing), categories and ids
    text (NaN when missing), as in ``Records.frame``.
    """

    values: dict[str, Any]
    extras: dict[str, Any]
    label: str | None


class RecordChecker:
    """Decides the common case of one record without pandas; None means "ask the schema".

    Only ``str``, ``int``, ``float``, ``bool`` and ``None`` values are decided.
    """

    def __init__(self, classes: Sequence[str], allow_extra: bool) -> None:
        self.allow_extra = allow_extra
        self._label = {c.lower(): c for c in classes}
        self._specs = [
            (c.name, c.kind, c.low, c.high, {a.lower(): a for a in c.allowed}) for c in INPUT_COLUMNS
        ]
        self._known = frozenset(BY_NAME)

    def check(self, record: Mapping[str, Any]) -> CheckedRecord | None:
        values: dict[str, Any] = {}
        for key, value in record.items():
            if not isinstance(key, str):
                return None
            name = key.strip()
            if name in values:  # two keys naming one column after stripping
                return None
            values[name] = value
        extras = {}
        for name, value in values.items():
            if name not in self._known and not name.startswith(TRUE_PREFIX):
                if not self.allow_extra:
                    return None
                extras[name] = value
        out: dict[str, Any] = {}
        for name, kind, low, high, allowed in self._specs:
            parsed = _parse(values.get(name), kind, low, high, allowed)
            if parsed is _BAD:
                return None
            out[name] = parsed
        label = None
        if LABEL.name in values:
            label = _parse(values[LABEL.name], "category", None, None, self._label)
            if label is _BAD:
                return None
            label = None if isinstance(label, float) else label
        return CheckedRecord(out, extras, label)


_BAD = object()


def _parse(value: Any, kind: str, low: float | None, high: float | None, allowed: Mapping[str, str]) -> Any:
    """The canonical value (float, or text / NaN for categories and ids), or _BAD when undecided."""
    if value is None:
        return math.nan
    t = type(value)
    if t is float and value != value:
        return math.nan
    if kind == "binary":
        if t is bool:
            return 1.0 if value else 0.0
        if t is int or t is float:
            return float(value) if value in (0, 1) else _BAD
        if t is str:
            text = value.strip()
            if not text:
                return math.nan
            return BOOLEAN_WORDS.get(text.lower(), _BAD)
        return _BAD
    if kind in ("integer", "number"):
        if t is int or t is float:
            x = float(value) if abs(value) < 1e300 else math.inf
        elif t is str:
            text = value.strip()
            if not text:
                return math.nan
            if not _INTEGER_TEXT.fullmatch(text):
                return _BAD
            x = float(int(text))
        else:
            return _BAD
        if not math.isfinite(x):
            return _BAD
        if (low is not None and x < low) or (high is not None and x > high):
            return _BAD
        if kind == "integer" and x % 1 != 0:
            return _BAD
        return x
    if kind == "category":
        if t is not str:
            return _BAD
        text = value.strip()
        if not text:
            return math.nan
        return allowed.get(text.lower(), _BAD)
    # id: text as written, stripped; a whole number is shown as pandas would (str of the int)
    if t is str:
        text = value.strip()
        return text if text else math.nan
    if t is int:
        return str(value)
    return _BAD


def columns_of(frame: Any) -> dict[str, np.ndarray]:
    """The record columns of a validated frame (``Records.frame``) as arrays, without copies."""
    return {c.name: frame[c.name].to_numpy() for c in INPUT_COLUMNS}


# --------------------------------------------------------------------------- compiled model

FORMAT = 1
Step = Callable[[Columns, int, Mapping[str, np.ndarray]], np.ndarray]
RowStep = Callable[[Mapping[str, Any], Mapping[str, float]], list[float]]
ArrayStep = Callable[[np.ndarray], np.ndarray]
_TREES = "trees."


class CompiledModel:
    """A fitted painml estimator as a plain description plus arrays; see the module docstring.

    ``spec`` is JSON (steps, categories, imputer and scaler statistics, the
    linear model, calibration); ``arrays`` hold the trees. :meth:`save` and
    :meth:`load` keep both in one ``.npz`` read without pickles.
    """

    def __init__(self, spec: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        if spec.get("format") != FORMAT:
            raise Unsupported(f"compiled model format {spec.get('format')!r}; this painml reads {FORMAT}")
        self.spec = dict(spec)
        self.classes = list(spec["classes"])
        self.feature_names = list(spec["feature_names"])
        self.sources = dict(zip(self.feature_names, spec["sources"]))
        self.score_names = tuple(screening.SCORE_NAMES)
        self._steps: list[Step] = []
        self._row_steps: list[RowStep] = []
        for step in spec["steps"]:
            run, run_row = _runtime_step(step)
            self._steps.append(_checked_width(run, step["width"], step["name"]))
            self._row_steps.append(run_row)
        model = spec["model"]
        self.family = model["kind"]
        self._model_order = np.asarray(model["order"], dtype=np.intp)
        if self.family == "trees":
            from painml.trees import TreeEnsemble

            self.trees = TreeEnsemble.from_arrays(
                {k[len(_TREES):]: v for k, v in arrays.items() if k.startswith(_TREES)})
            self.coef = self.intercept = self.background = None
        else:
            self.trees = None
            self.coef = np.asarray(model["coef"], dtype=np.float64)
            self.intercept = np.asarray(model["intercept"], dtype=np.float64)
            self.background = np.asarray(model["background"], dtype=np.float64)
        calibration = spec["calibration"]
        self.temperature = None if calibration is None else float(calibration["beta"])
        self._order = self._model_order if calibration is None else np.asarray(calibration["order"], dtype=np.intp)

    # -- building and storing

    @classmethod
    def from_estimator(cls, estimator: Any, classes: Sequence[str], metadata: Mapping[str, Any]) -> CompiledModel:
        """Read a fitted painml estimator (scikit-learn and LightGBM are imported here, not when scoring)."""
        spec, arrays = _compile_estimator(estimator, list(classes), metadata)
        return cls(spec, arrays)

    def save(self, path: str | Path) -> None:
        arrays = {} if self.trees is None else {_TREES + k: v for k, v in self.trees.arrays().items()}
        np.savez(path, spec=np.array(json.dumps(self.spec)), **arrays)

    @classmethod
    def load(cls, path: str | Path) -> CompiledModel:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {k: stored[k] for k in stored.files}
        return cls(json.loads(str(arrays.pop("spec"))), arrays)

    @property
    def temperature_factor(self) -> float:
        """Calibrated logits are the raw ones times this (1 without calibration)."""
        return 1.0 if self.temperature is None else self.temperature

    # -- encoding

    def scores(self, columns: Columns, n: int) -> dict[str, np.ndarray]:
        """Every screening score, computed once: a feature, context in the output and shown in reasons."""
        return screening.score_arrays(columns, self.score_names, n)

    def score_row(self, values: Mapping[str, Any]) -> dict[str, float]:
        """:meth:`scores` for one record of scalars (:func:`painml.screening.score_record`)."""
        return screening.score_record(values, self.score_names)

    def encode_row(self, values: Mapping[str, Any], scores: Mapping[str, float]) -> np.ndarray:
        """:meth:`encode` for one record of scalars: a (1, features) matrix with the same numbers."""
        row: list[float] = []
        for step in self._row_steps:
            row.extend(step(values, scores))
        return np.array(row, dtype=np.float64).reshape(1, -1)

    def encode(self, columns: Columns, n: int, scores: Mapping[str, np.ndarray]) -> np.ndarray:
        """The model's input matrix (n, features), equal to the fitted ColumnTransformer's output."""
        blocks = [step(columns, n, scores) for step in self._steps]
        out = np.concatenate(blocks, axis=1) if blocks else np.empty((n, 0))
        return np.ascontiguousarray(out, dtype=np.float64)

    # -- probabilities

    def decision(self, X: np.ndarray, threads: int | None = None) -> np.ndarray:
        """Raw scores (LightGBM margins, logistic decision function), model class order."""
        if self.trees is not None:
            return self.trees.raw_scores(X, _threads(threads, len(X)))
        # einsum, not BLAS: BLAS sums in a different order for one row than for many, which
        # would make a patient's probabilities depend (in the last bit) on its batch.
        return np.einsum("ij,kj->ik", X, self.coef) + self.intercept

    def proba(self, X: np.ndarray, threads: int | None = None) -> np.ndarray:
        """Calibrated probabilities, columns in the bundle's class order."""
        if X.shape[0] == 0:
            return np.zeros((0, len(self.classes)))
        decision = self.decision(X, threads)
        if self.temperature is None:
            return _softmax(decision)[:, self._model_order]
        return _temperature_scaling(self.temperature, decision)[:, self._order]

    # -- explanations

    def contributions(self, X: np.ndarray, targets: np.ndarray, threads: int | None = None) -> np.ndarray:
        """Exact SHAP values (rows, encoded features) of each row's ``targets`` class (bundle order), raw scale.

        Trees: path-dependent TreeSHAP over that class's trees only
        (:meth:`painml.trees.TreeEnsemble.contributions`). Logistic:
        ``coef * (x - training mean)``, as :mod:`painml.explain` has it.
        """
        model_targets = self._model_order[np.asarray(targets, dtype=np.intp)]
        if self.trees is not None:
            return self.trees.contributions(X, model_targets, _threads(threads, len(X)))
        from painml.reasons import fill_unknown_means

        return (X - fill_unknown_means(self.background, X)) * self.coef[model_targets]


def _threads(threads: int | None, n: int) -> int:
    """Explicit, else every core for large inputs: splitting rows costs more than it saves below ~2,000."""
    if threads:
        return threads
    return max(1, min(os.cpu_count() or 1, n // 2000))


def _softmax(x: np.ndarray) -> np.ndarray:
    """``sklearn.utils.extmath.softmax``'s operations, in the same order."""
    x = np.array(x, dtype=np.float64)
    x -= np.max(x, axis=1).reshape((-1, 1))
    np.exp(x, x)
    x /= np.sum(x, axis=1).reshape((-1, 1))
    return x


def _temperature_scaling(beta: float, predictions: np.ndarray) -> np.ndarray:
    """``_TemperatureScaling.predict`` (scikit-learn 1.9) without its input checks: the same operations.

    Probabilities (every entry in [0, 1], rows summing to 1) are read as
    ``log(p + 1e-12)``, anything else as logits; then ``softmax(beta * logits)``.
    """
    x = np.asarray(predictions, dtype=np.float64)
    # (min/max first: raw margins are usually negative somewhere, and isclose is slow on small arrays)
    if x.min() >= 0 and x.max() <= 1 and np.all(np.isclose(np.sum(x, axis=1), 1.0)):
        x = np.log(x + 1e-12)
    z = beta * x
    z -= np.reshape(np.max(z, axis=1), (-1, 1))
    np.exp(z, out=z)
    z /= np.reshape(np.sum(z, axis=1), (-1, 1))
    return z


# --------------------------------------------------------------------------- runtime steps


def _runtime_step(step: Mapping[str, Any]) -> tuple[Step, RowStep]:
    """A spec step as a column-array function and its one-record twin."""
    kind = step["kind"]
    if kind == "columns":
        cols = step["columns"]
        head: Step = lambda columns, n, scores: _stack([np.asarray(columns[c], dtype=np.float64) for c in cols], n)
        head_row: RowStep = lambda values, scores: [float(values[c]) for c in cols]
    elif kind == "scores":
        names = step["scores"]
        head = lambda columns, n, scores: _stack([scores[s] for s in names], n)
        head_row = lambda values, scores: [scores[s] for s in names]
    elif kind == "onehot":
        head, head_row = _onehot(step["columns"], step["categories"])
    else:
        raise Unsupported(f"step kind {kind!r}")
    tail = [_array_step(t) for t in step.get("then", [])]
    if not tail:
        return head, head_row

    def run(columns: Columns, n: int, scores: Mapping[str, np.ndarray]) -> np.ndarray:
        x = head(columns, n, scores)
        for f in tail:
            x = f(x)
        return x

    def run_row(values: Mapping[str, Any], scores: Mapping[str, float]) -> list[float]:
        x = np.array([head_row(values, scores)], dtype=np.float64)
        for f in tail:
            x = f(x)
        return x[0].tolist()

    return run, run_row


def _array_step(step: Mapping[str, Any]) -> ArrayStep:
    if step["kind"] == "scale":
        mean = None if step["mean"] is None else np.asarray(step["mean"], dtype=np.float64)
        scale = None if step["scale"] is None else np.asarray(step["scale"], dtype=np.float64)

        def scaled(x: np.ndarray) -> np.ndarray:
            x = np.array(x, dtype=np.float64)
            if mean is not None:
                x -= mean
            if scale is not None:
                x /= scale
            return x

        return scaled
    if step["kind"] == "impute":
        statistics = np.asarray(step["statistics"], dtype=np.float64)
        keep = None if step["keep"] is None else np.asarray(step["keep"], dtype=bool)
        indicator = None if step["indicator"] is None else np.asarray(step["indicator"], dtype=np.intp)

        def imputed(x: np.ndarray) -> np.ndarray:
            missing = np.isnan(x)
            out = np.where(missing, statistics, x)
            if keep is not None:
                out = out[:, keep]
            if indicator is not None:
                out = np.hstack([out, missing[:, indicator].astype(np.float64)])
            return out

        return imputed
    raise Unsupported(f"step kind {step['kind']!r}")


def _checked_width(step: Step, width: int, name: str) -> Step:
    def run(columns: Columns, n: int, scores: Mapping[str, np.ndarray]) -> np.ndarray:
        out = step(columns, n, scores)
        if out.shape != (n, width):
            raise RuntimeError(f"compiled step {name!r} gave {out.shape[1]} columns, expected {width}")
        return out

    return run


def _stack(arrays: list[np.ndarray], n: int) -> np.ndarray:
    if not arrays:
        return np.empty((n, 0))
    return np.column_stack(arrays).astype(np.float64, copy=False)


def _onehot(cols: list[str], categories: list[list[str | None]]) -> tuple[Step, RowStep]:
    """One-hot columns as scikit-learn's encoder makes them: NaN is a category when it was seen in
    fitting (``None`` in the spec), an unknown value is all zeros."""
    layout = []
    offset = 0
    for col, cats in zip(cols, categories):
        position = {c: i for i, c in enumerate(cats) if c is not None}
        missing = cats.index(None) if None in cats else -1
        layout.append((col, offset, position, missing))
        offset += len(cats)
    width = offset

    def run_row(values: Mapping[str, Any], scores: Mapping[str, float]) -> list[float]:
        out = [0.0] * width
        for col, start, position, missing in layout:
            index = _category_index(values[col], position, missing)
            if index >= 0:
                out[start + index] = 1.0
        return out

    def run(columns: Columns, n: int, scores: Mapping[str, np.ndarray]) -> np.ndarray:
        out = np.zeros((n, width))
        rows = np.arange(n)
        for col, start, position, missing in layout:
            values = columns[col]
            if n <= _SMALL:
                index = np.array([_category_index(v, position, missing) for v in values], dtype=np.int64).reshape(n)
            else:
                import pandas as pd

                codes, uniques = pd.factorize(values, use_na_sentinel=True)
                lookup = np.array([*(position.get(u, -1) for u in uniques), missing], dtype=np.int64)
                index = lookup[codes]
            hit = index >= 0
            out[rows[hit], start + index[hit]] = 1.0
        return out

    return run, run_row


def _category_index(value: Any, position: Mapping[Any, int], missing: int) -> int:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    return position.get(value, -1)


# --------------------------------------------------------------------------- compiling a fitted estimator


def _compile_estimator(estimator: Any, classes: list[str], metadata: Mapping[str, Any]) -> tuple[dict, dict]:
    """The spec and arrays of a fitted painml estimator; :class:`Unsupported` for anything else."""
    from sklearn.pipeline import Pipeline

    from painml.features import feature_sources

    calibrated = getattr(estimator, "calibrated_classifiers_", None)
    if calibrated is not None:
        if len(calibrated) != 1:
            raise Unsupported("an ensemble of calibrated classifiers")
        inner = calibrated[0]
        pipeline = getattr(inner.estimator, "estimator", inner.estimator)
        if inner.method != "temperature":
            raise Unsupported(f"calibration method {inner.method!r}")
    else:
        pipeline = estimator
    if not isinstance(pipeline, Pipeline) or list(pipeline.named_steps) != ["features", "model"]:
        raise Unsupported("the estimator is not a features + model pipeline")
    transformer, model = pipeline.named_steps["features"], pipeline.named_steps["model"]
    feature_names = [str(n) for n in transformer.get_feature_names_out()]
    model_classes = [str(c) for c in model.classes_]
    if len(model_classes) < 3:
        raise Unsupported("binary models take scikit-learn's path")
    if sorted(model_classes) != sorted(classes):
        raise Unsupported("the model's classes differ from the bundle's")
    sources = feature_sources(transformer)
    spec: dict[str, Any] = {
        "format": FORMAT,
        "classes": classes,
        "feature_names": feature_names,
        "sources": [sources[n] for n in feature_names],
        "steps": _compile_transformer(transformer, len(feature_names)),
        "calibration": None,
    }
    arrays: dict[str, np.ndarray] = {}
    order = [model_classes.index(c) for c in classes]
    booster = getattr(model, "booster_", None)
    if booster is not None:
        if callable(getattr(model, "_objective", None)):
            raise Unsupported("a custom LightGBM objective")
        from painml import trees

        try:
            ensemble = trees.TreeEnsemble.from_booster(booster)
            # builds the SHAP tables now, so a model whose trees cannot be explained fails here, not mid-request
            ensemble.contributions(np.zeros((1, ensemble.n_features)), np.zeros(1, dtype=np.intp))
        except trees.Unsupported as why:
            raise Unsupported(str(why)) from None
        arrays = {_TREES + k: v for k, v in ensemble.arrays().items()}
        spec["model"] = {"kind": "trees", "order": order}
    elif hasattr(model, "coef_") and hasattr(model, "intercept_") and np.ndim(model.coef_) == 2:
        from painml.explain import known_means

        background = known_means(metadata, transformer, feature_names)
        spec["model"] = {"kind": "linear", "order": order, "coef": np.asarray(model.coef_, dtype=np.float64).tolist(),
                         "intercept": np.asarray(model.intercept_, dtype=np.float64).tolist(),
                         "background": background.tolist()}
    else:
        raise Unsupported(f"model {type(model).__name__}")
    if calibrated is not None:
        if not hasattr(pipeline, "decision_function"):
            raise Unsupported("calibration that reads probabilities (LightGBM before 4.7)")
        outer = [str(c) for c in estimator.classes_]
        if sorted(outer) != sorted(classes):
            raise Unsupported("the estimator's classes differ from the bundle's")
        spec["calibration"] = {"kind": "temperature", "beta": float(inner.calibrators[0].beta_),
                               "order": [outer.index(c) for c in classes]}
    return spec, arrays


def _compile_transformer(transformer: Any, width: int) -> list[dict[str, Any]]:
    """One spec step per ColumnTransformer entry, in output order."""
    from sklearn.compose import ColumnTransformer

    if not isinstance(transformer, ColumnTransformer):
        raise Unsupported("the features step is not a ColumnTransformer")
    steps = []
    total = 0
    for name, step, cols in transformer.transformers_:
        if name == "remainder":
            if step != "drop" and len(cols):
                raise Unsupported("a remainder that is not dropped")
            continue
        if step == "drop":
            continue
        compiled = _compile_step(step, [str(c) for c in cols])
        expected = transformer.output_indices_[name]
        compiled["name"], compiled["width"] = name, expected.stop - expected.start
        steps.append(compiled)
        total += compiled["width"]
    if total != width:
        raise Unsupported("the transformer's outputs do not add up to its feature names")
    return steps


def _compile_step(step: Any, cols: list[str]) -> dict[str, Any]:
    """A ColumnTransformer entry: the first step reads columns, later ones map arrays."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    from painml.features import ScreeningScores

    if isinstance(step, Pipeline):
        first, *rest = [s for _, s in step.steps]
        if _is_passthrough(first) or isinstance(first, (Pipeline, OneHotEncoder, ScreeningScores)):
            head = _compile_step(first, cols)
        else:  # an imputer or scaler first: it reads the columns as they are
            head, rest = _compile_step("passthrough", cols), [first, *rest]
        head["then"] = head.get("then", []) + [_compile_array_step(s) for s in rest if not _is_passthrough(s)]
        return head
    if _is_passthrough(step):
        return {"kind": "columns", "columns": cols}
    if isinstance(step, ScreeningScores):
        unread = [s for s in step.scores_ if not set(screening.SCORE_COLUMNS[s]) <= set(cols)]
        if unread:  # the compiled step scores from the whole record; scikit-learn's sees only ``cols``
            raise Unsupported(f"screening scores {unread} without all their items among the step's columns")
        return {"kind": "scores", "scores": list(step.scores_)}
    if isinstance(step, OneHotEncoder):
        return _compile_onehot(step, cols)
    raise Unsupported(f"step {type(step).__name__}")


def _compile_array_step(step: Any) -> dict[str, Any]:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    if isinstance(step, StandardScaler):
        return {"kind": "scale", "mean": step.mean_.tolist() if step.with_mean else None,
                "scale": step.scale_.tolist() if step.with_std else None}
    if isinstance(step, SimpleImputer):
        if not (isinstance(step.missing_values, float) and math.isnan(step.missing_values)):
            raise Unsupported("an imputer for values other than NaN")
        statistics = np.asarray(step.statistics_, dtype=np.float64)
        keep = None
        if not step.keep_empty_features and np.isnan(statistics).any():
            keep = (~np.isnan(statistics)).tolist()
        indicator = None
        if step.add_indicator and step.indicator_ is not None:
            indicator = np.asarray(step.indicator_.features_).tolist()
        return {"kind": "impute", "statistics": statistics.tolist(), "keep": keep, "indicator": indicator}
    raise Unsupported(f"step {type(step).__name__}")


def _is_passthrough(step: Any) -> bool:
    from sklearn.preprocessing import FunctionTransformer

    if isinstance(step, str):
        return step == "passthrough"
    return isinstance(step, FunctionTransformer) and step.func is None


def _compile_onehot(encoder: Any, cols: list[str]) -> dict[str, Any]:
    if encoder.drop is not None or getattr(encoder, "_infrequent_enabled", False):
        raise Unsupported("a one-hot encoder that drops or groups categories")
    if encoder.handle_unknown != "ignore":
        raise Unsupported("a one-hot encoder that does not ignore unknown categories")
    categories = []
    for found in encoder.categories_:
        spelled: list[str | None] = []
        for category in found.tolist():
            if isinstance(category, float) and math.isnan(category):
                spelled.append(None)
            elif isinstance(category, str):
                spelled.append(category)
            else:
                raise Unsupported(f"a category that is not text: {category!r}")
        categories.append(spelled)
    return {"kind": "onehot", "columns": cols, "categories": categories}
