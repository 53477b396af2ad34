"""Figures of the evaluation: confusion matrix and calibration curves.

Built on :class:`matplotlib.figure.Figure` without pyplot (no display, no
global backend state); they import the metrics, never the reverse.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve

from painml.evaluation.calibration import CalibrationCurve, _loess
from painml.evaluation.decision import ALL_ROWS, MODEL, TREAT_ALL, TREAT_NONE
from painml.evaluation.metrics import CALIBRATION_BINS, _check_classes, _labels, _proba
from painml.evaluation.stability import prediction_instability


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


KNOWN_CLASS_COLOURS = {"neuropathic": "#d62728", "nociceptive": "#1f77b4", "mixed": "#9467bd"}
"""Fixed colours of the default classes, so a class looks the same in every figure."""
OTHER_CLASS_COLOURS = ("#2ca02c", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")
TEST_STYLES = (
    ("#ff7f0e", "-.", "s"),
    ("#2ca02c", "--", "^"),
    ("#8c564b", ":", "D"),
    ("#e377c2", (0, (5, 1, 1, 1)), "v"),
    ("#17becf", (0, (1, 1)), "P"),
    ("#bcbd22", (0, (8, 2)), "X"),
)
"""(colour, line style, marker) of screening-test curves: distinct even in greyscale."""
INSTABILITY_SMOOTHING = 0.3
"""Loess span of the instability plot's interval lines."""


def class_colours(classes: Sequence[str]) -> dict[str, str]:
    """Colour per class: fixed for the default classes, others from a spare palette in class order."""
    classes = _check_classes(classes)
    spare = [c for c in OTHER_CLASS_COLOURS if c not in KNOWN_CLASS_COLOURS.values()]
    out: dict[str, str] = {}
    i = 0
    for c in classes:
        if c in KNOWN_CLASS_COLOURS:
            out[c] = KNOWN_CLASS_COLOURS[c]
        else:
            out[c] = spare[i % len(spare)]
            i += 1
    return out


def plot_flexible_calibration(curves: Mapping[str, CalibrationCurve], title: str) -> Figure:
    """Loess calibration curve per class (one-vs-rest) with its bootstrap band and ICI in the legend.

    ``curves`` maps class name to :func:`~painml.evaluation.calibration.flexible_calibration_curve`
    output, drawn in the mapping's order; a rug along the bottom shows where
    the predictions lie (the curve means little where there are none).
    """
    fig = Figure(figsize=(6, 5.5), layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect calibration")
    colours = class_colours(list(curves)) if len(curves) >= 2 else dict.fromkeys(curves, "#000000")
    for i, (name, curve) in enumerate(curves.items()):
        colour = colours[name]
        if np.isfinite(curve.lower).any():
            ax.fill_between(
                curve.grid,
                np.clip(curve.lower, 0, 1),
                np.clip(curve.upper, 0, 1),
                color=colour,
                alpha=0.18,
                linewidth=0,
            )
        label = f"{name} (ICI {curve.ici:.3f}, n={curve.n}, events={curve.events})"
        ax.plot(curve.grid, np.clip(curve.observed, 0, 1), color=colour, linewidth=1.8, label=label)
        ax.plot(curve.p, np.full(len(curve.p), -0.015 - 0.012 * i), "|", color=colour, markersize=4, alpha=0.4)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.02 - 0.012 * len(curves), 1)
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("observed proportion (loess)")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    return fig


def plot_decision_curve(frame: pd.DataFrame, title: str, *, rows: Sequence[str] | None = None) -> Figure:
    """Decision curves from :func:`~painml.evaluation.decision.decision_curve`, one panel per row subset.

    Strategies are compared only within a subset (a test's own rows), so each
    ``rows`` value gets its own panel: the model (solid black), treat all
    (grey dashed), treat none (the zero line) and that subset's test, each
    test with its own colour, line style and marker in every panel. ``rows``
    picks and orders the panels (default: all, in the frame's order). The y
    axis stops a little below 0, where treat all keeps falling.
    """
    names = list(dict.fromkeys(frame["rows"])) if rows is None else list(rows)
    missing = [r for r in names if r not in set(frame["rows"])]
    if not names or missing:
        raise ValueError(f"no such row subsets in the frame: {missing or names}")
    reference = {MODEL, TREAT_ALL, TREAT_NONE}
    tests = [s for s in dict.fromkeys(frame["strategy"]) if s not in reference]
    style = {t: TEST_STYLES[i % len(TEST_STYLES)] for i, t in enumerate(tests)}
    ncols = min(3, len(names))
    nrows = -(-len(names) // ncols)
    fig = Figure(figsize=(4.6 * ncols, 3.8 * nrows + 0.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax, name in zip(axes, names):
        block = frame[frame["rows"] == name]
        for strategy, curve in block.groupby("strategy", sort=False):
            x, nb = curve["threshold"].to_numpy(), curve["net_benefit"].to_numpy()
            if strategy == MODEL:
                ax.plot(x, nb, color="black", linewidth=2, label="model", zorder=4)
            elif strategy == TREAT_ALL:
                ax.plot(x, nb, color="grey", linestyle="--", linewidth=1.3, label="treat all")
            elif strategy == TREAT_NONE:
                ax.plot(x, nb, color="grey", linestyle="-", linewidth=0.8, label="treat none")
            else:
                colour, linestyle, marker = style[strategy]
                ax.plot(
                    x, nb, color=colour, linestyle=linestyle, linewidth=1.8, marker=marker,
                    markevery=max(1, len(x) // 8), markersize=5, label=str(strategy),
                )  # fmt: skip
        n, prevalence = int(block["n"].iloc[0]), float(block["prevalence"].iloc[0])
        finite = block["net_benefit"].to_numpy(dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        top = max([prevalence if np.isfinite(prevalence) else 0.0, *finite, 0.01])
        ax.set_ylim(-0.15 * top, 1.1 * top)
        ax.set_xlabel("threshold probability")
        ax.set_ylabel("net benefit")
        subset = "all rows" if name == ALL_ROWS else f"rows where {name} can be scored"
        ax.set_title(f"{subset}\n(n={n}, prevalence {prevalence:.0%})", fontsize=10)
        ax.legend(loc="upper right", fontsize=8)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    fig.suptitle(title)
    return fig


def plot_instability(
    full: np.ndarray,
    refits: np.ndarray,
    classes: Sequence[str],
    title: str,
    *,
    level: float = 0.95,
    max_points: int = 20_000,
    seed: int = 0,
) -> Figure:
    """Riley & Collins' prediction instability plot: full-model vs refitted-model probability, a panel per class
    (the refits are bootstrap models, or the cross-validation fold models).

    Each dot is one patient in one refit (a seeded subsample of at most
    ``max_points`` per panel, so large B x n stays light); the lines are the
    per-patient percentile interval at ``level`` over refits, smoothed
    against the full-model probability (local linear loess, span 0.3) so
    they read as a band rather than per-patient noise. Dots far off the
    diagonal are patients whose probability hinges on which patients
    happened to be sampled.
    """
    classes = _check_classes(classes)
    inst = prediction_instability(full, refits, classes, level=level)
    f = np.asarray(full, dtype=np.float64)
    r = np.asarray(refits, dtype=np.float64)
    b, n, _ = r.shape
    colours = class_colours(classes)
    rng = np.random.default_rng(seed)
    fig = Figure(figsize=(4.2 * len(classes), 4.4), layout="constrained")
    axes = fig.subplots(1, len(classes), squeeze=False).ravel()
    for k, (ax, c) in enumerate(zip(axes, classes)):
        x = np.broadcast_to(f[None, :, k], (b, n)).ravel()
        y = r[:, :, k].ravel()
        if len(x) > max_points:
            keep = rng.choice(len(x), max_points, replace=False)
            x, y = x[keep], y[keep]
        ax.scatter(x, y, s=4, color=colours[c], alpha=0.25, linewidths=0, rasterized=True)
        xs = np.linspace(f[:, k].min(), f[:, k].max(), 100)
        interval = f"{level:.0%} interval over refits (smoothed)"
        for bound, label in ((inst.lower[:, k], interval), (inst.upper[:, k], None)):
            smooth = _loess(f[:, k], bound, xs, INSTABILITY_SMOOTHING, 1)
            ax.plot(xs, smooth, color="black", linewidth=1.2, linestyle="--", label=label)
        ax.plot([0, 1], [0, 1], color="grey", linewidth=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.set_xlabel("predicted probability, full model")
        ax.set_ylabel("predicted probability, refitted models")
        ax.set_title(f"{c} (MAPE {inst.mape_by_class[c]:.3f})", fontsize=10)
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(f"{title}\n{b} refits; class changes in >{inst.threshold:.0%} of refits: {inst.share_unstable:.1%}")
    return fig
