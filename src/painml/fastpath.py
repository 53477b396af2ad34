"""The model without pandas: records as column arrays, the fitted pipeline read as plain numpy.

Scoring a record through scikit-learn means a one-row DataFrame, a
``ColumnTransformer`` that validates and concatenates frames, and a LightGBM
call that converts the frame back to numbers: several milliseconds for a
fraction of a millisecond of arithmetic. Here the fitted pipeline is read
once (:class:`CompiledModel`) and replayed on arrays:

- ``passthrough`` columns are stacked as float64, one-hot encoders use their
  fitted ``categories_`` (NaN as a category of its own, unknown values as all
  zeros), imputers their ``statistics_`` and missing-value indicators, scalers
  their ``mean_`` and ``scale_``, the screening step
  :func:`painml.screening.score_arrays`;
- LightGBM is asked through its booster with an explicit ``num_threads`` (1 on
  the one-record path: two OpenMP threads on one row cost more than the trees),
  the logistic model through its coefficients (summed by ``einsum``, whose
  order does not depend on how many rows are scored together: BLAS's does,
  by a few units in the last place);
- the calibrators are scikit-learn's own fitted objects, applied as
  ``CalibratedClassifierCV.predict_proba`` does.

Anything else in a pipeline raises :class:`Unsupported` at compile time and
the predictor keeps scikit-learn's path. Every prediction path (one record,
a batch, HTTP, MLflow's pyfunc) goes through the same compiled model, and the
tests check it against the estimator's own ``predict_proba``.

:class:`RecordChecker` is the matching one-record gate. It accepts a record
only when it can prove that :func:`painml.schema.load_records` would accept
it and produce the same values (plain JSON types, numbers in range, known
category spellings); for anything else it answers None and the caller runs
the schema, which then reports every problem in its own words. A record the
checker accepts is therefore never one the schema would reject.
"""

from __future__ import annotations

import math
import re
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

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

    def columns(self) -> dict[str, np.ndarray]:
        """The same record as one-row column arrays."""
        return {
            name: np.array([value], dtype=np.float64 if isinstance(value, float) else object)
            for name, value in self.values.items()
        }


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


def columns_of(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The record columns of a validated frame (``Records.frame``) as arrays, without copies."""
    return {c.name: frame[c.name].to_numpy() for c in INPUT_COLUMNS}


# --------------------------------------------------------------------------- compiled model


Step = Callable[[Columns, int, dict[str, np.ndarray]], np.ndarray]
ArrayStep = Callable[[np.ndarray], np.ndarray]


class CompiledModel:
    """A fitted painml estimator replayed on column arrays; see the module docstring."""

    def __init__(self, estimator: Any, classes: Sequence[str]) -> None:
        from sklearn.pipeline import Pipeline

        self.classes = list(classes)
        calibrated = getattr(estimator, "calibrated_classifiers_", None)
        if calibrated is not None:
            if len(calibrated) != 1:
                raise Unsupported("an ensemble of calibrated classifiers")
            self._calibrated = calibrated[0]
            pipeline = getattr(self._calibrated.estimator, "estimator", self._calibrated.estimator)
            if self._calibrated.method not in ("sigmoid", "isotonic", "temperature"):
                raise Unsupported(f"calibration method {self._calibrated.method!r}")
        else:
            self._calibrated = None
            pipeline = estimator
        if not isinstance(pipeline, Pipeline) or list(pipeline.named_steps) != ["features", "model"]:
            raise Unsupported("the estimator is not a features + model pipeline")
        self.pipeline = pipeline
        self.transformer = pipeline.named_steps["features"]
        self.model = pipeline.named_steps["model"]
        self.feature_names = [str(n) for n in self.transformer.get_feature_names_out()]
        self._steps, self._row_steps = _compile_transformer(self.transformer, len(self.feature_names))
        self.booster = getattr(self.model, "booster_", None)
        model_classes = [str(c) for c in self.model.classes_]
        if len(model_classes) < 3:
            raise Unsupported("binary models take scikit-learn's path")
        if self.booster is not None:
            if callable(getattr(self.model, "_objective", None)):
                raise Unsupported("a custom LightGBM objective")
        elif not (hasattr(self.model, "coef_") and hasattr(self.model, "intercept_")):
            raise Unsupported(f"model {type(self.model).__name__}")
        # What calibration reads, as scikit-learn picks it: the decision function when the
        # pipeline has one (logistic; LightGBM >= 4.7, raw margins), else the probabilities.
        self._decision = hasattr(self.pipeline, "decision_function")
        outer = estimator.classes_ if calibrated is not None else self.model.classes_
        outer = [str(c) for c in outer]
        if sorted(outer) != sorted(self.classes):
            raise Unsupported("the estimator's classes differ from the bundle's")
        self._order = [outer.index(c) for c in self.classes]
        self._model_order = [model_classes.index(c) for c in self.classes]
        self.score_names = tuple(screening.SCORE_NAMES)
        self._class_boosters: list[Any] | None = None
        self._fast = _PerThread()

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

    def encode(self, columns: Columns, n: int, scores: dict[str, np.ndarray]) -> np.ndarray:
        """The model's input matrix (n, features), equal to the fitted ColumnTransformer's output."""
        blocks = [step(columns, n, scores) for step in self._steps]
        out = np.concatenate(blocks, axis=1) if blocks else np.empty((n, 0))
        return np.ascontiguousarray(out, dtype=np.float64)

    # -- probabilities

    def decision(self, X: np.ndarray, threads: int | None = None) -> np.ndarray:
        """The model's raw scores (LightGBM margins, logistic decision function), model class order."""
        if self.booster is not None:
            if X.shape[0] == 1 and threads == 1:
                return self._one_row(self.booster, RAW_SCORE, X)
            return np.asarray(self.booster.predict(X, raw_score=True, validate_features=False, **_threads(threads)))
        # einsum, not BLAS: BLAS sums in a different order for one row than for many, which
        # would make a patient's probabilities depend (in the last bit) on its batch.
        coef = np.atleast_2d(self.model.coef_)
        scores = np.einsum("ij,kj->ik", X, coef) + self.model.intercept_
        return scores.reshape(-1) if scores.shape[1] == 1 else scores

    def model_proba(self, X: np.ndarray, threads: int | None = None) -> np.ndarray:
        """The uncalibrated model's ``predict_proba``, model class order."""
        if self.booster is not None:
            if X.shape[0] == 1 and threads == 1:
                return self._one_row(self.booster, NORMAL, X)
            return np.asarray(self.booster.predict(X, validate_features=False, **_threads(threads)))
        from sklearn.utils.extmath import softmax

        return softmax(self.decision(X), copy=False)

    def proba(self, X: np.ndarray, threads: int | None = None) -> np.ndarray:
        """Calibrated probabilities, columns in the bundle's class order."""
        if X.shape[0] == 0:
            return np.zeros((0, len(self.classes)))
        if self._calibrated is None:
            return self.model_proba(X, threads)[:, self._model_order]
        predictions = self.decision(X, threads) if self._decision else self.model_proba(X, threads)
        return self._calibrate(predictions)[:, self._order]

    def _calibrate(self, predictions: np.ndarray) -> np.ndarray:
        """``CalibratedClassifierCV.predict_proba`` of one calibrated classifier, given its predictions."""
        cc = self._calibrated
        n_classes = cc.classes.shape[0]
        n = predictions.shape[0]
        if cc.method == "temperature":
            proba = _temperature_scaling(cc.calibrators[0].beta_, predictions)
        else:
            from sklearn.preprocessing import LabelEncoder

            proba = np.zeros((n, n_classes))
            positions = LabelEncoder().fit(cc.classes).transform(cc.estimator.classes_)
            for class_idx, column, calibrator in zip(positions, predictions.T, cc.calibrators):
                proba[:, class_idx] = calibrator.predict(column)
            denominator = np.sum(proba, axis=1)[:, np.newaxis]
            uniform = np.full_like(proba, 1 / n_classes)
            proba = np.divide(proba, denominator, out=uniform, where=denominator != 0)
        proba[(1.0 < proba) & (proba <= 1.0 + 1e-5)] = 1.0
        mean = np.zeros((n, n_classes))
        mean += proba
        mean /= 1
        return mean

    # -- explanations

    def contributions(self, X: np.ndarray, targets: np.ndarray, threads: int | None = None) -> np.ndarray | None:
        """Exact SHAP values (rows, encoded features) of each row's ``targets`` class (bundle order), raw scale.

        LightGBM's TreeSHAP (``pred_contrib``) always explains every class; here
        each class's trees are split into a booster of their own
        (:func:`painml.explain.class_boosters`), so a row costs the trees of one
        class only, with the same numbers. None for a model that is not LightGBM.
        """
        if self.booster is None:
            return None
        if self._class_boosters is None:
            from painml.explain import class_boosters

            self._class_boosters = class_boosters(self.booster)
        n, m = X.shape
        out = np.empty((n, m))
        for k in np.unique(targets).tolist():
            rows = np.flatnonzero(targets == k)
            booster = self._class_boosters[self._model_order[k]]
            part = X if len(rows) == n else X[rows]
            if len(rows) == 1 and threads == 1:
                values = self._one_row(booster, CONTRIB, part)
            else:
                values = np.asarray(booster.predict(part, pred_contrib=True, validate_features=False,
                                                    **_threads(threads)))
            out[rows] = values[:, :m]
        return out

    def _one_row(self, booster: Any, kind: int, X: np.ndarray) -> np.ndarray:
        """LightGBM's single-row C entry point (``...SingleRowFast``): the same numbers without
        ``Booster.predict``'s per-call set-up, about 45 us of a one-record request."""
        fast = self._fast.get(id(booster), kind)
        if fast is None:
            fast = self._fast.put(id(booster), kind, _SingleRow(booster, kind, X.shape[1]))
        return fast.predict(X)


def _temperature_scaling(beta: float, predictions: np.ndarray) -> np.ndarray:
    """``_TemperatureScaling.predict`` (scikit-learn 1.9) without its input checks: the same operations.

    Probabilities (every entry in [0, 1], rows summing to 1) are read as
    ``log(p + 1e-12)``, anything else as logits; then ``softmax(beta * logits)``.
    """
    x = np.asarray(predictions, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < 2:
        raise Unsupported("temperature scaling of a one-column response")
    # (min/max first: raw margins are usually negative somewhere, and isclose is slow on small arrays)
    if x.min() >= 0 and x.max() <= 1 and np.all(np.isclose(np.sum(x, axis=1), 1.0)):
        x = np.log(x + 1e-12)
    z = beta * x
    z -= np.reshape(np.max(z, axis=1), (-1, 1))
    np.exp(z, out=z)
    z /= np.reshape(np.sum(z, axis=1), (-1, 1))
    return z


NORMAL, RAW_SCORE, CONTRIB = 0, 1, 3  # LightGBM's C_API_PREDICT_* codes


class _PerThread(threading.local):
    """Single-row predictors per thread: LightGBM's fast single-row state must not be shared."""

    def __init__(self) -> None:
        self.items: dict[tuple[int, int], _SingleRow] = {}

    def get(self, booster_id: int, kind: int) -> _SingleRow | None:
        return self.items.get((booster_id, kind))

    def put(self, booster_id: int, kind: int, fast: _SingleRow) -> _SingleRow:
        self.items[(booster_id, kind)] = fast
        return fast


class _SingleRow:
    """``LGBM_BoosterPredictForMatSingleRowFast`` for one booster and one prediction kind, one thread.

    Gives exactly what ``Booster.predict`` gives for one float64 row with
    ``num_threads=1`` (a test checks it); the C state is freed with the object.
    """

    def __init__(self, booster: Any, kind: int, n_features: int) -> None:
        import ctypes

        from lightgbm.basic import _LIB, _c_str, _safe_call

        self._booster = booster  # the C handle must outlive the fast config
        self._ctypes, self._lib, self._check = ctypes, _LIB, _safe_call
        n_out = booster.num_model_per_iteration() * ((n_features + 1) if kind == CONTRIB else 1)
        self.out = np.empty(n_out)
        self.n_out = ctypes.c_int64()
        self.handle = ctypes.c_void_p()
        # as Booster.predict: the best iteration when there is one, else every tree
        iterations = booster.best_iteration if booster.best_iteration > 0 else -1
        _safe_call(_LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
            booster._handle, ctypes.c_int(kind), ctypes.c_int(0), ctypes.c_int(iterations),
            ctypes.c_int(1), ctypes.c_int32(n_features), _c_str("num_threads=1"), ctypes.byref(self.handle)))
        self._out_ptr = self.out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        self._finalizer = weakref.finalize(self, _LIB.LGBM_FastConfigFree, self.handle)

    def predict(self, X: np.ndarray) -> np.ndarray:
        row = np.ascontiguousarray(X[0], dtype=np.float64)
        self._check(self._lib.LGBM_BoosterPredictForMatSingleRowFast(
            self.handle, row.ctypes.data_as(self._ctypes.c_void_p), self._ctypes.byref(self.n_out), self._out_ptr))
        return self.out[: self.n_out.value].copy().reshape(1, -1)


def _threads(threads: int | None) -> dict[str, int]:
    return {} if threads is None else {"num_threads": threads}


RowStep = Callable[[Mapping[str, Any], Mapping[str, float]], list[float]]


def _compile_transformer(transformer: Any, width: int) -> tuple[list[Step], list[RowStep]]:
    """Column-array steps and their one-record twins, one pair per ColumnTransformer entry."""
    from sklearn.compose import ColumnTransformer

    if not isinstance(transformer, ColumnTransformer):
        raise Unsupported("the features step is not a ColumnTransformer")
    steps: list[Step] = []
    rows: list[RowStep] = []
    total = 0
    for name, step, cols in transformer.transformers_:
        if name == "remainder":
            if step != "drop" and len(cols):
                raise Unsupported("a remainder that is not dropped")
            continue
        if step == "drop":
            continue
        cols = [str(c) for c in cols]
        compiled, row = _compile_step(step, cols)
        expected = transformer.output_indices_[name]
        steps.append(_checked_width(compiled, expected.stop - expected.start, name))
        rows.append(row)
        total += expected.stop - expected.start
    if total != width:
        raise Unsupported("the transformer's outputs do not add up to its feature names")
    return steps, rows


def _checked_width(step: Step, width: int, name: str) -> Step:
    def run(columns: Columns, n: int, scores: dict[str, np.ndarray]) -> np.ndarray:
        out = step(columns, n, scores)
        if out.shape != (n, width):
            raise RuntimeError(f"compiled step {name!r} gave {out.shape[1]} columns, expected {width}")
        return out

    return run


def _compile_step(step: Any, cols: list[str]) -> tuple[Step, RowStep]:
    """A ColumnTransformer entry: the first step reads columns (or one record), later ones map arrays."""
    from sklearn.pipeline import Pipeline

    if isinstance(step, Pipeline):
        first, *rest = [s for _, s in step.steps]
        if _reads_columns(first):
            head, head_row = _compile_step(first, cols)
        else:  # an imputer or scaler first: it reads the columns as they are
            head, head_row = _compile_step("passthrough", cols)
            rest = [first, *rest]
        tail = [_compile_array_step(s) for s in rest]

        def run(columns: Columns, n: int, scores: dict[str, np.ndarray]) -> np.ndarray:
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
    if _is_passthrough(step):
        return (
            lambda columns, n, scores: _stack([np.asarray(columns[c], dtype=np.float64) for c in cols], n),
            lambda values, scores: [float(values[c]) for c in cols],
        )
    if isinstance(step, screening.ScreeningScores):
        names = list(step.scores_)
        return (
            lambda columns, n, scores: _stack([scores[s] for s in names], n),
            lambda values, scores: [scores[s] for s in names],
        )
    from sklearn.preprocessing import OneHotEncoder

    if isinstance(step, OneHotEncoder):
        return _compile_onehot(step, cols)
    raise Unsupported(f"step {type(step).__name__}")


def _compile_array_step(step: Any) -> ArrayStep:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    if _is_passthrough(step):
        return lambda x: x
    if isinstance(step, StandardScaler):
        mean = step.mean_ if step.with_mean else None
        scale = step.scale_ if step.with_std else None

        def scaled(x: np.ndarray) -> np.ndarray:
            x = np.array(x, dtype=np.float64)
            if mean is not None:
                x -= mean
            if scale is not None:
                x /= scale
            return x

        return scaled
    if isinstance(step, SimpleImputer):
        if not (isinstance(step.missing_values, float) and math.isnan(step.missing_values)):
            raise Unsupported("an imputer for values other than NaN")
        statistics = np.asarray(step.statistics_, dtype=np.float64)
        keep = None
        if not step.keep_empty_features and np.isnan(statistics).any():
            keep = ~np.isnan(statistics)
        indicator = step.indicator_.features_ if step.add_indicator and step.indicator_ is not None else None

        def imputed(x: np.ndarray) -> np.ndarray:
            missing = np.isnan(x)
            out = np.where(missing, statistics, x)
            if keep is not None:
                out = out[:, keep]
            if indicator is not None:
                out = np.hstack([out, missing[:, indicator].astype(np.float64)])
            return out

        return imputed
    raise Unsupported(f"step {type(step).__name__}")


def _reads_columns(step: Any) -> bool:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    return _is_passthrough(step) or isinstance(step, (Pipeline, OneHotEncoder, screening.ScreeningScores))


def _is_passthrough(step: Any) -> bool:
    from sklearn.preprocessing import FunctionTransformer

    if isinstance(step, str):
        return step == "passthrough"
    return isinstance(step, FunctionTransformer) and step.func is None


def _stack(arrays: list[np.ndarray], n: int) -> np.ndarray:
    if not arrays:
        return np.empty((n, 0))
    return np.column_stack(arrays).astype(np.float64, copy=False)


def _compile_onehot(encoder: Any, cols: list[str]) -> Step:
    if encoder.drop is not None or getattr(encoder, "_infrequent_enabled", False):
        raise Unsupported("a one-hot encoder that drops or groups categories")
    if encoder.handle_unknown != "ignore":
        raise Unsupported("a one-hot encoder that does not ignore unknown categories")
    layout = []
    offset = 0
    for col, categories in zip(cols, encoder.categories_):
        position: dict[Any, int] = {}
        missing = -1
        for i, category in enumerate(categories):
            if isinstance(category, float) and math.isnan(category):
                missing = i
            elif category is None:
                raise Unsupported("None as a category")
            else:
                position[category] = i
        layout.append((col, offset, position, missing))
        offset += len(categories)
    width = offset

    def run_row(values: Mapping[str, Any], scores: Mapping[str, float]) -> list[float]:
        out = [0.0] * width
        for col, start, position, missing in layout:
            index = _category_index(values[col], position, missing)
            if index >= 0:
                out[start + index] = 1.0
        return out

    def run(columns: Columns, n: int, scores: dict[str, np.ndarray]) -> np.ndarray:
        out = np.zeros((n, width))
        rows = np.arange(n)
        for col, start, position, missing in layout:
            values = columns[col]
            if n <= _SMALL:
                index = np.array([_category_index(v, position, missing) for v in values], dtype=np.int64).reshape(n)
            else:
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
