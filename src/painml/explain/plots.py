"""SHAP plots in the clinician's vocabulary: beeswarm, bar, class comparison, dependence, waterfall.

matplotlib ``Figure`` objects without pyplot (no display, no global backend
state); every axis says what its numbers are. They import the computation in
:mod:`painml.explain.shap`, never the reverse.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LinearSegmentedColormap, Normalize
from matplotlib.figure import Figure

from painml.evaluation.plots import class_colours
from painml.explain.shap import Explanation, numeric_data, waterfall
from painml.record.columns import BY_NAME
from painml.record.vocabulary import (
    NEUPSIG_GRADES,
    PAINDETECT_BANDS,
    display_name,
    display_value,
)

_NEG, _POS, _MISSING = "#1f77b4", "#d62728", "#b0b0b0"


def file_stem(name: str) -> str:
    """A file-name-safe form of a class, feature or patient id."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("._") or "patient"


MAX_DISPLAY = 15


DEPENDENCE_FEATURES = 6


BEESWARM_NOTE = (
    "Each dot is one patient. Colour: the feature's value from low or absent (blue) to high or present "
    "(red); grey: not recorded. A category with several values (pain region, distribution, course) has one "
    "colour per value, named in the legend under the plot."
)
LEVEL_COLOURS = ("#2ca02c", "#ff7f0e", "#17becf", "#8c564b", "#bcbd22", "#000000", "#004d40")
"""One colour per value of a category in the beeswarm: none close to the blue-purple-red scale or to grey."""


def _several_levels(feature: str) -> bool:
    spec = BY_NAME.get(feature)
    return spec is not None and spec.kind == "category" and len(spec.allowed) > 2


def _margins(
    fig,
    labels: Sequence[str],
    width: float,
    height: float,
    fontsize: float = 10,
    top: float = 0.75,
    bottom: float = 0.65,
    right: float = 0.97,
) -> None:
    """Fixed margins (inches) sized to the longest y label: constrained layout measures every text, slowly."""
    longest = max((len(str(label)) for label in labels), default=10)
    left = (0.0068 * fontsize * longest + 0.75) / width
    fig.subplots_adjust(left=min(0.55, left), right=right, top=1 - top / height, bottom=bottom / height)


def axis_label(class_name: str, absolute: bool = False) -> str:
    """The scale every SHAP plot is on: the model's score of the class (its calibrated softmax logit)."""
    return f"{'mean |SHAP value|' if absolute else 'SHAP value'} (score of {class_name}: softmax logit)"


def _class_pos(explanation: Explanation, k: int | str) -> int:
    return explanation.classes.index(k) if isinstance(k, str) else int(k)


def mean_abs(explanation: Explanation) -> pd.DataFrame:
    """Mean |SHAP| per feature (rows) and class (columns), largest overall first."""
    table = pd.DataFrame(
        np.abs(explanation.values).mean(axis=0), index=explanation.feature_names, columns=explanation.classes
    )
    return table.loc[table.sum(axis=1).sort_values(ascending=False).index]


def _value_cmap():
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
    k = _class_pos(explanation, k)
    cls = explanation.classes[k]
    values = explanation.values[:, :, k]
    numbers = numeric_data(explanation)
    order = np.argsort(-np.abs(values).mean(axis=0))[:max_display]
    names = [display_name(explanation.feature_names[j]) for j in order[::-1]]
    several = [j for j in order if _several_levels(explanation.feature_names[j])]
    legend_rows = sum(-(-len(BY_NAME[explanation.feature_names[j]].allowed) // 4) for j in several)  # 4 per row
    extra = 0.22 * legend_rows + (0.3 if several else 0.0)
    height = 0.42 * len(order) + 1.8 + extra
    fig = Figure(figsize=(9, height))
    _margins(fig, names, 9, height, right=0.99, bottom=0.65 + extra)
    ax = fig.subplots()
    cmap = _VALUE_CMAP
    handles = []
    for row, j in enumerate(order[::-1]):
        feature = explanation.feature_names[j]
        x = values[:, j]
        y = row + _swarm(x)
        c = _scaled_colours(numbers[:, j])
        missing = ~np.isfinite(c)
        ax.scatter(x[missing], y[missing], s=9, color=_MISSING, alpha=0.7, linewidths=0, rasterized=True)
        if not _several_levels(feature):
            ax.scatter(x[~missing], y[~missing], s=9, c=cmap(c[~missing]), alpha=0.85, linewidths=0, rasterized=True)
            continue
        # a category's levels have no low-high order: one colour per level, named in the legend below
        for level, value in enumerate(BY_NAME[feature].allowed):
            at = numbers[:, j] == level
            handles.append(
                ax.scatter(
                    x[at], y[at], s=9, color=LEVEL_COLOURS[level % len(LEVEL_COLOURS)], alpha=0.85, linewidths=0,
                    rasterized=True, label=f"{display_name(feature)}: {display_value(feature, value)}",
                )
            )  # fmt: skip
    if handles:
        fig.legend(handles=handles, loc="lower left", ncol=4, fontsize=7.5, frameon=False, markerscale=2,
                   title="categories (one colour per value)", title_fontsize=8)  # fmt: skip
    ax.axvline(0, color="#555555", linewidth=0.8)
    ax.set_yticks(range(len(order)), names, fontsize=10)
    ax.set_ylim(-0.6, len(order) - 0.4)
    ax.set_xlabel(axis_label(cls) + ";  right = towards " + cls, fontsize=10)
    ax.set_ylabel("feature (largest mean |SHAP| at the top)", fontsize=10)
    ax.set_title(title or f"What pushes the model towards or away from {cls} ({len(values):,} patients)", fontsize=11)
    ax.grid(axis="x", color="#eeeeee")
    bar = fig.colorbar(ScalarMappable(Normalize(0, 1), cmap), ax=ax, ticks=[0, 1], aspect=40, pad=0.01)
    bar.ax.set_yticklabels(["low /\nabsent", "high /\npresent"], fontsize=8)
    bar.set_label("feature value (grey: not recorded)", fontsize=9)
    return fig


def plot_bar(explanation: Explanation, k: int | str, max_display: int = MAX_DISPLAY, title: str | None = None):
    """Mean |SHAP| per feature for one class: how much each feature moves it on average."""
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
    table = mean_abs(explanation).iloc[:max_display][::-1]
    n_classes = len(explanation.classes)
    names = [display_name(f) for f in table.index]
    height = 0.55 * len(table) + 1.8
    fig = Figure(figsize=(8.5, height))
    _margins(fig, names, 8.5, height)
    ax = fig.subplots()
    height = 0.8 / n_classes
    colours = class_colours(explanation.classes)
    for c, cls in enumerate(explanation.classes):
        ax.barh(
            np.arange(len(table)) + ((n_classes - 1) / 2 - c) * height,
            table[cls].to_numpy(),
            height=height,
            label=cls,
            color=colours[cls],
        )
    ax.set_yticks(range(len(table)), names, fontsize=10)
    ax.set_xlabel("mean |SHAP value| (score of each class: softmax logit)", fontsize=10)
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
        levels = PAINDETECT_BANDS if feature == "paindetect_band" else NEUPSIG_GRADES
        return [float(i) for i in range(len(levels))]
    return None


def plot_dependence(explanation: Explanation, feature: str, title: str | None = None):
    """SHAP value against the recorded value of one feature, one panel per class."""
    j = explanation.feature_names.index(feature)
    shown = explanation.data[feature]
    levels = _categories(feature, shown)
    n_classes = len(explanation.classes)
    fig = Figure(figsize=(4.2 * n_classes, 4.4))
    rotate = levels is not None and len(levels) > 3
    fig.subplots_adjust(
        left=0.75 / (4.2 * n_classes), right=0.99, top=0.86, bottom=0.3 if rotate else 0.14, wspace=0.28
    )
    axes = np.atleast_1d(fig.subplots(1, n_classes, sharey=True))
    colours = class_colours(explanation.classes)
    rng = np.random.default_rng(0)
    raw = shown.to_numpy()
    missing = pd.isna(shown).to_numpy()
    if levels is not None:
        position = {v: i for i, v in enumerate(levels)}
        x = np.array(
            [
                np.nan if m else position.get(v if isinstance(v, str) else float(v), np.nan)
                for v, m in zip(raw, missing)
            ],
            dtype=float,
        )
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
        ax.scatter(x[~missing], y[~missing], s=8, alpha=0.5, color=colours[cls], linewidths=0, rasterized=True)
        if missing.any():
            ax.scatter(
                x[missing],
                y[missing],
                s=8,
                alpha=0.5,
                color=_MISSING,
                linewidths=0,
                rasterized=True,
                label=display_value(feature, None),
            )
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


def example_title(n: int, predicted: str, probability: float) -> str:
    """The heading of example patient ``n``'s waterfall, the same in the report and in ``shap/``."""
    return f"Example patient {n}: why {predicted} (probability {probability:.0%})"


WATERFALL_NOTE = (
    "The bars add up, from the average patient's score to this patient's, on the model's score of the class "
    "(its calibrated softmax logit). That score is not the log-odds of the class against all the others: the "
    "probability depends on how it compares with the other classes' scores, so both ends are also given as "
    "probabilities. Hatched bars are findings that were not recorded: the reason is an absence. Bars named "
    '"N other ..." add up the findings not shown one by one, by part of the record.'
)


def plot_waterfall(
    explanation: Explanation,
    row: int,
    k: int | str | None = None,
    max_display: int = 10,
    title: str | None = None,
    subtitle: str | None = None,
):
    """One patient: from the average patient's score to this patient's, finding by finding (see
    :data:`WATERFALL_NOTE`); the rest grouped by block so that no hidden remainder outweighs what is shown."""
    k = None if k is None else _class_pos(explanation, k)
    w = waterfall(explanation, row, k, show=max_display)
    cls = w.class_name
    items = list(w.bars)[::-1]  # the largest at the top
    height = 0.42 * len(items) + 2.4
    # fixed margins instead of constrained layout: measuring every label costs more than drawing them
    longest = max(len(bar.label) for bar in items)
    fig = Figure(figsize=(9.5, height))
    fig.subplots_adjust(
        left=min(0.55, (0.068 * longest + 0.75) / 9.5), right=0.97, top=1 - 1.25 / height, bottom=0.6 / height
    )
    ax = fig.subplots()
    base, total = w.base, w.total
    left = base
    lefts = []
    for bar in items:
        lefts.append(left)
        left += bar.value
    for y, (bar, l0) in enumerate(zip(items, lefts)):
        colour = _POS if bar.value >= 0 else _NEG
        ax.barh(
            y,
            bar.value,
            left=l0,
            color=colour,
            height=0.7,
            alpha=0.55 if bar.group or bar.missing else 1.0,
            hatch="///" if bar.missing else None,
            edgecolor="white" if bar.missing else colour,
        )
        ax.text(
            l0 + bar.value, y, f" {bar.value:+.2f} ", va="center", ha="left" if bar.value >= 0 else "right", fontsize=8
        )
    ax.set_yticks(range(len(items)), [bar.label for bar in items], fontsize=9.5)
    ax.axvline(base, color="#555555", linestyle="--", linewidth=0.9)
    ax.axvline(total, color="#000000", linewidth=0.9)
    ax.set_xlabel(axis_label(cls), fontsize=10)
    ax.set_ylabel("finding", fontsize=10)
    ends = [base, *(l0 + bar.value for bar, l0 in zip(items, lefts))]
    pad = 0.14 * (max(ends) - min(ends) or 1.0)
    ax.set_xlim(min(ends) - pad, max(ends) + pad)
    lo, hi = ax.get_xlim()

    def align(x: float) -> str:
        return "left" if x < lo + 0.3 * (hi - lo) else "right" if x > lo + 0.7 * (hi - lo) else "center"

    ax.text(
        base,
        len(items) - 0.35,
        f"average patient: score {base:.2f}, probability {w.base_probability:.0%}",
        ha=align(base),
        va="bottom",
        fontsize=8,
        color="#555555",
    )
    ax.text(
        total, -0.9, f"this patient: score {total:.2f}, probability {w.probability:.0%}", ha=align(total), va="top",
        fontsize=8,
    )  # fmt: skip
    ax.set_ylim(-1.3, len(items) + 0.1)
    heading = title or f"Why {cls} (probability {w.probability:.0%})"
    lines = [
        heading,
        *([subtitle] if subtitle else []),
        f"red: towards {cls}, blue: away from {cls}; hatched: not recorded",
    ]
    ax.set_title("\n".join(lines), fontsize=10.5)
    return fig


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
