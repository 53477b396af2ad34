"""Evaluation: hand-worked metrics, label-set generality, subgroup flags, baselines, ceiling, plots."""

from __future__ import annotations

import io
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from painml.evaluation.metrics import (
    age_band,
    baseline_metrics,
    ceiling_gap,
    classification_metrics,
    confusion,
    oracle_metrics,
    questionnaire_used,
    subgroup_metrics,
)
from painml.evaluation.plots import plot_calibration, plot_confusion
from painml.simulator.simulate import simulate

CLASSES = ("nociceptive", "neuropathic", "mixed")
FOUR = (*CLASSES, "nociplastic")


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    return simulate("pain_clinic", 4000, seed=1)


def _onehot(y: np.ndarray, classes: tuple[str, ...], on: float = 1.0) -> np.ndarray:
    k = len(classes)
    off = (1.0 - on) / (k - 1)
    return np.where(y[:, None] == np.array(classes)[None, :], on, off)


def test_perfect_and_uniform_predictors() -> None:
    y = np.array(["nociceptive", "neuropathic", "mixed", "mixed", "neuropathic"], dtype=object)
    m = classification_metrics(y, _onehot(y, CLASSES), CLASSES)
    assert m["test_macro_f1"] == 1.0
    assert m["test_accuracy"] == 1.0
    assert m["test_balanced_accuracy"] == 1.0
    assert m["test_log_loss"] == pytest.approx(0.0, abs=1e-9)
    assert m["test_brier"] == pytest.approx(0.0)
    assert m["test_ece"] == pytest.approx(0.0)
    assert all(m[f"test_auroc_{c}"] == 1.0 for c in CLASSES)

    uniform = classification_metrics(y, np.full((len(y), 3), 1 / 3), CLASSES, prefix="val_")
    assert uniform["val_log_loss"] == pytest.approx(math.log(3))
    assert uniform["val_brier"] == pytest.approx(2 / 3)
    assert set(uniform) == {
        f"val_{k}" for k in ("macro_f1", "balanced_accuracy", "accuracy", "log_loss", "brier", "ece")
    } | {f"val_auroc_{c}" for c in CLASSES}


def test_brier_by_hand() -> None:
    # row 1: (0.7-1)^2 + 0.2^2 + 0.1^2 = 0.14; row 2: 0.5^2 + (0.3-1)^2 + 0.2^2 = 0.78
    y = ["a", "b"]
    proba = np.array([[0.7, 0.2, 0.1], [0.5, 0.3, 0.2]])
    assert classification_metrics(y, proba, ("a", "b", "c"))["test_brier"] == pytest.approx(0.46)


def test_ece_by_hand_uses_15_bins() -> None:
    # top-label confidence / correct: 0.9 yes, 0.9 no, 0.68 yes, 0.72 no.
    # 15 bins: (0.867, 0.933] acc 0.5 conf 0.9; (0.667, 0.733] acc 0.5 conf 0.70
    #   -> (2 * 0.4 + 2 * 0.2) / 4 = 0.30  (10 bins would split 0.68 / 0.72 and give 0.46)
    y = ["a", "b", "b", "b"]
    proba = np.array([[0.9, 0.1], [0.9, 0.1], [0.32, 0.68], [0.72, 0.28]])
    assert classification_metrics(y, proba, ("a", "b"))["test_ece"] == pytest.approx(0.30)


def test_log_loss_follows_class_order_not_alphabet() -> None:
    # classes deliberately not sorted: sklearn would read the columns alphabetically
    y = ["nociceptive", "mixed"]
    proba = np.array([[0.8, 0.1, 0.1], [0.1, 0.1, 0.8]])
    expected = -math.log(0.8)
    assert classification_metrics(y, proba, CLASSES)["test_log_loss"] == pytest.approx(expected)


def test_four_classes_with_one_absent() -> None:
    rng = np.random.default_rng(0)
    y = rng.choice(np.array(CLASSES, dtype=object), 200)  # nociplastic never occurs
    proba = rng.dirichlet(np.ones(4), 200)
    proba[np.arange(200), [FOUR.index(v) for v in y]] += 1.0
    proba /= proba.sum(axis=1, keepdims=True)
    m = classification_metrics(y, proba, FOUR)
    assert math.isnan(m["test_auroc_nociplastic"])
    assert 0.5 < m["test_auroc_mixed"] <= 1.0
    assert all(np.isfinite(m[f"test_{k}"]) for k in ("macro_f1", "log_loss", "brier", "ece", "balanced_accuracy"))

    perfect = classification_metrics(y, _onehot(y, FOUR), FOUR)
    assert perfect["test_macro_f1"] == 1.0  # a never-predicted absent class does not drag F1 down

    cm = confusion(y, np.array(FOUR, dtype=object)[proba.argmax(axis=1)], FOUR)
    assert list(cm.index) == list(FOUR) and list(cm.columns) == list(FOUR)
    assert cm.index.name == "true label" and cm.columns.name == "predicted label"
    assert cm.loc["nociplastic"].sum() == 0 and cm.to_numpy().sum() == 200


def test_labels_outside_classes_are_errors() -> None:
    with pytest.raises(ValueError, match="outside classes"):
        classification_metrics(["a", "z"], np.full((2, 2), 0.5), ("a", "b"))
    with pytest.raises(ValueError, match="shape"):
        classification_metrics(["a", "b"], np.full((2, 3), 1 / 3), ("a", "b"))


def test_questionnaire_used_and_age_band() -> None:
    frame = pd.DataFrame({
        "age": [18, 39, 40, 59, 60, 74, 75, np.nan],
        "burning": [1.0, np.nan, 0.0, np.nan, np.nan, np.nan, np.nan, np.nan],
        "itching": [np.nan, np.nan, np.nan, 0.0, np.nan, np.nan, np.nan, np.nan],
        "pd_numbness": [np.nan, 3.0, 0.0, 1.0, np.nan, np.nan, np.nan, np.nan],
        "brush_allodynia": [np.nan, np.nan, np.nan, np.nan, 1.0, np.nan, np.nan, np.nan],
    })  # fmt: skip
    used = questionnaire_used(frame)
    assert used.tolist() == ["dn4", "paindetect", "both", "both", "none", "none", "none", "none"]
    assert age_band(frame).tolist() == ["18-39", "18-39", "40-59", "40-59", "60-74", "60-74", "75+", "unknown"]
    assert questionnaire_used(pd.DataFrame(index=range(2))).tolist() == ["none", "none"]
    assert age_band(pd.DataFrame(index=range(2))).tolist() == ["unknown", "unknown"]


def test_subgroup_metrics_flags_bad_and_tiny_groups() -> None:
    rng = np.random.default_rng(3)
    n = 300
    site = np.array(["a"] * 150 + ["b"] * 140 + ["c"] * 10, dtype=object)
    frame = pd.DataFrame({
        "patient_id": [f"P{i}" for i in range(n)],
        "site": site,
        "sex": rng.choice(np.array(["female", "male", None], dtype=object), n),
        "age": rng.integers(18, 90, n).astype(float),
        "burning": np.where(site == "a", 1.0, np.nan),
    })  # fmt: skip
    y = rng.choice(np.array(CLASSES, dtype=object), n)
    proba = _onehot(y, CLASSES, on=0.8)
    in_b = site == "b"
    proba[in_b] = np.roll(proba[in_b], 1, axis=1)  # site b: confidently wrong
    table = subgroup_metrics(frame, y, proba, CLASSES, min_rows=30)

    assert table.iloc[0][["group", "level"]].tolist() == ["overall", "all"]
    by_site = table[table["group"] == "site"].set_index("level")
    assert by_site.loc["b", "flag"] == "markedly worse"
    assert by_site.loc["a", "flag"] == ""
    assert by_site.loc["c", "flag"] == "too few rows"
    assert by_site.loc["c", "n"] == 10 and np.isfinite(by_site.loc["c", "macro_f1"])
    assert set(table["group"]) == {"overall", "sex", "age_band", "site", "questionnaire"}
    assert "unknown" in set(table.loc[table["group"] == "sex", "level"])
    assert set(table.loc[table["group"] == "questionnaire", "level"]) == {"dn4", "none"}
    assert {"auroc_nociceptive", "auroc_neuropathic", "auroc_mixed", "log_loss", "ece"} <= set(table.columns)
    assert not table.astype(str).apply(lambda col: col.str.startswith("P")).to_numpy().any()
    assert (table.groupby("group")["n"].sum() == n).all()


def test_baseline_metrics_on_simulated_cohort(cohort: pd.DataFrame) -> None:
    table = baseline_metrics(cohort, cohort["pain_type"], CLASSES).set_index("baseline")
    assert list(table.index) == [
        "DN4 >= 4", "DN4-interview >= 3", "painDETECT >= 19", "LANSS >= 12",
        "ID-Pain >= 2", "NeuPSIG >= probable", "painDETECT bands",
    ]  # fmt: skip
    dn4 = table.loc["DN4 >= 4"]
    assert 0.6 < dn4["sensitivity"] < 0.97 and 0.6 < dn4["specificity"] < 0.97
    assert 0.0 < dn4["coverage"] < 1.0  # the painDETECT-only site records no DN4
    assert dn4["n_scored"] == round(dn4["coverage"] * len(cohort))
    assert 0.5 < dn4["auroc"] <= 1.0 and math.isnan(dn4["macro_f1"])
    bands = table.loc["painDETECT bands"]
    assert bands["question"] == "3 classes"
    assert 0.0 < bands["macro_f1"] < 1.0 and 0.0 < bands["accuracy"] < 1.0
    assert math.isnan(bands["sensitivity"])


def test_baseline_metrics_other_label_sets(cohort: pd.DataFrame) -> None:
    y = cohort["pain_type"].to_numpy(dtype=object).copy()
    y[:500] = "nociplastic"
    table = baseline_metrics(cohort, y, FOUR).set_index("baseline")
    assert (table["n"] == len(cohort) - 500).all()  # nociplastic rows cannot answer the question
    assert "painDETECT bands" not in table.index  # a three-class rule cannot be scored on four classes

    keep = cohort["pain_type"].isin(["nociceptive", "neuropathic"]).to_numpy()
    two = baseline_metrics(cohort[keep], cohort.loc[keep, "pain_type"], ("nociceptive", "neuropathic"))
    assert "painDETECT bands" not in set(two["baseline"])
    assert two["sensitivity"].notna().all()


def test_oracle_and_ceiling_gap(cohort: pd.DataFrame) -> None:
    y = cohort["pain_type"]
    oracle = oracle_metrics(cohort, y, CLASSES)
    assert oracle["oracle_log_loss"] < math.log(3)
    assert {"oracle_macro_f1", "oracle_brier", "oracle_ece", "oracle_auroc_mixed"} <= set(oracle)

    truth_proba = cohort[[f"true_p_{c}" for c in CLASSES]].to_numpy(dtype=float)
    model = classification_metrics(y, truth_proba, CLASSES)
    gap = ceiling_gap(model, oracle)
    assert gap == {"gap_log_loss": 0.0, "gap_macro_f1": 0.0}

    uniform = classification_metrics(y, np.full((len(y), 3), 1 / 3), CLASSES)
    assert ceiling_gap(uniform, oracle)["gap_log_loss"] > 0

    assert oracle_metrics(None, y, CLASSES) == {}
    assert oracle_metrics(cohort, y, FOUR) == {}  # no true_p_nociplastic: not this task's ceiling
    assert ceiling_gap(model, {}) == {}


def test_plots_are_titled_and_labelled() -> None:
    rng = np.random.default_rng(1)
    y = rng.choice(np.array(FOUR[:3], dtype=object), 300)
    proba = rng.dirichlet(np.ones(4), 300)
    pred = np.array(FOUR, dtype=object)[proba.argmax(axis=1)]

    fig = plot_confusion(confusion(y, pred, FOUR), "Confusion, test set")
    ax = fig.axes[0]
    assert isinstance(fig, Figure)
    assert ax.get_title() == "Confusion, test set"
    assert ax.get_xlabel() == "predicted label" and ax.get_ylabel() == "true label"
    assert any("%" in t.get_text() for t in ax.texts)

    fig2 = plot_calibration(y, proba, FOUR, "Calibration, test set")
    ax2 = fig2.axes[0]
    assert ax2.get_title() == "Calibration, test set"
    assert ax2.get_xlabel() == "predicted probability" and ax2.get_ylabel() == "observed frequency"
    legend = [t.get_text() for t in ax2.get_legend().get_texts()]
    assert "nociplastic (absent)" in legend and "mixed" in legend
    for f in (fig, fig2):
        f.savefig(io.BytesIO(), format="png")
        plt.close(f)


def test_each_tool_is_compared_with_the_model_on_exactly_its_rows(cohort: pd.DataFrame) -> None:
    """Like for like: the model's row beside a tool is scored on the tool's rows only, and says so."""
    from painml.evaluation.metrics import MODEL_ON_TOOL_ROWS, tool_comparison
    from painml.features.screening import compute_scores

    frame = pd.read_csv(io.StringIO(cohort.to_csv(index=False)))
    y = frame["pain_type"].to_numpy(dtype=object)
    rng = np.random.default_rng(3)
    proba = rng.dirichlet(np.ones(3), len(frame))
    table = tool_comparison(frame, y, proba, CLASSES)
    assert table.iloc[0]["n"] == len(frame) and table.iloc[0]["coverage"] == 1.0
    tools = table[table["compared_with"] == ""].iloc[1:]
    model = table[table["compared_with"] != ""].set_index("compared_with")
    assert set(model["tool"]) == {MODEL_ON_TOOL_ROWS} and list(model.index) == list(tools["tool"])
    scores = compute_scores(frame)
    dn4 = tools.set_index("tool").loc["DN4 >= 4"]
    rows = scores["dn4"].notna().to_numpy()
    assert 0 < rows.sum() < len(frame) and dn4["n"] == model.loc["DN4 >= 4", "n"] == rows.sum()
    truth = np.isin(y[rows], ["neuropathic", "mixed"])
    called = proba[rows][:, [1, 2]].sum(axis=1) >= 0.5
    assert model.loc["DN4 >= 4", "sensitivity"] == pytest.approx(called[truth].mean())
    assert model.loc["DN4 >= 4", "specificity"] == pytest.approx((~called[~truth]).mean())
    baselines = baseline_metrics(frame, y, CLASSES).set_index("baseline")
    assert dn4["sensitivity"] == pytest.approx(baselines.loc["DN4 >= 4", "sensitivity"])
    two = ("neuropathic", "mixed")
    only = np.isin(y, two)
    assert tool_comparison(
        frame[only], y[only], proba[only][:, :2] / proba[only][:, :2].sum(1, keepdims=True), two
    ).empty


@pytest.mark.parametrize(
    ("classes", "words"),
    [
        (("nociceptive", "neuropathic"), "two classes (nociceptive, neuropathic)"),
        (CLASSES, "three classes (nociceptive, neuropathic, mixed)"),
        (FOUR, "four classes (nociceptive, neuropathic, mixed, nociplastic)"),
    ],
)
def test_the_label_set_is_named_for_what_it_is(classes, words) -> None:
    from painml.evaluation.metrics import label_set_name

    assert label_set_name(classes) == words
