"""Small-data calibration and PDI: hand-worked intercept/slope, loess, ICI and PDI; degenerate inputs; plot."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from matplotlib.figure import Figure
from scipy.special import expit, logit
from sklearn.metrics import roc_auc_score

from painml.evaluation.calibration import (
    _loess,
    calibration_intercept_slope,
    flexible_calibration_curve,
    pdi_by_class,
    per_class_calibration,
    polytomous_discrimination_index,
)
from painml.evaluation.plots import class_colours, plot_flexible_calibration

CLASSES = ("nociceptive", "neuropathic", "mixed")
Z95 = 1.959963984540054


def test_intercept_hand_worked_constant_prediction() -> None:
    """10 patients all predicted 0.2, 4 events.

    With one offset value the intercept model is saturated: expit(a + logit 0.2)
    = 4/10, so a = logit(0.4) - logit(0.2) = ln(2/3) - ln(1/4) = ln(8/3) = 0.980829.
    Observed information = sum mu(1 - mu) = 10 * 0.4 * 0.6 = 2.4, SE = 1/sqrt(2.4)
    = 0.645497, 95% CI = 0.980829 -+ 1.959964 * 0.645497 = (-0.284322, 2.245981).
    No spread in p: the slope does not exist.
    """
    fit = calibration_intercept_slope(np.array([1] * 4 + [0] * 6, dtype=bool), np.full(10, 0.2))
    assert (fit.n, fit.events) == (10, 4)
    assert fit.intercept == pytest.approx(math.log(8 / 3), abs=1e-9)
    assert fit.intercept_se == pytest.approx(1 / math.sqrt(2.4), abs=1e-9)
    assert fit.intercept_low == pytest.approx(-0.284322, abs=1e-6)
    assert fit.intercept_high == pytest.approx(2.245981, abs=1e-6)
    assert math.isnan(fit.slope) and math.isnan(fit.slope_low)
    assert "no spread" in fit.reason


def test_slope_hand_worked_two_groups() -> None:
    """Group A: 10 patients at p = 0.2 with 3 events; group B: 10 at p = 0.8 with 6 events.

    Two distinct logit(p) values (x_A = -ln 4, x_B = ln 4), so logit P(y) = a' + b x
    is saturated: a' + b x_g = logit(observed share of group g).
    b = (logit 0.6 - logit 0.3) / (2 ln 4) = (0.405465 + 0.847298) / 2.772589 = 0.451839.
    a' = logit 0.3 + b ln 4 = -0.847298 + 0.626375 = -0.220923.
    Var(logit of a group share) = 1 / (n_g s (1 - s)): 1/2.1 and 1/2.4, so
    SE(b) = sqrt(1/2.1 + 1/2.4) / (2 ln 4) = 0.944911 / 2.772589 = 0.340805,
    95% CI 0.451839 -+ 1.959964 * 0.340805 = (-0.216126, 1.119804).
    """
    y = np.array([1] * 3 + [0] * 7 + [1] * 6 + [0] * 4, dtype=bool)
    p = np.array([0.2] * 10 + [0.8] * 10)
    fit = calibration_intercept_slope(y, p)
    b = (math.log(1.5) - math.log(3 / 7)) / (2 * math.log(4))
    assert fit.slope == pytest.approx(b, abs=1e-8) and fit.slope == pytest.approx(0.451839, abs=1e-6)
    assert fit.slope_model_intercept == pytest.approx(math.log(3 / 7) + b * math.log(4), abs=1e-8)
    assert fit.slope_se == pytest.approx(math.sqrt(1 / 2.1 + 1 / 2.4) / (2 * math.log(4)), abs=1e-8)
    assert (fit.slope_low, fit.slope_high) == pytest.approx((-0.216126, 1.119804), abs=1e-6)
    # the intercept solves its score equation: sum expit(a + logit p) = number of events
    assert np.sum(expit(fit.intercept + logit(p))) == pytest.approx(9, abs=1e-8)
    assert fit.reason == ""


def test_score_equations_and_level() -> None:
    """On generic data the MLEs zero the scores: sum(y - mu) = 0 (both models) and sum((y - mu) lp) = 0."""
    rng = np.random.default_rng(3)
    p = rng.uniform(0.05, 0.95, 80)
    y = rng.uniform(size=80) < expit(0.3 + 0.7 * logit(p))
    fit = calibration_intercept_slope(y, p)
    lp = logit(p)
    mu = expit(fit.slope_model_intercept + fit.slope * lp)
    assert np.sum(y - mu) == pytest.approx(0, abs=1e-8)
    assert np.sum((y - mu) * lp) == pytest.approx(0, abs=1e-8)
    assert np.sum(y - expit(fit.intercept + lp)) == pytest.approx(0, abs=1e-8)
    assert fit.slope_high - fit.slope == pytest.approx(Z95 * fit.slope_se)
    narrow = calibration_intercept_slope(y, p, level=0.5)
    assert narrow.slope == fit.slope and narrow.slope_high - narrow.slope < fit.slope_high - fit.slope


def test_degenerate_inputs_give_nan_with_reason() -> None:
    p = np.array([0.1, 0.2, 0.7, 0.9])
    one = calibration_intercept_slope(np.zeros(4, dtype=bool), p)
    assert math.isnan(one.intercept) and math.isnan(one.slope) and "one outcome" in one.reason
    separated = calibration_intercept_slope(np.array([0, 0, 1, 1]), p)
    assert math.isnan(separated.slope) and "separation" in separated.reason
    assert math.isfinite(separated.intercept)  # calibration-in-the-large exists whenever both outcomes occur
    empty = calibration_intercept_slope(np.zeros(0, dtype=bool), np.zeros(0))
    assert empty.n == 0 and empty.reason == "no rows"
    # p of exactly 0 and 1 are clipped, not infinite
    clipped = calibration_intercept_slope(np.array([0, 1, 0, 1, 1, 0]), np.array([0.0, 1.0, 0.5, 0.4, 0.6, 0.3]))
    assert math.isfinite(clipped.intercept) and math.isfinite(clipped.slope)
    with pytest.raises(ValueError, match="probabilities"):
        calibration_intercept_slope(np.array([0, 1]), np.array([0.5, 1.5]))
    with pytest.raises(ValueError, match="boolean"):
        calibration_intercept_slope(np.array([0, 2]), np.array([0.5, 0.5]))


def test_per_class_calibration_frame() -> None:
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(3), 90)
    y = np.array([rng.choice(CLASSES, p=row) for row in proba], dtype=object)
    table = per_class_calibration(y, proba, CLASSES)
    assert list(table["class"]) == list(CLASSES)
    assert list(table.columns) == [
        "class", "n", "events", "intercept", "intercept_low", "intercept_high",
        "slope", "slope_low", "slope_high", "reason",
    ]  # fmt: skip
    assert (table["n"] == 90).all() and table["events"].sum() == 90
    assert (table["slope_low"] < table["slope"]).all() and (table["slope"] < table["slope_high"]).all()
    # well calibrated by construction: CIs cover the ideal values
    assert ((table["slope_low"] < 1) & (table["slope_high"] > 1)).all()
    # a class absent from the labels is reported, not an error
    four = (*CLASSES, "nociplastic")
    absent = per_class_calibration(y, np.column_stack([proba * 0.9, np.full(90, 0.1)]), four)
    assert "one outcome" in absent.set_index("class").loc["nociplastic", "reason"]


def test_loess_hand_worked() -> None:
    """x = 0..4, y = 0 0 1 1 1, fitted at x0 = 2 with frac = 1 (q = 5 neighbours).

    h = distance to the 5th nearest = 2; u = (x - 2)/2 = -1, -1/2, 0, 1/2, 1;
    tricube w = (1 - |u|^3)^3 = 0, 0.669922, 1, 0.669922, 0.
    Degree 1: the weights are symmetric about x0, so the local line's value at
    x0 is the weighted mean (0 * 0.669922 + 1 * 1 + 1 * 0.669922) / 2.339844
    = 1.669922 / 2.339844 = 0.713689.
    Degree 2: only three points carry weight, the parabola interpolates them: y(2) = 1.
    Degree 0 at x0 = 0: h = 4, u = 0, 1/4, 1/2, 3/4, 1, w = 1, (63/64)^3, (7/8)^3, (37/64)^3, 0
    = 1, 0.953827, 0.669922, 0.193222, 0 for y = 0 0 1 1 1:
    (0.669922 + 0.193222) / (1 + 0.953827 + 0.669922 + 0.193222) = 0.863144 / 2.816971 = 0.306407.
    """
    x = np.arange(5.0)
    y = np.array([0, 0, 1, 1, 1.0])
    assert _loess(x, y, np.array([2.0]), 1.0, 1)[0] == pytest.approx(1.669921875 / 2.33984375)
    assert _loess(x, y, np.array([2.0]), 1.0, 2)[0] == pytest.approx(1.0)
    w = (1 - (np.arange(5) / 4) ** 3) ** 3
    assert _loess(x, y, np.array([0.0]), 1.0, 0)[0] == pytest.approx(np.sum(w * y) / np.sum(w))
    assert np.sum(w * y) / np.sum(w) == pytest.approx(0.306407, abs=1e-6)
    # a local quadratic reproduces a quadratic exactly, anywhere
    xs = np.linspace(0, 1, 30)
    assert _loess(xs, 1 - 2 * xs + 3 * xs**2, np.array([0.13, 0.5, 0.97]), 0.5, 2) == pytest.approx(
        1 - 2 * np.array([0.13, 0.5, 0.97]) + 3 * np.array([0.13, 0.5, 0.97]) ** 2
    )
    # tied x: the degree drops locally instead of failing
    tied = _loess(np.array([0.0, 0, 0, 0, 1, 1]), np.array([0, 1, 1, 0, 1, 1.0]), np.array([0.0, 0.5, 1.0]), 0.75, 2)
    assert tied == pytest.approx([0.5, 0.75, 1.0])


def test_ici_hand_worked() -> None:
    """p = 0.2 for 4 patients (2 events), p = 0.6 for 2 patients (2 events); frac 0.75 -> q = 4.

    At p = 0.2 the 4 nearest are the tied group, so the curve is their share 0.5;
    at p = 0.6 the 4th nearest is at distance 0.4, the group at 0.2 gets tricube
    weight 0, so the curve is the share at 0.6, 1.0. |curve - p| = 0.3 (x4), 0.4 (x2):
    ICI = (4 * 0.3 + 2 * 0.4) / 6 = 1/3, E50 = 0.3, E90 = 0.4, Emax = 0.4.
    """
    curve = flexible_calibration_curve([0, 1, 1, 0, 1, 1], [0.2, 0.2, 0.2, 0.2, 0.6, 0.6], boot=0)
    assert curve.observed_at_p == pytest.approx([0.5, 0.5, 0.5, 0.5, 1.0, 1.0])
    assert curve.ici == pytest.approx(1 / 3)
    assert (curve.e50, curve.e90, curve.emax) == pytest.approx((0.3, 0.4, 0.4))
    assert (curve.n, curve.events) == (6, 4)
    assert curve.grid[0] == 0.2 and curve.grid[-1] == 0.6 and len(curve.grid) == 100
    assert np.isnan(curve.lower).all() and np.isnan(curve.upper).all()  # boot = 0: no band


def test_flexible_curve_recovers_known_miscalibration() -> None:
    rng = np.random.default_rng(1)
    p = rng.uniform(0.05, 0.95, 1500)
    calibrated = flexible_calibration_curve(rng.uniform(size=1500) < p, p, boot=0)
    assert calibrated.ici < 0.03
    halved = flexible_calibration_curve(rng.uniform(size=1500) < 0.5 * p, p, boot=0)
    assert halved.ici == pytest.approx(np.mean(0.5 * p), abs=0.03)  # |0.5 p - p| averaged
    assert halved.e50 <= halved.e90 <= halved.emax


def test_bootstrap_band_is_seeded_and_brackets_the_curve() -> None:
    rng = np.random.default_rng(2)
    p = rng.uniform(0.1, 0.9, 150)
    y = rng.uniform(size=150) < p
    a = flexible_calibration_curve(y, p, boot=40, seed=5, grid=np.linspace(0.2, 0.8, 13))
    b = flexible_calibration_curve(y, p, boot=40, seed=5, grid=np.linspace(0.2, 0.8, 13))
    assert np.array_equal(a.lower, b.lower) and np.array_equal(a.upper, b.upper)
    assert len(a.grid) == 13 and np.isfinite(a.lower).all()
    assert (a.lower <= a.upper).all()
    assert np.mean((a.lower <= a.observed) & (a.observed <= a.upper)) >= 0.9


def _brute_pdi(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Every one-per-class set; the class-k member scores 1/(number tied at the top of column k) if on top."""
    k = p.shape[1]
    groups = [np.flatnonzero(y == j) for j in range(k)]
    out = []
    for c in range(k):
        total = 0.0
        for members in itertools.product(*groups):
            values = p[list(members), c]
            if values[c] == values.max():
                total += 1 / np.count_nonzero(values == values.max())
        out.append(total / math.prod(len(g) for g in groups))
    return np.array(out)


def test_pdi_hand_worked_3x3x3() -> None:
    """Classes A, B, C with 3 patients each (PDI_k reads only column k, so rows need not sum to 1).

    Column A: A = .7 .5 .2, B = .4 .2 .1, C = .6 .3 .1. A1 beats all 3 B and 3 C: 9 sets;
    A2 beats 3 B and 2 C: 6; A3 (.2) beats B .1 and ties B .2, beats C .1:
    (1 + t)(1) -> 1 + 1/2 = 1.5. PDI_A = 16.5/27 = 0.611111.
    Column B: B = .5 .3 .3, A = .3 .2 .1, C = .4 .3 .2. B1: 9. B2 and B3 (.3): A 2 below
    + 1 tie, C 1 below + 1 tie: (2 + t)(1 + t) = 2 + 3t + t^2 -> 2 + 3/2 + 1/3 = 23/6 each.
    PDI_B = (9 + 23/3)/27 = 0.617284.
    Column C: C = .8 .1 .4, A = .1 .3 .7, B = .4 .5 .2. C1: 9; C2 (.1): no B below: 0;
    C3 (.4): A 2 below, B 1 below + 1 tie: 2 (1 + t) -> 2 + 1 = 3. PDI_C = 12/27 = 0.444444.
    PDI = (16.5 + 50/3 + 12)/81 = 0.557613.
    """
    proba = np.array([
        [0.7, 0.3, 0.1], [0.5, 0.2, 0.3], [0.2, 0.1, 0.7],  # A
        [0.4, 0.5, 0.4], [0.2, 0.3, 0.5], [0.1, 0.3, 0.2],  # B
        [0.6, 0.4, 0.8], [0.3, 0.3, 0.1], [0.1, 0.2, 0.4],  # C
    ])  # fmt: skip
    y = np.repeat([0, 1, 2], 3)
    assert pdi_by_class(y, proba) == pytest.approx([16.5 / 27, (9 + 23 / 3) / 27, 12 / 27])
    assert polytomous_discrimination_index(y, proba) == pytest.approx((16.5 + 50 / 3 + 12) / 81)
    assert polytomous_discrimination_index(y, proba) == pytest.approx(0.557613, abs=1e-6)
    assert pdi_by_class(y, proba) == pytest.approx(_brute_pdi(y, proba))


@pytest.mark.parametrize("k", [2, 3, 4])
def test_pdi_matches_brute_force_with_ties(k: int) -> None:
    rng = np.random.default_rng(k)
    for _ in range(3):
        y = np.concatenate([np.arange(k), rng.integers(0, k, 10)])  # every class present
        proba = np.round(rng.dirichlet(np.ones(k), len(y)), 1)  # rounding makes ties common
        assert pdi_by_class(y, proba) == pytest.approx(_brute_pdi(y, proba))


def test_pdi_two_classes_is_auroc_and_edge_cases() -> None:
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 60)
    p1 = np.round(np.clip(0.3 * y + rng.uniform(0, 0.7, 60), 0, 1), 1)
    proba = np.column_stack([1 - p1, p1])
    assert polytomous_discrimination_index(y, proba) == pytest.approx(roc_auc_score(y == 1, p1))
    # useless model: every set is a K-way tie, credit 1/K
    assert polytomous_discrimination_index(np.array([0, 1, 2, 0]), np.full((4, 3), 1 / 3)) == pytest.approx(1 / 3)
    perfect = np.eye(3)[np.array([0, 1, 2, 2])]
    assert polytomous_discrimination_index(np.array([0, 1, 2, 2]), perfect) == 1.0
    assert math.isnan(polytomous_discrimination_index(np.array([0, 0, 1]), np.full((3, 3), 1 / 3)))
    with pytest.raises(ValueError, match="class indices"):
        polytomous_discrimination_index(np.array([0, 3]), np.full((2, 3), 1 / 3))


def test_plot_flexible_calibration() -> None:
    rng = np.random.default_rng(4)
    proba = rng.dirichlet(np.ones(3), 120)
    y = np.array([rng.choice(3, p=row) for row in proba])
    curves = {c: flexible_calibration_curve(y == k, proba[:, k], boot=10) for k, c in enumerate(CLASSES)}
    fig = plot_flexible_calibration(curves, "OOF calibration")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_title() == "OOF calibration"
    assert ax.get_xlabel() == "predicted probability" and "observed" in ax.get_ylabel()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(label.startswith("neuropathic (ICI") for label in labels)
    colours = class_colours(CLASSES)
    assert colours == class_colours(("mixed", "nociceptive", "neuropathic"))  # fixed per class, not per position
    assert len(set(class_colours((*CLASSES, "nociplastic", "other")).values())) == 5
