"""Percentile bootstrap intervals for the metrics of held-out or out-of-fold predictions.

Patients are resampled with replacement (vectorised: two hundred resamples
at a time through one ``bincount``). With several repeats of cross-validation
each resample scores every repeat's predictions on the same patients and
averages them, so the interval reflects the patients, not one partition.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from painml.evaluation.metrics import auroc

BOOTSTRAP_REPS = 1000
CI_LEVEL = 0.95
METRICS = ("macro_f1", "balanced_accuracy", "accuracy", "log_loss", "brier")


def bootstrap_intervals(
    y_index: np.ndarray,
    proba: np.ndarray | Sequence[np.ndarray],
    reps: int = BOOTSTRAP_REPS,
    level: float = CI_LEVEL,
    seed: int = 0,
) -> pd.DataFrame:
    """Estimate and percentile interval of macro-F1, balanced accuracy, accuracy, log-loss and Brier.

    ``proba`` is one (rows, classes) array, or one per repeat (their metrics are averaged).
    """
    repeats = [proba] if isinstance(proba, np.ndarray) and proba.ndim == 2 else list(proba)
    n, c = repeats[0].shape
    rng = np.random.default_rng(seed)
    parts = [_per_row(y_index, p) for p in repeats]
    stats: dict[str, list[np.ndarray]] = {m: [] for m in METRICS}
    for start in range(0, reps, 200):
        b = min(200, reps - start)
        idx = rng.integers(0, n, size=(b, n))
        for metric, values in _resampled(parts, idx, b, c).items():
            stats[metric].append(values)
    point = _resampled(parts, np.arange(n)[None, :], 1, c)
    alpha = (1 - level) / 2
    out = []
    for metric in METRICS:
        lo, hi = np.quantile(np.concatenate(stats[metric]), [alpha, 1 - alpha])
        out.append({"metric": metric, "estimate": float(point[metric][0]), "low": float(lo), "high": float(hi)})
    return pd.DataFrame(out)


def _per_row(y_index: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(confusion code, log-loss, Brier) of every row."""
    n, c = proba.shape
    rows = np.arange(n)
    code = y_index * c + proba.argmax(axis=1)
    loss = -np.log(np.clip(proba[rows, y_index], 1e-15, 1.0))
    onehot = np.zeros_like(proba)
    onehot[rows, y_index] = 1.0
    brier = ((proba - onehot) ** 2).sum(axis=1)
    return code, loss, brier


def _resampled(parts: list, idx: np.ndarray, b: int, c: int) -> dict[str, np.ndarray]:
    """Every metric for each of the ``b`` row samples in ``idx``, averaged over the repeats."""
    sums = {m: np.zeros(b) for m in METRICS}
    for code, loss, brier in parts:
        counts = np.bincount((np.arange(b)[:, None] * c * c + code[idx]).ravel(), minlength=b * c * c)
        cm = counts.reshape(b, c, c)
        f1, bal = _f1_balanced(cm)
        sums["macro_f1"] += f1
        sums["balanced_accuracy"] += bal
        sums["accuracy"] += np.trace(cm, axis1=1, axis2=2) / idx.shape[1]
        sums["log_loss"] += loss[idx].mean(axis=1)
        sums["brier"] += brier[idx].mean(axis=1)
    return {m: v / len(parts) for m, v in sums.items()}


def _f1_balanced(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Macro-F1 and balanced accuracy of a stack of confusion matrices (rows true, columns predicted)."""
    tp = np.diagonal(cm, axis1=1, axis2=2).astype(float)
    support = cm.sum(axis=2)
    predicted = cm.sum(axis=1)
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    recall = np.divide(tp, support, out=np.full_like(tp, np.nan), where=support > 0)
    return f1.mean(axis=1), np.nanmean(recall, axis=1)


def auroc_interval(
    positive: np.ndarray, score: np.ndarray, reps: int = 200, level: float = CI_LEVEL, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of one-vs-rest AUROC (NaN when a resample lacks either side)."""
    rng = np.random.default_rng(seed)
    n = len(score)
    if positive.all() or not positive.any():
        return float("nan"), float("nan")
    values = []
    for _ in range(reps):
        idx = rng.integers(0, n, size=n)
        values.append(auroc(positive[idx], score[idx]))
    values = np.asarray(values)
    values = values[~np.isnan(values)]
    alpha = (1 - level) / 2
    if not len(values):
        return float("nan"), float("nan")
    lo, hi = np.quantile(values, [alpha, 1 - alpha])
    return float(lo), float(hi)
