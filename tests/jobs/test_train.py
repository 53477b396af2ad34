"""Training end to end: configs, MLflow, registry, promotion and the trained model's behaviour."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from painml.config import SimulatedData, TrainConfig, load_config
from painml.jobs.promote import promote
from painml.jobs.train import run_training
from painml.record.files import file_sha256
from painml.record.schema import SchemaError, load_records
from painml.serving.predictor import Predictor
from painml.tracking import registry, store

REPO = Path(__file__).resolve().parents[2]
# small_cohort.yaml is trained end to end as a clinic runs it, under 5 x 10 cross-validation, in test_small_cohort.py
CONFIGS = sorted(p for p in (REPO / "configs").glob("*.yaml") if p.stem != "small_cohort")


def small(cfg: TrainConfig, n: int = 1_500) -> TrainConfig:
    """The same config on a small simulated cohort, or on the shipped sample file; resampling with one
    repeat instead of ten and at most 100 boosting rounds, to keep the suite fast."""
    validation = cfg.validation.model_copy(update={"repeats": 1})
    models = [
        m.model_copy(update={"n_estimators": min(m.n_estimators, 100)}) if m.family == "gbm" else m for m in cfg.models
    ]
    update = {"validation": validation, "models": tuple(models)}
    if isinstance(cfg.data, SimulatedData):
        return cfg.model_copy(update={"data": cfg.data.model_copy(update={"n": n}), **update})
    return cfg.with_overrides(data_path=REPO / "data" / "sample_cohort.csv").model_copy(update=update)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_shipped_config_trains_end_to_end(path, mlflow_store):
    cfg = small(load_config(path))
    result = run_training(cfg, explain=False)
    run = mlflow.get_run(result.run_id)
    families = [m.family for m in cfg.models]
    for family in families:
        assert f"{family}.test_log_loss" in run.data.metrics
    for key in (
        "test_macro_f1",
        "test_balanced_accuracy",
        "test_log_loss",
        "test_brier",
        "test_ece",
        "test_auroc_neuropathic",
    ):
        assert np.isfinite(run.data.metrics[key]), key
    if isinstance(cfg.data, SimulatedData):
        assert {"oracle_macro_f1", "oracle_log_loss"} <= set(run.data.metrics)
    assert run.data.tags["painml.winner"] in families
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(result.run_id)}
    assert {"config.yaml", "metrics.json", "baselines.csv", "comparison.csv", "lineage.json"} <= artifacts
    assert registry.get_alias_version(cfg.tracking.registered_model, "candidate") == result.registered_version
    assert registry.get_alias_version(cfg.tracking.registered_model, "champion") == result.registered_version
    assert not (Path.cwd() / "mlruns").exists()


def test_hyperparameter_search_is_logged(mlflow_store):
    """Each family's chosen settings on the run, and each trial a child run with its cross-validated loss."""
    cfg = small(load_config(REPO / "configs" / "smoke.yaml"))
    cfg = cfg.model_copy(update={"search": cfg.search.model_copy(update={"enabled": True, "n_trials": 3})})
    result = run_training(cfg, explain=False)
    run = mlflow.get_run(result.run_id)
    assert {"gbm.chosen.learning_rate", "logistic.chosen.C"} <= set(run.data.params)
    children = mlflow.search_runs(
        experiment_ids=[run.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'",
        output_format="list",
    )
    assert sorted(c.data.tags["painml.family"] for c in children) == ["gbm"] * 3 + ["logistic"] * 3
    complete = [c for c in children if c.data.tags["painml.trial_state"] == "complete"]
    assert complete and all(np.isfinite(c.data.metrics["cv_log_loss"]) for c in complete)
    best = min(c.data.metrics["cv_log_loss"] for c in complete if c.data.tags["painml.family"] == "logistic")
    assert run.data.metrics["logistic.search_best_cv_log_loss"] == pytest.approx(best)
    chosen = result.families["logistic"].bundle.metadata.hyperparameters["C"]
    (winner,) = [c for c in complete if c.data.metrics["cv_log_loss"] == best]
    assert float(winner.data.params["C"]) == pytest.approx(chosen)


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
        a = dict(first.families[family].metrics)
        b = dict(second.families[family].metrics)
        assert a == b


def test_registered_model_loads_with_mlflow_and_agrees(trained_store):
    store.use_store(trained_store.uri)
    model = mlflow.pyfunc.load_model(trained_store.model_uri)
    via_mlflow = model.predict(pd.read_csv(REPO / "data" / "sample_cohort.csv", nrows=50))
    classes = trained_store.config.classes
    assert [f"p_{c}" for c in classes] <= list(via_mlflow.columns) and "predicted_class" in via_mlflow
    champion = Predictor.from_uri(trained_store.model_uri, tracking_uri=trained_store.uri)
    records = load_records(REPO / "data" / "sample_cohort.csv")
    direct = champion.predict(records).iloc[:50].reset_index(drop=True)
    pd.testing.assert_frame_equal(via_mlflow[[f"p_{c}" for c in classes]], direct[[f"p_{c}" for c in classes]])
    assert model.metadata.signature is not None


def test_promotion_needs_a_win(mlflow_store):
    base = small(load_config(REPO / "configs" / "smoke.yaml"))
    first = run_training(base, explain=False)
    name = base.tracking.registered_model
    assert registry.get_alias_version(name, "champion") == first.registered_version
    weak = base.model_copy(
        update={
            "models": (base.models[1].model_copy(update={"C": 1e-4}),),
            "data": base.data.model_copy(update={"n": 400}),
        }
    )
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
