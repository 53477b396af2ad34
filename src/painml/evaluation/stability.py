"""Prediction instability across bootstrap refits (Riley & Collins 2023, Biom J 65:2200302).

At a few hundred patients the model itself is uncertain: refitted on a
bootstrap sample it can give the same patient quite different probabilities
or another class. Riley & Collins report this next to the usual metrics as
the mean absolute prediction error (MAPE) over B >= 200 bootstrap models, an
instability plot (full-model vs bootstrap-model predictions) and the share
of patients whose classification flips. This module computes those numbers
from predictions the caller has made: the full model and every refit
predicting the ORIGINAL rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from painml.evaluation.metrics import _check_classes

__all__ = ["CLASS_CHANGE_THRESHOLD", "Instability", "prediction_instability"]

CLASS_CHANGE_THRESHOLD = 0.2
"""A patient is unstable when their predicted class changes in more than this share of refits."""


@dataclass(frozen=True, eq=False)
class Instability:
    """How much the predictions move when the model is refitted on bootstrap samples.

    Per patient (n rows, in the order of ``full``): ``patient_mape`` (n, K),
    the mean over refits of |p_refit - p_full| per class; ``lower``/``upper``
    (n, K) the percentile interval at ``level`` of the refits' predictions;
    ``full_class`` the full model's predicted class index (argmax, first on
    ties); ``class_change`` the share of refits predicting another class; and
    ``unstable`` = class_change > ``threshold``. Summaries: ``mape_by_class``
    (mean of ``patient_mape`` over patients, per class), ``mape`` (its mean
    over classes, i.e. over patients, classes and refits) and
    ``share_unstable``.
    """

    classes: tuple[str, ...]
    n_refits: int
    mape: float
    mape_by_class: Mapping[str, float]
    share_unstable: float
    threshold: float
    level: float
    patient_mape: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    full_class: np.ndarray
    class_change: np.ndarray
    unstable: np.ndarray


def _check_proba(p: np.ndarray, what: str) -> None:
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise ValueError(f"{what} must hold finite probabilities in [0, 1]")


def prediction_instability(
    full: np.ndarray,
    refits: np.ndarray,
    classes: Sequence[str],
    *,
    threshold: float = CLASS_CHANGE_THRESHOLD,
    level: float = 0.95,
) -> Instability:
    """MAPE, classification instability and per-patient intervals of bootstrap refits' predictions.

    ``full`` is (n, K): the model fitted on all rows predicting them.
    ``refits`` is (B, n, K): refit b, fitted on bootstrap sample b, predicting
    the same n original rows. Columns follow ``classes``. MAPE is Riley &
    Collins' mean over patients of (1/B) sum_b |p_b - p_full|, here per class
    and averaged over classes (for K = 2 both classes give the same number).
    """
    classes = _check_classes(classes)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if not 0 <= threshold < 1:
        raise ValueError(f"threshold must be in [0, 1), got {threshold}")
    f = np.asarray(full, dtype=np.float64)
    r = np.asarray(refits, dtype=np.float64)
    k = len(classes)
    if f.ndim != 2 or f.shape[1] != k:
        raise ValueError(f"full must have shape (n, {k}), got {f.shape}")
    if r.ndim != 3 or r.shape[1:] != f.shape or r.shape[0] < 1:
        raise ValueError(f"refits must have shape (B, {f.shape[0]}, {k}) with B >= 1, got {r.shape}")
    if f.shape[0] == 0:
        raise ValueError("no rows to evaluate")
    _check_proba(f, "full")
    _check_proba(r, "refits")
    patient_mape = np.abs(r - f[None]).mean(axis=0)
    by_class = patient_mape.mean(axis=0)
    alpha = 1 - level
    lower, upper = np.percentile(r, [100 * alpha / 2, 100 * (1 - alpha / 2)], axis=0)
    full_class = f.argmax(axis=1)
    class_change = (r.argmax(axis=2) != full_class[None]).mean(axis=0)
    unstable = class_change > threshold
    return Instability(
        classes=classes,
        n_refits=r.shape[0],
        mape=float(by_class.mean()),
        mape_by_class={c: float(v) for c, v in zip(classes, by_class)},
        share_unstable=float(unstable.mean()),
        threshold=threshold,
        level=level,
        patient_mape=patient_mape,
        lower=lower,
        upper=upper,
        full_class=full_class,
        class_change=class_change,
        unstable=unstable,
    )
