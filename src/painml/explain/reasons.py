"""The reasons behind a prediction: which contributions, folded to which record column.

Shared by :mod:`painml.explain.shap` (reports, plots, ``top_reasons``) and the
predictor's fast path, and kept free of pandas and scikit-learn so that
scoring one patient from the command line starts quickly. The words come from
:mod:`painml.record.vocabulary`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from painml.features import screening
from painml.record.columns import FEATURE_COLUMNS
from painml.record.vocabulary import AWAY, TOWARDS, reason_sentence


@dataclass(frozen=True)
class Reason:
    """One reason behind one row's prediction for one class.

    ``size`` is the feature's SHAP value in calibrated log-odds of
    ``class_name``: positive pushes the probability of that class up
    (``direction == "towards"``), negative pushes it down ("away from").
    """

    feature: str
    label: str
    value: Any
    direction: str
    class_name: str
    size: float

    def __str__(self) -> str:
        return reason_sentence(self.label, self.direction, self.class_name, self.size)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def largest(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column positions and values of the ``k`` largest |values| per row, largest first (ties stable)."""
    top = np.argpartition(-np.abs(values), k - 1, axis=1)[:, :k]
    sizes = np.take_along_axis(values, top, axis=1)
    order = np.argsort(-np.abs(sizes), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1), np.take_along_axis(sizes, order, axis=1)


def folded_names(encoded: Sequence[str], sources: Mapping[str, str]) -> list[str]:
    """Record columns in schema order, then screening scores, then anything else."""
    origins = {sources[n] for n in encoded}
    folded = [c for c in (*FEATURE_COLUMNS, *screening.SCORE_NAMES) if c in origins]
    return folded + sorted(origins - set(folded))


def fold_matrix(encoded: Sequence[str], sources: Mapping[str, str], folded: Sequence[str]) -> np.ndarray:
    position = {f: i for i, f in enumerate(folded)}
    matrix = np.zeros((len(encoded), len(folded)))
    for e, name in enumerate(encoded):
        matrix[e, position[sources[name]]] = 1.0
    return matrix


def reasons_text(explanation: Any, row: int, k: int | None = None, n: int = 3, *, plain: bool = False) -> list[str]:
    """The ``n`` largest reasons of one row for class ``k`` (default: the predicted one), as sentences."""
    k = int(explanation.predicted[row]) if k is None else k
    cls = explanation.classes[k]
    values = explanation.values[row, :, k]
    out = []
    for j in np.argsort(-np.abs(values))[:n]:
        v = float(values[j])
        label = explanation.label(row, explanation.feature_names[j])
        out.append(reason_sentence(label, TOWARDS if v >= 0 else AWAY, cls, v, plain=plain))
    return out
