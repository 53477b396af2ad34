"""``painml adapt`` as a clinic runs it: a registered source model, the clinic's labelled export (its own
label names, no DN4 interview recorded), a small YAML config; one run, a new version aliased ``adapted``."""

from __future__ import annotations

import shutil

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from painml.cli.main import app
from painml.cli.serve import serve_app
from painml.config import GbmConfig, SimulatedData, TrackingConfig, TrainConfig
from painml.jobs.train import run_training
from painml.record.columns import BLOCKS
from painml.record.files import file_sha256, read_raw
from painml.record.schema import load_records
from painml.simulator.simulate import simulate
from painml.tracking import registry, store

pytestmark = pytest.mark.slow
runner = CliRunner()
NAME = "painml-adapt-test"
CONFIG = """\
labels:
  classes: [somatic, neuropathic, mixed]
  map: {nociceptive: somatic}
folds: 3
repeats: 1
source_rows_n: 600
pooled_weights: [1.0]
"""
RUNGS = ("as-is", "a", "b", "b-full", "c", "d", "e:1")


@pytest.fixture(scope="module")
def adapted(mlflow_template_db, tmp_path_factory):
    """A small pain-clinic gbm registered as champion in a store of this module's own, then adapted to 160
    orthopaedic patients whose export names nociceptive pain 'somatic' and has no DN4-interview columns."""
    tmp_path = tmp_path_factory.mktemp("adapt-store")
    shutil.copy(mlflow_template_db, tmp_path / store.DEFAULT_DB)
    uri = "sqlite:///" + (tmp_path / store.DEFAULT_DB).as_posix()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("MLFLOW_REGISTRY_URI", uri)
        store.use_store(uri)
        yield _adapt(tmp_path)
        while mlflow.active_run() is not None:
            mlflow.end_run()


def _adapt(tmp_path):
    source_cfg = TrainConfig(
        name="source",
        data=SimulatedData(source="simulate", preset="pain_clinic", n=1500, seed=3),
        models=[GbmConfig(family="gbm", n_estimators=30, num_leaves=7, early_stopping_rounds=None)],
        validation="holdout",
        tracking=TrackingConfig(experiment="adapt-test", registered_model=NAME),
    )
    trained = run_training(source_cfg, explain=False)
    site = simulate("orthopaedic", 160, seed=5)
    site = site.drop(columns=list(BLOCKS["dn4_interview"]))
    site["pain_type"] = site["pain_type"].replace({"nociceptive": "somatic"})
    path = tmp_path / "clinic.csv"
    site.to_csv(path, index=False)
    config = tmp_path / "adapt.yaml"
    config.write_text(CONFIG)
    result = runner.invoke(
        app, ["adapt", "--model", f"models:/{NAME}@champion", "--data", str(path), "--config", str(config)]
    )
    return trained, result, path, tmp_path


def test_adapt_registers_the_chosen_step_with_lineage_and_relatedness(adapted):
    trained, result, path, _ = adapted
    assert result.exit_code == 0, result.output
    out = result.output
    assert "membership model" in out and "class mix estimated without labels" in out
    assert "dn4_interview: recorded for 0%" in out and "the site records no dn4_interview" in out
    assert "chosen:" in out
    version = registry.get_alias_version(NAME, "adapted")
    assert version is not None and version != trained.registered_version
    assert registry.get_alias_version(NAME, "candidate") == version
    run = MlflowClient().get_run(registry.version_run_id(NAME, version))
    chosen = run.data.tags["painml.adapted_step"]
    assert chosen in RUNGS and f"chosen: {chosen}" in out.replace("\n", " ")
    params = run.data.params
    assert params["site.sha256"] == file_sha256(path)
    assert params["source.version"] == trained.registered_version and params["source.name"] == NAME
    metrics = run.data.metrics
    assert 0.5 <= metrics["relatedness.membership_auroc"] <= 1.0
    assert {f"relatedness.em_class_mix_{c}" for c in ("somatic", "neuropathic", "mixed")} <= set(metrics)
    assert metrics["relatedness.site_records_dn4_interview"] == 0.0
    for rung in RUNGS:
        assert f"ladder.{rung}.log_loss" in metrics, rung
    assert "source.test_log_loss" in metrics and "test_log_loss" in metrics
    model = MlflowClient().get_model_version(NAME, version)
    assert model.tags["adapted_step"] == chosen


def test_the_adapted_model_serves_the_same_probabilities_as_its_pyfunc(adapted):
    _, result, path, tmp_path = adapted
    assert result.exit_code == 0, result.output
    uri = f"models:/{NAME}@adapted"
    out = tmp_path / "scored.csv"
    done = runner.invoke(serve_app, ["batch", "--input", str(path), "--output", str(out), "--model", uri])
    assert done.exit_code == 0, done.output
    served = pd.read_csv(out)
    frame = load_records(read_raw(path).drop(columns=["pain_type"])).frame
    inputs = frame.astype({c: object for c in frame.columns if frame[c].dtype == object})
    via_mlflow = mlflow.pyfunc.load_model(uri).predict(inputs)
    columns = ["p_somatic", "p_neuropathic", "p_mixed"]
    np.testing.assert_allclose(
        served[columns].to_numpy(), via_mlflow[columns].to_numpy(dtype=float), rtol=0, atol=1e-12
    )
    assert served["prediction_set"].notna().all()


def test_a_site_class_the_source_never_predicts_is_named(adapted):
    tmp_path = adapted[3]
    site = simulate("orthopaedic", 60, seed=8)
    site.loc[site.index[:10], "pain_type"] = "nociplastic"
    path = tmp_path / "other.csv"
    site.to_csv(path, index=False)
    config = tmp_path / "four.yaml"
    config.write_text("labels: [nociceptive, neuropathic, mixed, nociplastic]\n")
    result = runner.invoke(app, ["adapt", "--model", f"models:/{NAME}/1", "--data", str(path), "--config", str(config)])
    assert result.exit_code == 2
    assert "nociplastic" in result.output and "not predicted by the source" in result.output
    assert "Traceback" not in result.output


def test_promote_moves_champion_to_the_adapted_version_on_held_out_site_patients(adapted):
    _, result, _, tmp_path = adapted
    assert result.exit_code == 0, result.output
    held_out = simulate("orthopaedic", 400, seed=11)
    held_out["pain_type"] = held_out["pain_type"].replace({"nociceptive": "somatic"})
    path = tmp_path / "held_out.csv"
    held_out.to_csv(path, index=False)
    version = registry.get_alias_version(NAME, "adapted")
    done = runner.invoke(app, ["promote", "--name", NAME, "--version", version, "--data", str(path)])
    assert done.exit_code == 0, done.output
    assert f"promoted: version {version} is now champion" in done.output
    assert registry.get_alias_version(NAME, "champion") == version
