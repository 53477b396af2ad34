"""Decision curves: hand-worked net benefit, reference strategies, like-for-like test rows, component question."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from painml.evaluation.decision import (
    ALL_ROWS,
    DEFAULT_THRESHOLDS,
    component_question,
    decision_curve,
    net_benefit,
    screening_tests,
)
from painml.evaluation.metrics import baseline_metrics
from painml.evaluation.plots import plot_decision_curve
from painml.simulator.simulate import simulate

CLASSES = ("nociceptive", "neuropathic", "mixed")
# 10 patients, 4 with a neuropathic component (prevalence 0.4)
Y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], dtype=bool)
P = np.array([0.9, 0.6, 0.3, 0.15, 0.25, 0.12, 0.08, 0.05, 0.18, 0.02])
# a yes/no questionnaire recorded on the first 8 patients only
TEST_POSITIVE = np.array([1, 1, 0, 1, 1, 0, 0, 0, 1, 1], dtype=bool)  # the last two are not recorded
TEST_AVAILABLE = np.array([True] * 8 + [False] * 2)


def _nb(frame: pd.DataFrame, rows: str, strategy: str, threshold: float, column: str = "net_benefit") -> float:
    hit = frame[(frame["rows"] == rows) & (frame["strategy"] == strategy) & np.isclose(frame["threshold"], threshold)]
    assert len(hit) == 1
    return float(hit[column].iloc[0])


def test_net_benefit_hand_worked() -> None:
    """pt = 0.1 (odds 1/9): the model (p >= 0.1) treats events .9 .6 .3 .15 (TP 4) and non-events
    .25 .12 .18 (FP 3): NB = 4/10 - 3/10 * 1/9 = 0.366667; treat all: 0.4 - 0.6/9 = 0.333333.
    pt = 0.2 (odds 1/4): TP 3 (.15 < .2), FP 1 (.25): NB = 0.3 - 0.1/4 = 0.275; treat all 0.4 - 0.6/4 = 0.25.
    """
    assert net_benefit(Y, P >= 0.1, 0.1) == pytest.approx(4 / 10 - 3 / 10 / 9)
    assert net_benefit(Y, P >= 0.2, 0.2) == pytest.approx(0.275)
    assert net_benefit(Y, np.ones(10, dtype=bool), 0.2) == pytest.approx(0.25)
    assert net_benefit(Y, np.zeros(10, dtype=bool), 0.3) == 0.0
    assert np.isnan(net_benefit(np.zeros(0, dtype=bool), np.zeros(0, dtype=bool), 0.1))
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="threshold"):
            net_benefit(Y, P >= 0.5, bad)


def test_decision_curve_hand_worked() -> None:
    """All 10 rows: model NB 0.366667 / 0.275 and treat all 0.333333 / 0.25 at pt 0.1 / 0.2 (above).
    Net interventions avoided per 100 = (NB - NB_all) / odds * 100:
    pt 0.1: (0.366667 - 0.333333) * 9 * 100 = 30; pt 0.2: (0.275 - 0.25) * 4 * 100 = 10.

    The test's 8 rows (4 events, prevalence 0.5): test positives TP 3 (rows 0, 1, 3), FP 1 (row 4):
    pt 0.1: 3/8 - 1/8 / 9 = 0.361111; pt 0.2: 3/8 - 1/8 / 4 = 0.34375.
    Model on the same 8 rows: pt 0.1 TP 4, FP 2 (.25, .12): 0.5 - 2/8 / 9 = 0.472222;
    pt 0.2 TP 3, FP 1: 0.34375. Treat all there: 0.5 - 0.5/9 = 0.444444 and 0.5 - 0.5/4 = 0.375,
    so at pt 0.2 the model avoids (0.34375 - 0.375) * 4 * 100 = -12.5 interventions per 100.
    """
    frame = decision_curve(Y, P, [0.1, 0.2], tests={"DN4 >= 4": (TEST_POSITIVE, TEST_AVAILABLE)})
    assert list(frame.columns) == [
        "rows", "n", "prevalence", "strategy", "threshold", "net_benefit", "net_interventions_avoided_per_100",
    ]  # fmt: skip
    assert list(dict.fromkeys(frame["rows"])) == [ALL_ROWS, "DN4 >= 4"]
    assert set(frame.loc[frame["rows"] == ALL_ROWS, "strategy"]) == {"model", "treat all", "treat none"}
    assert set(frame.loc[frame["rows"] == "DN4 >= 4", "strategy"]) == {"model", "treat all", "treat none", "DN4 >= 4"}
    assert _nb(frame, ALL_ROWS, "model", 0.1) == pytest.approx(0.366667, abs=1e-6)
    assert _nb(frame, ALL_ROWS, "model", 0.2) == pytest.approx(0.275)
    assert _nb(frame, ALL_ROWS, "treat all", 0.1) == pytest.approx(1 / 3)
    assert _nb(frame, ALL_ROWS, "model", 0.1, "net_interventions_avoided_per_100") == pytest.approx(30)
    assert _nb(frame, ALL_ROWS, "model", 0.2, "net_interventions_avoided_per_100") == pytest.approx(10)
    assert _nb(frame, "DN4 >= 4", "DN4 >= 4", 0.1) == pytest.approx(0.361111, abs=1e-6)
    assert _nb(frame, "DN4 >= 4", "DN4 >= 4", 0.2) == pytest.approx(0.34375)
    assert _nb(frame, "DN4 >= 4", "model", 0.1) == pytest.approx(0.472222, abs=1e-6)
    assert _nb(frame, "DN4 >= 4", "model", 0.2) == pytest.approx(0.34375)
    assert _nb(frame, "DN4 >= 4", "treat all", 0.2) == pytest.approx(0.375)
    assert _nb(frame, "DN4 >= 4", "model", 0.2, "net_interventions_avoided_per_100") == pytest.approx(-12.5)
    sub = frame[frame["rows"] == "DN4 >= 4"]
    assert (sub["n"] == 8).all() and (sub["prevalence"] == 0.5).all()
    assert (frame.loc[frame["rows"] == ALL_ROWS, "prevalence"] == 0.4).all()


def test_reference_strategies_and_perfect_model() -> None:
    rng = np.random.default_rng(0)
    y = rng.uniform(size=200) < 0.35
    p = rng.uniform(size=200)
    frame = decision_curve(y, p)
    assert np.allclose(np.sort(frame["threshold"].unique()), DEFAULT_THRESHOLDS)
    assert DEFAULT_THRESHOLDS[0] == 0.05 and DEFAULT_THRESHOLDS[-1] == 0.5 and len(DEFAULT_THRESHOLDS) == 46
    none = frame[frame["strategy"] == "treat none"]
    assert (none["net_benefit"] == 0).all()
    treat_all = frame[frame["strategy"] == "treat all"]
    prev, pt = y.mean(), treat_all["threshold"].to_numpy()
    assert treat_all["net_benefit"].to_numpy() == pytest.approx(prev - (1 - prev) * pt / (1 - pt))
    assert (treat_all["net_interventions_avoided_per_100"] == 0).all()
    perfect = decision_curve(y, y.astype(float))
    model = perfect[perfect["strategy"] == "model"]
    assert model["net_benefit"].to_numpy() == pytest.approx(np.full(len(model), prev))
    # a test that is always positive is treat all; a test of the truth is the perfect model
    both = decision_curve(
        y, p, tests={"all+": (np.ones(200, bool), np.ones(200, bool)), "oracle": (y, np.ones(200, bool))}
    )
    assert _nb(both, "all+", "all+", 0.3) == pytest.approx(_nb(both, "all+", "treat all", 0.3))
    assert _nb(both, "oracle", "oracle", 0.3) == pytest.approx(prev)


def test_decision_curve_input_checks() -> None:
    with pytest.raises(ValueError, match="reserved"):
        decision_curve(Y, P, tests={"model": (TEST_POSITIVE, TEST_AVAILABLE)})
    with pytest.raises(ValueError, match="threshold"):
        decision_curve(Y, P, [0.0, 0.2])
    with pytest.raises(ValueError, match="rows"):
        decision_curve(Y, P, tests={"x": (TEST_POSITIVE[:5], TEST_AVAILABLE)})
    empty = decision_curve(Y, P, [0.1], tests={"never": (TEST_POSITIVE, np.zeros(10, dtype=bool))})
    assert empty.loc[empty["rows"] == "never", "net_benefit"].isna().all()


def test_component_question() -> None:
    y = np.array(["nociceptive", "neuropathic", "mixed", "nociplastic"], dtype=object)
    proba = np.array([[0.6, 0.1, 0.2, 0.1], [0.1, 0.7, 0.1, 0.1], [0.2, 0.3, 0.4, 0.1], [0.1, 0.1, 0.1, 0.7]])
    q = component_question(y, proba, (*CLASSES, "nociplastic"))
    assert q is not None
    assert q.rows.tolist() == [True, True, True, False]  # nociplastic cannot answer the question
    assert q.y.tolist() == [False, True, True]
    assert q.p == pytest.approx([0.3, 0.8, 0.7])  # neuropathic + mixed, not renormalised
    assert q.present == ("neuropathic", "mixed") and q.absent == ("nociceptive",)
    two = component_question(["neuropathic", "mixed"], [[0.4, 0.6], [0.5, 0.5]], ("neuropathic", "mixed"))
    assert two is None  # no nociceptive class: no contrast
    assert component_question(["a", "b"], [[0.4, 0.6], [0.5, 0.5]], ("a", "b")) is None


def test_screening_tests_line_up_with_baseline_metrics() -> None:
    cohort = simulate("pain_clinic", 300, seed=3)
    rng = np.random.default_rng(3)
    proba = rng.dirichlet(np.ones(3), len(cohort))
    q = component_question(cohort["pain_type"], proba, CLASSES)
    assert q is not None and q.rows.all()
    tests = screening_tests(cohort, q.rows)
    table = baseline_metrics(cohort, cohort["pain_type"], CLASSES).set_index("baseline")
    assert list(tests) == [name for name in table.index if name != "painDETECT bands"]
    for name, (positive, available) in tests.items():
        assert int(available.sum()) == table.loc[name, "n_scored"]
        sensitivity = positive[available & q.y].mean()
        assert sensitivity == pytest.approx(table.loc[name, "sensitivity"])
    frame = decision_curve(q.y, q.p, [0.1, 0.3], tests=tests)
    assert set(frame["rows"]) == {ALL_ROWS, *tests}
    for name, (_, available) in tests.items():
        assert (frame.loc[frame["rows"] == name, "n"] == available.sum()).all()


def test_plot_decision_curve() -> None:
    tests = {"DN4 >= 4": (TEST_POSITIVE, TEST_AVAILABLE), "LANSS >= 12": (Y, np.ones(10, dtype=bool))}
    frame = decision_curve(Y, P, [0.1, 0.2, 0.3], tests=tests)
    fig = plot_decision_curve(frame, "Neuropathic component: decision curves")
    assert isinstance(fig, Figure)
    assert fig.get_suptitle() == "Neuropathic component: decision curves"
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 3  # all rows, and one panel per test's rows
    for ax in visible:
        assert ax.get_xlabel() == "threshold probability" and ax.get_ylabel() == "net benefit"
        assert ax.get_title()
    styles = {}
    for ax in visible:
        for line in ax.get_lines():
            styles[line.get_label()] = (line.get_color(), line.get_linestyle())
    assert {"model", "treat all", "treat none", "DN4 >= 4", "LANSS >= 12"} <= set(styles)
    assert len({styles[s] for s in ("model", "treat all", "DN4 >= 4", "LANSS >= 12")}) == 4
    single = plot_decision_curve(frame, "only all rows", rows=[ALL_ROWS])
    assert len([ax for ax in single.axes if ax.get_visible()]) == 1
    with pytest.raises(ValueError, match="subsets"):
        plot_decision_curve(frame, "x", rows=["nope"])
