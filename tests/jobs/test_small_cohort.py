"""A clinic's own export, as a data scientist would train on it: a few hundred patients, one questionnaire,
two labels and a rare third, through the same command line and config a clinic would use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest

from painml.config import load_config
from painml.evaluation.resampling import resampled_family
from painml.jobs.train import run_training
from painml.model.dataset import load_dataset
from painml.record.columns import BLOCKS
from painml.simulator.simulate import simulate

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
QUESTIONNAIRE_ONLY = ("identification", "demographics", "pain_history", "paindetect")


@pytest.fixture(scope="module")
def clinic_export(tmp_path_factory) -> Path:
    """About 500 outpatients: painDETECT and pain history only, nociceptive and neuropathic, six rows
    labelled mixed (a rare third label) and four labelled unknown, as an export would have them."""
    cohort = simulate("orthopaedic", 560, seed=5)
    columns = [c for block in QUESTIONNAIRE_ONLY for c in BLOCKS[block]] + ["pain_type"]
    frame = cohort.loc[:, columns]
    mixed = frame.index[frame["pain_type"] == "mixed"]
    frame = frame.drop(mixed[6:]).reset_index(drop=True)
    frame.loc[frame.sample(4, random_state=1).index, "pain_type"] = "unknown"
    path = tmp_path_factory.mktemp("clinic") / "clinic_export.csv"
    frame.to_csv(path, index=False)
    return path


def _train(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "train.py"), *args, "--tracking-uri", f"sqlite:///{cwd / 'mlflow.db'}"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_clinic_export_trains_end_to_end_under_resampling(clinic_export, tmp_path):
    done = _train(["--config", str(REPO / "configs" / "small_cohort.yaml"), "--data", str(clinic_export)], tmp_path)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "Traceback" not in out
    assert "label 'mixed' -> neuropathic in 6 rows" in out
    assert "label 'unknown' dropped: 4 rows" in out
    assert "classes: nociceptive" in out and "sample size, screening" in out
    assert "out-of-fold (5-fold cross-validation x 10)" in out
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = mlflow.search_runs(experiment_names=["small-cohort"], output_format="list")
    metrics = run.data.metrics
    for key in ("log_loss", "brier", "macro_f1"):
        assert metrics[f"test_{key}_ci_low"] <= metrics[f"test_{key}"] <= metrics[f"test_{key}_ci_high"], key
        assert f"apparent_{key}" in metrics
    for key in ("test_calibration_slope_neuropathic", "stability_mape", "test_conformal_coverage_nociceptive"):
        assert np.isfinite(metrics[key]), key
    assert run.data.tags["painml.validation"] == "cv"
    assert run.data.params["data.lineage.labels_dropped"] == "{'unknown': 4}"
    assert list(tmp_path.glob("outputs/run-*/report.html"))


def test_a_class_too_small_for_the_validation_is_one_clear_error(clinic_export, tmp_path):
    config = tmp_path / "three.yaml"
    text = (REPO / "configs" / "small_cohort.yaml").read_text()
    text = text.replace("classes: [nociceptive, neuropathic]", "classes: [nociceptive, neuropathic, mixed]")
    config.write_text(text.replace("  map: {mixed: neuropathic}   # a neuropathic component, alone or mixed\n", ""))
    done = _train(["--config", str(config), "--data", str(clinic_export)], tmp_path)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "Traceback" not in out
    assert "class 'mixed' has 6 rows" in out and "needs at least 10" in out and "Map it to another class" in out


@pytest.mark.parametrize("family", ["screening", "logistic", "gbm"])
def test_two_classes_train_in_every_family(family, mlflow_store):
    small = load_config(REPO / "configs" / "small_cohort.yaml")
    cfg = load_config(REPO / "configs" / "smoke.yaml")
    cfg = type(cfg).model_validate(
        {
            **cfg.model_dump(),
            "labels": {"classes": ["nociceptive", "neuropathic"], "map": {"mixed": "neuropathic"}},
            "models": [m.model_dump() for m in small.models if m.family == family],
        }
    )
    result = run_training(cfg, explain=False, log_models=False)
    r = result.families[family]
    assert r.proba.shape[1] == 2 and np.allclose(r.proba.sum(axis=1), 1)
    assert {"test_auroc_neuropathic", "test_calibration_slope_neuropathic"} <= set(r.metrics)


def test_a_dn4_interview_only_selection_trains(mlflow_store):
    cfg = load_config(REPO / "configs" / "smoke.yaml")
    cfg = type(cfg).model_validate({**cfg.model_dump(), "features": {"groups": ["dn4_interview"]}})
    result = run_training(cfg, explain=False, log_models=False)
    assert set(result.families) == {"gbm", "logistic"}
    assert all(np.isfinite(r.metrics["test_log_loss"]) for r in result.families.values())


def test_out_of_fold_conformal_sets_cover_at_least_nominal_less_two_points():
    cfg = load_config(REPO / "configs" / "smoke.yaml")
    cfg = type(cfg).model_validate(
        {
            **cfg.model_dump(),
            "data": {"source": "simulate", "preset": "pain_clinic", "n": 1200, "seed": 11},
            "validation": {"method": "cv", "repeats": 2},
            "models": [{"family": "logistic"}],
        }
    )
    data = load_dataset(cfg)
    _, metrics, proba, _, oof = resampled_family(cfg.models[0], cfg, data)
    assert metrics["test_conformal_coverage"] >= cfg.conformal_confidence - 0.02
    assert oof.qhat_by_class is not None  # every class has 30 rows: class-conditional thresholds
    assert proba.shape == (len(data.y), 3)
    for c in cfg.classes:
        assert metrics[f"test_conformal_coverage_{c}"] >= cfg.conformal_confidence - 0.05, c


def test_a_version_fitted_on_every_row_is_not_promoted_on_its_own_file(clinic_export, mlflow_store):
    from painml.jobs.promote import promote

    cfg = load_config(REPO / "configs" / "small_cohort.yaml").with_overrides(data_path=clinic_export)
    cfg = type(cfg).model_validate(
        {**cfg.model_dump(), "validation": {"method": "cv", "repeats": 1}, "models": [{"family": "screening"}]}
    )
    first = run_training(cfg, explain=False)
    second = run_training(cfg.model_copy(update={"seed": 7}), explain=False)
    assert (first.registered_version, second.registered_version) == ("1", "2")
    message = promote(cfg.tracking.registered_model)
    assert message.startswith("not promoted: a version validated by resampling was fitted on every row")
    held_out = promote(cfg.tracking.registered_model, data_path=clinic_export)
    assert "candidate v2" in held_out and "champion v1" in held_out
