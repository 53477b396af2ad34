"""Prediction instability (Riley & Collins 2023) on constructed refits with known answers; plot."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from painml.evaluation.plots import plot_instability
from painml.evaluation.stability import prediction_instability

CLASSES = ("nociceptive", "neuropathic", "mixed")
FULL = np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7]])
REFITS = np.array([
    [[0.45, 0.35, 0.2], [0.1, 0.2, 0.7]],
    [[0.5, 0.3, 0.2], [0.2, 0.2, 0.6]],
    [[0.2, 0.5, 0.3], [0.1, 0.2, 0.7]],
    [[0.5, 0.3, 0.2], [0.1, 0.2, 0.7]],
    [[0.3, 0.4, 0.3], [0.1, 0.2, 0.7]],
])  # fmt: skip


def test_hand_worked_three_classes() -> None:
    """2 patients, 5 refits.

    Patient 0 (full .5 .3 .2, class 0): |differences| class 0: .05 0 .3 0 .2 -> mean .11;
    class 1: .05 0 .2 0 .1 -> .07; class 2: 0 0 .1 0 .1 -> .04. Refits 3 and 5 predict
    class 1: class change 2/5 = 0.4 > 0.2 -> unstable.
    Patient 1 (full .1 .2 .7): only refit 2 differs (.2 .2 .6): class 0 .1/5 = .02, class 1 0,
    class 2 .02; class 2 every time -> change 0.
    MAPE per class = mean over patients: (.11 + .02)/2 = .065, (.07 + 0)/2 = .035,
    (.04 + .02)/2 = .03; overall (.065 + .035 + .03)/3 = .043333. Share unstable 1/2.
    50% interval of patient 0, class 0: sorted .2 .3 .45 .5 .5 -> 25th pct .3, 75th .5.
    """
    inst = prediction_instability(FULL, REFITS, CLASSES)
    assert inst.n_refits == 5 and inst.classes == CLASSES
    assert inst.patient_mape == pytest.approx(np.array([[0.11, 0.07, 0.04], [0.02, 0.0, 0.02]]))
    assert dict(inst.mape_by_class) == pytest.approx({"nociceptive": 0.065, "neuropathic": 0.035, "mixed": 0.03})
    assert inst.mape == pytest.approx(0.13 / 3)
    assert inst.full_class.tolist() == [0, 2]
    assert inst.class_change == pytest.approx([0.4, 0.0])
    assert inst.unstable.tolist() == [True, False] and inst.share_unstable == 0.5
    # "more than" the threshold: exactly 40% of refits is not more than 40%
    assert prediction_instability(FULL, REFITS, CLASSES, threshold=0.4).share_unstable == 0.0
    half = prediction_instability(FULL, REFITS, CLASSES, level=0.5)
    assert (half.lower[0, 0], half.upper[0, 0]) == pytest.approx((0.3, 0.5))
    assert inst.lower.shape == inst.upper.shape == FULL.shape
    assert (inst.lower <= inst.upper).all()


def test_two_classes_and_identical_refits() -> None:
    """K = 2: p and 1 - p move together, so both classes have the same MAPE.

    Patient 0 (full .6 .4): refits .6 .6 .4 .7 -> |diff| 0 0 .2 .1 -> .075; the .4 refit
    predicts class 1: change 1/4 = 0.25 > 0.2. Patient 1 never moves. MAPE (.075 + 0)/2 = .0375.
    """
    full = np.array([[0.6, 0.4], [0.3, 0.7]])
    p0 = np.array([0.6, 0.6, 0.4, 0.7])
    refits = np.stack([np.array([[a, 1 - a], [0.3, 0.7]]) for a in p0])
    inst = prediction_instability(full, refits, ("nociceptive", "neuropathic"))
    assert dict(inst.mape_by_class) == pytest.approx({"nociceptive": 0.0375, "neuropathic": 0.0375})
    assert inst.mape == pytest.approx(0.0375)
    assert inst.class_change == pytest.approx([0.25, 0.0]) and inst.share_unstable == 0.5

    same = prediction_instability(FULL, np.stack([FULL] * 7), CLASSES)
    assert same.mape == 0.0 and same.share_unstable == 0.0
    assert np.array_equal(same.lower, FULL) and np.array_equal(same.upper, FULL)


def test_input_checks() -> None:
    with pytest.raises(ValueError, match="refits must have shape"):
        prediction_instability(FULL, REFITS[:, :1], CLASSES)
    with pytest.raises(ValueError, match="full must have shape"):
        prediction_instability(FULL[:, :2], REFITS, CLASSES)
    with pytest.raises(ValueError, match="probabilities"):
        prediction_instability(FULL, REFITS * 3, CLASSES)
    with pytest.raises(ValueError, match="threshold"):
        prediction_instability(FULL, REFITS, CLASSES, threshold=1.0)


def test_plot_instability() -> None:
    rng = np.random.default_rng(0)
    full = rng.dirichlet(np.ones(3), 40)
    refits = np.stack([0.8 * full + 0.2 * rng.dirichlet(np.ones(3), 40) for _ in range(25)])
    fig = plot_instability(full, refits, CLASSES, "Prediction instability", max_points=500)
    assert isinstance(fig, Figure)
    assert fig.get_suptitle().startswith("Prediction instability")
    assert len(fig.axes) == 3
    for ax, c in zip(fig.axes, CLASSES):
        assert ax.get_xlabel() == "predicted probability, full model"
        assert ax.get_ylabel() == "predicted probability, refitted models"
        assert ax.get_title().startswith(c)
        assert len(ax.collections[0].get_offsets()) == 500  # subsampled from 25 x 40
