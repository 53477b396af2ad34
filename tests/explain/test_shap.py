"""SHAP explanations: additivity on the calibrated logits, folding, labels, reasons, plots, MLflow."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from painml.config import load_config
from painml.explain import plots as explain_plots
from painml.explain import shap as explain
from painml.features.encoding import feature_sources
from painml.jobs import explain as explain_job
from painml.model.bundle import ModelBundle
from painml.model.dataset import load_dataset, split_rows
from painml.model.fit import build_bundle, fit_family
from painml.record.vocabulary import AWAY, TOWARDS, reason_label
from painml.serving.predictor import Predictor

REPO = Path(__file__).resolve().parents[2]
FAMILIES = ("gbm", "logistic")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def trained():
    """Both families fitted on a small simulated cohort, without MLflow; and 300 rows to explain."""
    cfg = load_config(REPO / "configs" / "smoke.yaml")
    cfg = cfg.model_copy(
        update={
            "data": cfg.data.model_copy(update={"n": 1_500}),
            "models": tuple(m.model_copy(update={"n_estimators": 30}) if m.family == "gbm" else m for m in cfg.models),
        }
    )
    data = load_dataset(cfg)
    rows = split_rows(data.y, cfg)
    bundles = {}
    for model_cfg in cfg.models:
        estimator, _ = fit_family(model_cfg, cfg, data.X, data.y, rows)
        bundles[model_cfg.family] = build_bundle(estimator, model_cfg.family, cfg, data, rows)
    test = rows["test"][:300]
    return bundles, data.X.iloc[test], data.records.frame.iloc[test]


def _raw_margins(bundle: ModelBundle, X: pd.DataFrame) -> np.ndarray:
    """The uncalibrated model's per-class score in the bundle's class order."""
    pipeline = bundle.pipeline
    encoded = pipeline.named_steps["features"].transform(X)
    model = pipeline.named_steps["model"]
    if bundle.metadata.family == "gbm":
        raw = model.booster_.predict(encoded.to_numpy(dtype=float), raw_score=True)
    else:
        raw = model.decision_function(encoded)
    order = [list(model.classes_).index(c) for c in bundle.classes]
    return raw[:, order]


@pytest.mark.parametrize("family", FAMILIES)
def test_base_plus_values_is_the_calibrated_logit(trained, family):
    bundles, X, _ = trained
    bundle = bundles[family]
    raw = explain.shap_values(bundle, X)
    n, m, c = raw.values.shape
    assert (n, c) == (len(X), len(bundle.classes)) and m == len(raw.feature_names) == raw.data.shape[1]
    assert raw.base_values.shape == (n, c)
    beta = bundle.temperature_factor
    assert beta is not None and beta != 1.0  # calibrated by temperature
    # additivity per class: base + sum of values == beta * the model's raw score for that class
    np.testing.assert_allclose(raw.logits, beta * _raw_margins(bundle, X), rtol=1e-9, atol=1e-9)
    # and softmax of that logit is the calibrated probability, classes in the bundle's (not alphabetical) order
    np.testing.assert_allclose(raw.proba, Predictor(bundle).predict_proba(X), atol=1e-6)
    assert bundle.classes != sorted(bundle.classes)


@pytest.mark.parametrize("family", FAMILIES)
def test_additivity_without_calibration(trained, family):
    bundles, X, _ = trained
    bare = ModelBundle(bundles[family].pipeline, bundles[family].metadata)
    assert bare.temperature_factor == 1.0
    raw = explain.shap_values(bare, X)
    order = [list(bare.pipeline.classes_).index(c) for c in bare.classes]
    np.testing.assert_allclose(raw.proba, bare.pipeline.predict_proba(X)[:, order], atol=1e-9)


def test_native_tree_shap_equals_shap_tree_explainer(trained):
    bundles, X, _ = trained
    ours = explain.shap_values(bundles["gbm"], X).values
    np.testing.assert_allclose(ours, explain.tree_explainer_values(bundles["gbm"], X), atol=1e-9)


@pytest.mark.parametrize("family", FAMILIES)
def test_folding_keeps_totals_and_uses_the_encoders(trained, family):
    bundles, X, frame = trained
    bundle = bundles[family]
    raw = explain.shap_values(bundle, X)
    sources = feature_sources(bundle.pipeline.named_steps["features"])
    folded = explain.fold(raw, sources, frame)
    assert folded.values.shape == (len(X), len(folded.feature_names), len(bundle.classes))
    np.testing.assert_allclose(folded.values.sum(axis=1), raw.values.sum(axis=1), atol=1e-10)
    np.testing.assert_allclose(folded.logits, raw.logits, atol=1e-10)
    # a category: every one-hot column of pain_region (the encoder's categories) adds into one feature
    encoded = [j for j, name in enumerate(raw.feature_names) if sources[name] == "pain_region"]
    assert len(encoded) >= len(frame["pain_region"].dropna().unique())
    k = folded.feature_names.index("pain_region")
    np.testing.assert_allclose(folded.values[:, k, :], raw.values[:, encoded, :].sum(axis=1), atol=1e-12)
    # screening scores stay features of their own; no encoded name survives folding
    assert {"dn4", "paindetect", "neupsig_grade"} <= set(folded.feature_names)
    assert not set(folded.feature_names) & (set(raw.feature_names) - set(sources.values()))
    if family == "logistic":  # missing-value indicators fold into their column
        indicators = [n for n in raw.feature_names if n.startswith("missingindicator_")]
        assert indicators and all(sources[n] in folded.feature_names for n in indicators)


@pytest.mark.parametrize(
    ("feature", "value", "label"),
    [
        ("brush_allodynia", 1.0, "brush allodynia: present"),
        ("brush_allodynia", 0.0, "brush allodynia: absent"),
        ("diabetes", np.nan, "diabetes: not recorded"),
        ("paindetect", 23.0, "painDETECT score: 23"),
        ("dn4", 5.0, "DN4 score: 5/10"),
        ("neupsig_grade", 2.0, "NeuPSIG grade: probable"),
        ("pain_region", "lower_limb", "pain region: lower limb"),
        ("nerve_conduction", None, "nerve conduction: not done"),
        ("pd_burning", 3.0, "painDETECT burning: moderately (3/5)"),
        ("age", 54.0, "age: 54 years"),
    ],
)
def test_readable_labels(feature, value, label):
    assert reason_label(feature, value) == label


@pytest.mark.parametrize("family", FAMILIES)
def test_top_reasons_are_the_largest_folded_values(trained, family):
    bundles, X, frame = trained
    bundle = bundles[family]
    reasons = explain.top_reasons(bundle, X, frame, k=3)
    full = explain.explain(bundle, X, frame)
    assert len(reasons) == len(X)
    for r, row in enumerate(reasons):
        k = int(full.predicted[r])
        values = full.values[r, :, k]
        top = np.argsort(-np.abs(values), kind="stable")[:3]
        assert [x.feature for x in row] == [full.feature_names[j] for j in top]
        np.testing.assert_allclose([x.size for x in row], values[top], atol=1e-9)
        assert all(x.class_name == bundle.classes[k] for x in row)
        assert all(x.direction == (TOWARDS if x.size >= 0 else AWAY) for x in row)
    # a fixed class for every row, by name or position, and one class per row
    mixed = explain.top_reasons(bundle, X.iloc[:5], k=2, class_index="mixed")
    assert {x.class_name for row in mixed for x in row} == {"mixed"}
    per_row = explain.top_reasons(bundle, X.iloc[:3], k=1, class_index=np.array([0, 1, 2]))
    assert [row[0].class_name for row in per_row] == bundle.classes


def test_one_row_reason_is_plain_data(trained):
    bundles, X, frame = trained
    (row,) = explain.top_reasons(bundles["gbm"], X.iloc[:1], frame.iloc[:1], k=4)
    assert len(row) == 4
    json.dumps([r.as_dict() for r in row])  # JSON-ready: Python scalars, None for missing
    with pytest.raises(AttributeError):
        row[0].size = 0.0  # frozen


def test_every_plot_names_its_class_and_scale(trained):
    bundles, X, frame = trained
    explanation = explain.explain(bundles["logistic"], X.iloc[:120], frame.iloc[:120])
    figures = explain_plots.global_figures(explanation, n_dependence=2)
    figures["waterfall"] = explain_plots.plot_waterfall(explanation, 0)
    for c in explanation.classes:
        assert f"beeswarm_{c}" in figures and f"bar_{c}" in figures
    for name, fig in figures.items():
        axes = [ax for ax in fig.axes if ax.get_ylabel() or ax.get_xlabel()]
        labels = " ".join(ax.get_xlabel() + " " + ax.get_ylabel() for ax in axes)
        assert "score of" in labels and "softmax logit" in labels and "log-odds of" not in labels, name
        titles = [ax.get_title() for ax in fig.axes] + [fig._suptitle.get_text() if fig._suptitle else ""]
        assert any(titles), name


def test_log_explanations_writes_plots_for_each_class(trained, mlflow_store):
    import mlflow

    bundles, _, frame = trained
    with mlflow.start_run() as run:
        pass
    logged = explain_job.log_explanations(run.info.run_id, bundles["gbm"], frame, max_rows=150)
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "shap")}
    assert set(logged) == artifacts
    for c in bundles["gbm"].classes:
        assert {f"shap/beeswarm_{c}.png", f"shap/bar_{c}.png"} <= artifacts
    assert {"shap/class_comparison.png", "shap/mean_abs_shap.csv", "shap/reasons.csv"} <= artifacts
    assert any(a.startswith("shap/dependence_") for a in artifacts)
    assert any(a.startswith("shap/waterfall_example_") for a in artifacts)
    local = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="shap"))
    for png in local.glob("*.png"):
        assert png.read_bytes()[:8] == PNG_SIGNATURE and png.stat().st_size > 5_000, png.name
    reasons = pd.read_csv(local / "reasons.csv")
    assert "patient_id" not in reasons.columns
    assert not set(frame["patient_id"]) & set(reasons.to_numpy().ravel().astype(str))


def test_explain_command_writes_waterfalls_for_chosen_patients(trained_store, tmp_path):
    from painml.simulator.simulate import simulate

    cohort = tmp_path / "cohort.csv"
    frame = simulate("pain_clinic", 150, seed=11)
    frame.to_csv(cohort, index=False)
    chosen = [str(frame["patient_id"].iloc[3]), str(frame["patient_id"].iloc[7])]
    written = explain_job.explain_command(
        trained_store.model_uri, cohort, tmp_path / "out", chosen, tracking_uri=trained_store.uri, max_rows=150
    )
    names = {p.name for p in written}
    for pid in chosen:
        assert f"waterfall_{explain_plots.file_stem(pid)}.png" in names
    reasons = pd.read_csv(tmp_path / "out" / "reasons.csv")
    assert list(reasons["patient_id"].astype(str)) == chosen
    assert reasons["reason_1"].str.contains(r"[+-]\d\.\d\d score\)").all()
    with pytest.raises(KeyError, match="no-such-patient"):
        explain_job.explain_command(
            trained_store.model_uri, cohort, tmp_path / "x", ["no-such-patient"], tracking_uri=trained_store.uri
        )


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("family", FAMILIES)
def test_waterfall_numbers_are_consistent_with_the_probabilities(trained, family):
    """The bars add up to the patient's score; both ends are stated as the probabilities they are."""
    bundles, X, frame = trained
    explanation = explain.explain(bundles[family], X.iloc[:40], frame.iloc[:40])
    proba = bundles[family].predict_proba(X.iloc[:40])
    for row in range(0, 40, 7):
        w = explain.waterfall(explanation, row)
        k = explanation.classes.index(w.class_name)
        assert w.base + sum(b.value for b in w.bars) == pytest.approx(w.total, abs=1e-9)
        assert w.probability == pytest.approx(proba[row, k], abs=1e-6)
        assert w.base_probability == pytest.approx(_softmax(explanation.base_values[row])[k])
        fig = explain_plots.plot_waterfall(explanation, row)
        texts = " ".join(t.get_text() for t in fig.axes[0].texts)
        assert f"this patient: score {w.total:.2f}, probability {w.probability:.0%}" in texts
        assert f"average patient: score {w.base:.2f}, probability {w.base_probability:.0%}" in texts
        assert "log-odds" not in fig.axes[0].get_xlabel()
    assert "not the log-odds of the class against all the others" in explain_plots.WATERFALL_NOTE


@pytest.mark.parametrize("family", FAMILIES)
def test_no_hidden_remainder_outweighs_the_reasons_shown(trained, family):
    bundles, X, frame = trained
    explanation = explain.explain(bundles[family], X.iloc[:120], frame.iloc[:120])
    for row in range(120):
        w = explain.waterfall(explanation, row)
        smallest = min(abs(b.value) for b in w.shown)
        assert all(abs(b.value) <= smallest + 1e-12 for b in w.hidden), row
        labels = {b.label.split(" other ")[-1].removesuffix("s") for b in w.hidden}
        assert labels <= {g.removesuffix("s") for g in explain.REMAINDER_GROUPS}, labels
        covered = [f for b in w.bars for f in b.features]
        assert sorted(covered) == sorted(explanation.feature_names)  # every feature once, shown or grouped


def test_absences_are_said_plainly_with_what_recording_would_change(trained):
    bundles, X, frame = trained
    bundle = bundles["gbm"]
    sparse = frame.iloc[:30].copy()
    sparse[["mechanical_aggravation", "brush_allodynia", "pain_distribution", "nerve_conduction"]] = np.nan
    records = pd.read_csv(io.StringIO(sparse.to_csv(index=False)))
    from painml.record.schema import load_records

    validated = load_records(records)
    explanation = explain.explain(bundle, validated.features, validated.frame)
    found = False
    for row in range(len(records)):
        for bar in explain.waterfall(explanation, row).shown:
            if bar.missing:
                found = True
                sentence = bar.sentence(explanation.classes[int(explanation.predicted[row])])
                assert "was not recorded: its absence made" in sentence
    assert found, "no absence among the reasons of 30 sparse records"
    one = validated.frame.iloc[[0]]
    changes = explain.what_if_recorded(bundle, one, top=3)
    assert changes and all(abs(c.change) >= 0.01 for c in changes)
    assert [abs(c.change) for c in changes] == sorted((abs(c.change) for c in changes), reverse=True)
    first = changes[0]
    feature, value = first.feature, first.label.split(": ", 1)[1]
    filled = records.iloc[[0]].copy()
    filled[feature] = {"present": 1, "absent": 0, "yes": 1, "no": 0}.get(value, value.replace(" ", "_"))
    again = load_records(pd.read_csv(io.StringIO(filled.to_csv(index=False))))
    k = list(bundle.classes).index(first.class_name)
    assert bundle.predict_proba(again.features)[0, k] == pytest.approx(first.after, abs=1e-9)
    assert "recording " in first.sentence() and f"{first.after:.0%}" in first.sentence()


def test_beeswarm_categories_are_coloured_by_value_and_classes_share_their_colours(trained):
    from matplotlib.colors import to_hex

    from painml.evaluation.plots import class_colours

    bundles, X, frame = trained
    explanation = explain.explain(bundles["gbm"], X.iloc[:200], frame.iloc[:200])
    j = explanation.feature_names.index("pain_distribution")
    k = int(np.argmax(np.abs(explanation.values[:, j, :]).mean(axis=0)))
    fig = explain_plots.plot_beeswarm(explanation, k, max_display=len(explanation.feature_names))
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"pain distribution: localized", "pain distribution: diffuse"} <= {t.replace("_", " ") for t in legend}
    colours = {
        to_hex(c.get_facecolor()[0]) for c in fig.axes[0].collections if c.get_label().startswith("pain distribution")
    }
    assert len(colours) >= 3
    comparison = explain_plots.plot_class_comparison(explanation)
    expected = class_colours(explanation.classes)
    bars = {c.get_label(): to_hex(c.patches[0].get_facecolor()) for c in comparison.axes[0].containers}
    assert bars == {c: to_hex(expected[c]) for c in explanation.classes}


def test_shap_waterfalls_number_the_examples_they_are_given(trained, tmp_path):
    bundles, X, frame = trained
    from painml.record.schema import Records

    records = Records(frame.iloc[:80].reset_index(drop=True))
    proba = bundles["logistic"].predict_proba(records.features)
    truth = np.array(["nociceptive", "neuropathic", "mixed"], dtype=object)[np.arange(80) % 3]
    examples = explain.pick_examples(proba, bundles["logistic"].classes, truth)
    explain_job.write_plots(bundles["logistic"], records, tmp_path, max_rows=80, examples=examples)
    reasons = pd.read_csv(tmp_path / "reasons.csv")
    assert list(reasons["why_chosen"]) == [e.caption for e in examples]
    assert list(reasons["example"]) == [f"example patient {n}" for n in range(1, len(examples) + 1)]
    assert list(reasons["predicted_class"]) == [bundles["logistic"].classes[e.class_index] for e in examples]
    assert np.allclose(reasons["probability"], [proba[e.position, e.class_index] for e in examples])
    assert {f"waterfall_example_{n}.png" for n in range(1, len(examples) + 1)} <= {p.name for p in tmp_path.iterdir()}
