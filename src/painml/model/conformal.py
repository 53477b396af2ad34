"""Split-conformal prediction sets (LAC): the classes a patient may have, at a stated confidence.

The threshold is fitted on rows that neither the model nor its calibration
saw; on exchangeable data the set holds the true class at least
``confidence`` of the time (Sadinle, Lei & Wasserman 2019). Training fits
it, the bundle stores it, every serving path applies it with
:func:`prediction_sets`.
"""

from __future__ import annotations

import numpy as np


def conformal_threshold(proba: np.ndarray, y_index: np.ndarray, confidence: float) -> float:
    """Split-conformal (LAC) threshold: include class k when p_k >= 1 - qhat.

    ``qhat`` is the ceil((n+1)c)/n quantile of 1 - p(true class) on the
    held-out rows, which guarantees coverage of at least ``confidence``.
    """
    scores = 1.0 - proba[np.arange(len(y_index)), y_index]
    n = len(scores)
    level = min(1.0, np.ceil((n + 1) * confidence) / n)
    return float(np.quantile(scores, level, method="higher"))


MONDRIAN_MIN_ROWS = 30
"""Rows every class needs before its own (class-conditional, Mondrian) threshold is worth fitting."""


def class_thresholds(proba: np.ndarray, y_index: np.ndarray, confidence: float) -> np.ndarray:
    """Mondrian (class-conditional) thresholds, one per class: coverage holds within each class, not
    only on average, at the price of needing enough rows of every class (:data:`MONDRIAN_MIN_ROWS`)."""
    k = proba.shape[1]
    return np.array([conformal_threshold(proba[y_index == c], y_index[y_index == c], confidence) for c in range(k)])


def prediction_sets(proba: np.ndarray, qhat: float | np.ndarray) -> np.ndarray:
    """Boolean (rows, classes); the most probable class is always in the set. ``qhat`` is one threshold,
    or one per class (Mondrian)."""
    sets = proba >= 1.0 - np.asarray(qhat, dtype=np.float64)
    sets[np.arange(len(proba)), proba.argmax(axis=1)] = True
    return sets


def coverage(sets: np.ndarray, y_index: np.ndarray) -> tuple[float, float]:
    """(share of rows whose set holds the true class, mean set size)."""
    return float(sets[np.arange(len(y_index)), y_index].mean()), float(sets.sum(axis=1).mean())


def coverage_by_class(sets: np.ndarray, y_index: np.ndarray, classes: list[str] | tuple[str, ...]) -> dict[str, float]:
    """Share of each class's rows whose set holds their class (NaN for a class with no rows)."""
    held = sets[np.arange(len(y_index)), y_index]
    return {
        c: float(held[y_index == k].mean()) if (y_index == k).any() else float("nan") for k, c in enumerate(classes)
    }
