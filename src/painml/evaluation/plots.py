"""Figures of the evaluation: confusion matrix and calibration curves.

Built on :class:`matplotlib.figure.Figure` without pyplot (no display, no
global backend state); they import the metrics, never the reverse.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve

from painml.evaluation.metrics import CALIBRATION_BINS, _check_classes, _labels, _proba


def plot_confusion(cm_df: pd.DataFrame, title: str) -> Figure:
    """Confusion matrix coloured by row percentage (recall), each cell showing count and row %.

    Built on :class:`matplotlib.figure.Figure` without pyplot, so it needs no
    display and touches no global backend state; save with ``fig.savefig``.
    """
    counts = cm_df.to_numpy(dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    fig = Figure(figsize=(6, 5), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(share * 100, cmap="Blues", vmin=0, vmax=100)
    fig.colorbar(image, ax=ax, label="row %")
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            colour = "white" if share[i, j] > 0.6 else "black"
            label = f"{int(counts[i, j])}\n{share[i, j]:.0%}"
            ax.text(j, i, label, ha="center", va="center", color=colour, fontsize=10)
    ax.set_xticks(range(counts.shape[1]), [str(c) for c in cm_df.columns], rotation=30, ha="right")
    ax.set_yticks(range(counts.shape[0]), [str(c) for c in cm_df.index])
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    ax.set_title(title)
    return fig


def plot_calibration(
    y_true: Sequence[str] | np.ndarray | pd.Series,
    proba: np.ndarray | pd.DataFrame,
    classes: Sequence[str],
    title: str,
) -> Figure:
    """One-vs-rest reliability curves (10 quantile bins), so every bin holds data.

    A class absent from ``y_true`` has no curve and is named in the legend as
    such. Built without pyplot, like :func:`plot_confusion`.
    """
    classes = _check_classes(classes)
    y = _labels(y_true, classes)
    p = _proba(proba, classes, len(y))
    fig = Figure(figsize=(6, 5), layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect calibration")
    for k, c in enumerate(classes):
        positive = y == c
        if not positive.any():
            ax.plot([], [], marker="o", label=f"{c} (absent)")
            continue
        observed, predicted = calibration_curve(positive, p[:, k], n_bins=CALIBRATION_BINS, strategy="quantile")
        ax.plot(predicted, observed, marker="o", linewidth=1.5, label=c)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("observed frequency")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=9)
    return fig
