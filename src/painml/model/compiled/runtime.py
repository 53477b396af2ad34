"""The model without pandas or scikit-learn: records as column arrays, the fitted model as plain arrays.

Scoring a record through scikit-learn means a one-row DataFrame, a
``ColumnTransformer`` that validates and concatenates frames, and a LightGBM
call that converts the frame back to numbers: several milliseconds for a
fraction of a millisecond of arithmetic, and a second or two of imports
before the first one. Here the fitted estimator is read once into a
:class:`CompiledModel`: a JSON description plus arrays, saved next to the
estimator (:data:`painml.model.bundle.COMPILED_FILE`), and replayed on arrays:

- ``passthrough`` columns are stacked as float64, one-hot encoders use their
  fitted categories (NaN as a category of its own, unknown values as all
  zeros), imputers their statistics and missing-value indicators, scalers
  their mean and scale, the screening step
  :func:`painml.features.screening.score_arrays`;
- LightGBM's trees through :mod:`painml.model.compiled.trees` (the same sums, bit for bit),
  the logistic model through its coefficients (summed by ``einsum``, whose
  order does not depend on how many rows are scored together: BLAS's does,
  by a few units in the last place);
- temperature calibration with scikit-learn's own operations.

Anything else (sigmoid or isotonic calibration, binary labels, another
model) raises :class:`Unsupported` when compiling and the predictor keeps
scikit-learn's path. Every prediction path (one record, a batch, HTTP,
MLflow's pyfunc) goes through the same compiled model, and the tests check
it against the estimator's own ``predict_proba``.

The matching one-record gate is :class:`painml.record.gate.RecordChecker`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from painml.features import screening
from painml.model.background import fill_unknown_means

__all__ = ["CompiledModel", "Unsupported"]

Columns = Mapping[str, np.ndarray]

_SMALL = 64


class Unsupported(Exception):
    """The fitted estimator contains a step the compiled path does not know."""


# --------------------------------------------------------------------------- one record


# --------------------------------------------------------------------------- compiled model

FORMAT = 1
DIGEST_KEY = "sha256"
"""Spec key of the SHA-256 over the rest of the spec and every array, recorded at save."""
Step = Callable[[Columns, int, Mapping[str, np.ndarray]], np.ndarray]
RowStep = Callable[[Mapping[str, Any], Mapping[str, float]], list[float]]
ArrayStep = Callable[[np.ndarray], np.ndarray]
TREES_PREFIX = "trees."


class Damaged(ValueError):
    """A compiled model file that cannot be trusted: unreadable, truncated or changed since it was saved."""


def _digest(spec: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 over the spec (canonical JSON) and each array's name, dtype, shape and bytes."""
    h = hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"\0{name}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


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
            from painml.model.compiled.trees import TreeEnsemble

            self.trees = TreeEnsemble.from_arrays(
                {k[len(TREES_PREFIX) :]: v for k, v in arrays.items() if k.startswith(TREES_PREFIX)}
            )
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

    def save(self, path: str | Path) -> None:
        """Spec and arrays in one ``.npz``, with a SHA-256 over both (:data:`DIGEST_KEY`) checked on load."""
        arrays = {} if self.trees is None else {TREES_PREFIX + k: v for k, v in self.trees.arrays().items()}
        spec = {k: v for k, v in self.spec.items() if k != DIGEST_KEY}
        spec[DIGEST_KEY] = _digest(spec, arrays)
        np.savez(path, spec=np.array(json.dumps(spec)), **arrays)

    @classmethod
    def load(cls, path: str | Path) -> CompiledModel:
        """Read :meth:`save`'s file; ``Damaged`` when it is unreadable or its digest does not match its
        contents, ``Unsupported`` when it predates the digest or has another format."""
        try:
            with np.load(path, allow_pickle=False) as stored:
                arrays = {k: stored[k] for k in stored.files}
            spec = json.loads(str(arrays.pop("spec")))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            raise Damaged(f"{path}: not a readable compiled model ({error or type(error).__name__})") from None
        if not isinstance(spec, dict):
            raise Damaged(f"{path}: not a readable compiled model (its spec is not an object)")
        recorded = spec.pop(DIGEST_KEY, None)
        if recorded is None:
            raise Unsupported(f"{path} has no SHA-256 of its contents (saved by an older painml)")
        if recorded != _digest(spec, arrays):
            raise Damaged(f"{path}: its contents do not match the SHA-256 recorded when it was saved")
        try:
            return cls({**spec, DIGEST_KEY: recorded}, arrays)
        except Unsupported:
            raise
        except (ValueError, KeyError, TypeError, IndexError) as error:
            raise Damaged(f"{path}: not a compiled model painml can read ({error})") from None

    @property
    def temperature_factor(self) -> float:
        """Calibrated logits are the raw ones times this (1 without calibration)."""
        return 1.0 if self.temperature is None else self.temperature

    # -- encoding

    def scores(self, columns: Columns, n: int) -> dict[str, np.ndarray]:
        """Every screening score, computed once: a feature, context in the output and shown in reasons."""
        return screening.score_arrays(columns, self.score_names, n)

    def score_row(self, values: Mapping[str, Any]) -> dict[str, float]:
        """:meth:`scores` for one record of scalars (:func:`painml.features.screening.score_record`)."""
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
        (:meth:`painml.model.compiled.trees.TreeEnsemble.contributions`). Logistic:
        ``coef * (x - training mean)``, as :mod:`painml.explain.shap` has it.
        """
        model_targets = self._model_order[np.asarray(targets, dtype=np.intp)]
        if self.trees is not None:
            return self.trees.contributions(X, model_targets, _threads(threads, len(X)))
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
