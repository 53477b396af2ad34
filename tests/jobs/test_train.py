"""Training end to end: configs, MLflow, registry, promotion and the trained model's behaviour."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from painml.tracking import registry, store
from painml.record.files import file_sha256
from painml.config import SimulatedData, TrainConfig, load_config
from painml.serving.predictor import Predictor
from painml.record.schema import SchemaError, load_records
from painml.jobs.train import build_bundle, fit_family, load_dataset, promote, run_training, split_rows

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


def small(cfg: TrainConfig, n: int = 1_500) -> TrainConfig:
    """The same config on a small simulated cohort, or on the shipped sample file."""
    if isinstance(cfg.data, SimulatedData):
        return cfg.model_copy(update={"data": cfg.data.model_copy(update={"n": n})})
    return cfg.with_overrides(data_path=REPO / "data" / "sample_cohort.csv")


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_shipped_config_trains_end_to_end(path, mlflow_store):
    cfg = small(load_config(path))
    result = run_training(cfg, explain=False)
    run = mlflow.get_run(result.run_id)
    families = [m.family for m in cfg.models]
    for family in families:
        assert f"{family}.test_log_loss" in run.data.metrics
    for key in ("test_macro_f1", "test_balanced_accuracy", "test_log_loss", "test_brier", "test_ece",
                "test_auroc_neuropathic"):
        assert np.isfinite(run.data.metrics[key]), key
    if isinstance(cfg.data, SimulatedData):
        assert {"oracle_macro_f1", "oracle_log_loss"} <= set(run.data.metrics)
    assert run.data.tags["painml.winner"] in families
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(result.run_id)}
    assert {"config.yaml", "metrics.json", "baselines.csv", "comparison.csv", "lineage.json"} <= artifacts
    assert registry.get_alias_version(cfg.tracking.registered_model, "candidate") == result.registered_version
    assert registry.get_alias_version(cfg.tracking.registered_model, "champion") == result.registered_version
    assert not (Path.cwd() / "mlruns").exists()


def test_hyperparameter_search_within_budget(mlflow_store):
    cfg = small(load_config(REPO / "configs" / "smoke.yaml"))
    cfg = cfg.model_copy(update={"search": cfg.search.model_copy(update={"enabled": True, "n_iter": 3})})
    result = run_training(cfg, explain=False)
    params = mlflow.get_run(result.run_id).data.params
    assert {"gbm.chosen.learning_rate", "logistic.chosen.C"} <= set(params)


def test_lineage_of_a_file_is_its_sha256(mlflow_store):
    cfg = small(load_config(REPO / "configs" / "from_file.yaml"))
    result = run_training(cfg, explain=False)
    params = mlflow.get_run(result.run_id).data.params
    assert params["data.lineage.sha256"] == file_sha256(REPO / "data" / "sample_cohort.csv")


def test_same_config_same_metrics(mlflow_store):
    cfg = small(load_config(REPO / "configs" / "smoke.yaml"))
    first = run_training(cfg, explain=False)
    second = run_training(cfg, explain=False)
    for family in first.families:
        a = {k: v for k, v in first.families[family].metrics.items()}
        b = {k: v for k, v in second.families[family].metrics.items()}
        assert a == b


def test_registered_model_loads_with_mlflow_and_agrees(trained_store):
    store.use_store(trained_store.uri)
    model = mlflow.pyfunc.load_model(trained_store.model_uri)
    records = load_records(REPO / "data" / "sample_cohort.csv")
    frame = records.frame.iloc[:50]
    inputs = frame.astype({c: object for c in frame.columns if frame[c].dtype == object})
    via_mlflow = model.predict(inputs)
    classes = trained_store.config.labels
    assert [f"p_{c}" for c in classes] <= list(via_mlflow.columns) and "predicted_class" in via_mlflow
    winner = trained_store.result.families[trained_store.result.winner].bundle
    direct = Predictor(winner).predict(records).iloc[:50].reset_index(drop=True)
    pd.testing.assert_frame_equal(via_mlflow[[f"p_{c}" for c in classes]], direct[[f"p_{c}" for c in classes]])
    assert model.metadata.signature is not None


def test_promotion_needs_a_win(mlflow_store):
    base = small(load_config(REPO / "configs" / "smoke.yaml"))
    first = run_training(base, explain=False)
    name = base.tracking.registered_model
    assert registry.get_alias_version(name, "champion") == first.registered_version
    weak = base.model_copy(update={"models": (base.models[1].model_copy(update={"C": 1e-4}),),
                                   "data": base.data.model_copy(update={"n": 400})})
    second = run_training(weak, explain=False)
    message = promote(name)
    assert message.startswith("not promoted") and "champion stays version 1" in message
    assert registry.get_alias_version(name, "champion") == first.registered_version
    assert registry.get_alias_version(name, "candidate") == second.registered_version


def test_training_file_without_labels_is_refused(mlflow_store, tmp_path):
    frame = pd.read_csv(REPO / "data" / "sample_cohort.csv").drop(columns=["pain_type"])
    frame.to_csv(tmp_path / "unlabelled.csv", index=False)
    cfg = load_config(REPO / "configs" / "smoke.yaml").with_overrides(data_path=tmp_path / "unlabelled.csv")
    with pytest.raises(SchemaError, match="pain_type"):
        run_training(cfg, explain=False)


@pytest.fixture(scope="module", params=["gbm", "logistic"])
def behaving_model(request) -> Predictor:
    """A model per family fitted on 8,000 simulated patients, without MLflow."""
    cfg = load_config(REPO / "configs" / "default.yaml")
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"n": 8_000}),
                                 "models": tuple(m for m in cfg.models if m.family == request.param)})
    data = load_dataset(cfg)
    rows = split_rows(data.y, cfg)
    estimator, _ = fit_family(cfg.models[0], cfg, data.X, data.y, rows)
    return Predictor(build_bundle(estimator, request.param, cfg, data, rows))


PHN = {
    "patient_id": "textbook-phn", "site": "clinic_north", "age": 74, "sex": "female", "pain_duration_months": 8,
    "pain_intensity": 7, "pain_region": "trunk", "pain_distribution": "nerve_territory", "radiating_pain": False,
    "pain_course": "persistent_with_attacks", "mechanical_aggravation": False, "night_pain": True,
    "burning": True, "painful_cold": False, "electric_shocks": True, "tingling": True, "pins_and_needles": True,
    "numbness": True, "itching": True, "touch_evoked_pain": True, "aching": False, "stiffness": False,
    "hypoesthesia_touch": True, "hypoesthesia_pinprick": True, "brush_allodynia": True, "local_tenderness": False,
    "painful_range_of_motion": False, "prior_herpes_zoster": True,
}
KNEE_OA = {
    "patient_id": "textbook-knee", "site": "clinic_north", "age": 69, "sex": "female", "pain_duration_months": 60,
    "pain_intensity": 5, "pain_region": "lower_limb", "pain_distribution": "localized", "radiating_pain": False,
    "pain_course": "persistent_slight_fluctuation", "mechanical_aggravation": True, "night_pain": False,
    "burning": False, "painful_cold": False, "electric_shocks": False, "tingling": False, "pins_and_needles": False,
    "numbness": False, "itching": False, "shooting": False, "touch_evoked_pain": False, "aching": True,
    "stiffness": True, "hypoesthesia_touch": False, "hypoesthesia_pinprick": False, "brush_allodynia": False,
    "local_tenderness": True, "joint_swelling": True, "painful_range_of_motion": True, "osteoarthritis": True,
    "joint_imaging": "abnormal",
}


@pytest.mark.parametrize(("record", "expected"), [(PHN, "neuropathic"), (KNEE_OA, "nociceptive")],
                         ids=["postherpetic neuralgia with allodynia", "knee osteoarthritis, mechanical"])
def test_textbook_cases(behaving_model, record, expected):
    assert behaving_model.predict([record])["predicted_class"].item() == expected


def test_allodynia_and_hypoesthesia_raise_neuropathic(behaving_model):
    base = {**KNEE_OA, "pain_distribution": "nerve_territory", "pain_region": "back", "radiating_pain": True,
            "brush_allodynia": False, "hypoesthesia_touch": False}
    signs = {**base, "brush_allodynia": True, "hypoesthesia_touch": True}
    out = behaving_model.predict([base, signs])
    assert out["p_neuropathic"].iloc[1] > out["p_neuropathic"].iloc[0]


@pytest.mark.parametrize("change", [{"patient_id": "someone-else"}, {"site": "a-site-never-seen"}])
def test_identifiers_change_nothing(behaving_model, change):
    out = behaving_model.predict([PHN, {**PHN, **change}])
    probabilities = [c for c in out.columns if c.startswith("p_")]
    np.testing.assert_array_equal(out[probabilities].iloc[0].to_numpy(), out[probabilities].iloc[1].to_numpy())
