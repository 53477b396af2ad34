"""Read-only commands never create a store; a missing or unreachable store, model or version is a message."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from painml.cli.main import app
from painml.tracking import registry, store

SRC = Path(__file__).resolve().parents[2] / "src"


def _run(*args: str):
    return CliRunner().invoke(app, list(args))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "command",
    [
        ["serve", "predict", "age=60"],
        ["promote"],
        ["explain", "--input", "cohort.csv", "--out", "plots"],
        ["serve", "http"],
    ],
    ids=["predict", "promote", "explain", "http"],
)
def test_read_only_commands_never_create_a_store(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    db = tmp_path / "nowhere" / "mlflow.db"
    model = ["--model", "models:/painml-pain-type@champion"] if command[0] in ("explain", "serve") else []
    result = _run(*command, *model, "--tracking-uri", f"sqlite:///{db}")
    assert result.exit_code == 2, result.output
    assert f"no MLflow store at {db}" in result.output
    assert "Train and register one first" not in result.output
    assert not db.parent.exists()
    default = _run(*command, *model)  # the default store, ./mlflow.db
    assert default.exit_code == 2 and "no MLflow store at" in default.output
    assert list(tmp_path.iterdir()) == [] or not (tmp_path / "mlflow.db").exists()


def test_an_unreachable_tracking_server_is_named_at_once(monkeypatch):
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT", raising=False)
    server = f"http://127.0.0.1:{_closed_port()}"
    start = time.monotonic()
    result = _run("serve", "predict", "age=60", "--tracking-uri", server)
    assert time.monotonic() - start < store.SERVER_TIMEOUT_S + 5
    assert result.exit_code == 2
    assert f"cannot reach the tracking server {server}" in result.output
    assert "Train and register" not in result.output


def test_metrics_of_a_vanished_store_do_not_recreate_it(tmp_path):
    db = tmp_path / "gone.db"
    with pytest.raises(store.StoreUnavailable, match="no MLflow store"):
        registry.run_metrics(f"sqlite:///{db}", "0" * 32)
    assert not db.exists()


def test_model_of_a_served_store_that_vanished_answers_from_the_bundle(served, tmp_path):
    from fastapi.testclient import TestClient

    from painml.serving.http import create_app
    from painml.serving.predictor import Predictor

    db = tmp_path / "vanished" / "mlflow.db"
    predictor = Predictor(served.predictor.bundle, "m", "1", run_id="0" * 32, store=f"sqlite:///{db}")
    with TestClient(create_app(predictor)) as client:
        start = time.monotonic()
        response = client.get("/model")
    assert response.status_code == 200 and time.monotonic() - start < 3
    assert response.json()["metrics"] == dict(sorted(served.predictor.bundle.metadata.metrics.items()))
    assert not db.parent.exists()


def _register(name: str, versions: int) -> None:
    from mlflow import MlflowClient

    client = MlflowClient()
    client.create_registered_model(name)
    for _ in range(versions):
        client.create_model_version(name, source="file:///nowhere/model")


def test_a_missing_model_lists_what_the_store_holds(mlflow_store):
    _register("other-model", 2)
    registry.set_alias("other-model", "candidate", "2")
    result = _run("serve", "predict", "age=60", "--model", "models:/other-model@champion")
    assert result.exit_code == 2
    assert "other-model has versions 1, 2 and aliases candidate -> v2" in result.output
    assert "Train and register one first" in result.output
    result = _run("serve", "predict", "age=60", "--model", "models:/nope@champion")
    assert result.exit_code == 2 and "registered models: other-model" in result.output


def test_promote_refuses_a_wrong_name_or_version(mlflow_store):
    _register("painml-pain-type", 1)
    nope = _run("promote", "--name", "nope")
    assert nope.exit_code == 2
    assert "no registered model named 'nope'" in nope.output and "painml-pain-type" in nope.output
    ninety_nine = _run("promote", "--version", "99")
    assert ninety_nine.exit_code == 2
    assert "painml-pain-type has no version 99 (it has version 1)" in ninety_nine.output
    no_candidate = _run("promote")
    assert no_candidate.exit_code == 2 and "no candidate version" in no_candidate.output


def test_a_concurrent_promotion_is_reported_as_it_happened(mlflow_store, monkeypatch):
    from painml.jobs.promote import promote

    _register("painml-pain-type", 2)
    registry.set_alias("painml-pain-type", "candidate", "1")
    real = registry.set_alias

    def and_then_another(name, alias, version):
        real(name, alias, version)
        real(name, alias, "2")  # the other promotion, a moment later

    monkeypatch.setattr(registry, "set_alias", and_then_another)
    message = promote("painml-pain-type")
    assert message.startswith("not promoted") and "another promotion has since set version 2" in message


def test_explain_names_a_missing_model_and_an_out_that_is_a_file(mlflow_store, tmp_path):
    cohort = Path(__file__).resolve().parents[2] / "data" / "sample_cohort.csv"
    missing = _run("explain", "--model", "models:/nope@champion", "--input", str(cohort), "--out", "plots")
    assert missing.exit_code == 2 and "no model to explain" in missing.output
    taken = tmp_path / "taken.png"
    taken.write_bytes(b"x")
    result = _run("explain", "--model", "models:/nope@champion", "--input", str(cohort), "--out", str(taken))
    assert result.exit_code == 2 and "is a file" in result.output
    assert taken.read_bytes() == b"x"


def test_patient_file_names_never_collide():
    from painml.jobs.explain import patient_stems

    ids = ["a/b", "a_b", "P-001", "p-001", "plain_id"]
    stems = patient_stems(ids)
    assert len({s.lower() for s in stems}) == len(ids)
    assert stems[-1] == "plain_id"
    assert patient_stems(["a/b"]) == patient_stems(["a/b"])


_CREATE = """
import sys, time
from painml.tracking import store
while time.time() < float(sys.argv[2]):
    time.sleep(0.005)
print(store.ensure_experiment("both", sys.argv[1]))
"""


@pytest.mark.slow  # two processes import MLflow
def test_two_trainings_on_a_new_store_both_land(tmp_path):
    """Both open (and so create and migrate) the same new SQLite store at the same moment."""
    uri = "sqlite:///" + (tmp_path / "new" / "mlflow.db").as_posix()
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    start_at = str(time.time() + 10)  # both import MLflow first, then start together
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CREATE, uri, start_at],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outcomes = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-1500:] for _, err in outcomes]
    assert len({out.strip() for out, _ in outcomes}) == 1
