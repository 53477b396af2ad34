"""Runs, artifacts and registry aliases must land where the project expects, on a store made per test."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from painml.record.files import file_sha256
from painml.tracking import registry, runs, store

# Requirement inference starts a subprocess that re-imports the model (about 12 s here).
FAST_REQUIREMENTS = ["mlflow", "scikit-learn", "skops"]


def test_resolve_tracking_uri_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    default = store.resolve_tracking_uri()
    assert default == "sqlite:///" + (tmp_path.resolve() / "mlflow.db").as_posix()
    assert Path(default.removeprefix("sqlite:///")).is_absolute()

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://env:5000")
    assert store.resolve_tracking_uri() == "http://env:5000"
    assert store.resolve_tracking_uri("sqlite:////x/explicit.db") == "sqlite:////x/explicit.db"


@pytest.mark.parametrize(
    ("uri", "local"),
    [
        ("sqlite:////tmp/mlflow.db", True),
        ("file:///tmp/mlruns", True),
        ("/tmp/mlruns", True),
        ("mlruns", True),
        ("http://localhost:5000", False),
        ("https://mlflow.example.org", False),
        ("databricks", False),
        ("postgresql://user@host/db", False),
    ],
)
def test_is_local_store(uri: str, local: bool) -> None:
    assert store.is_local_store(uri) is local


def test_store_fixture_is_private(mlflow_store: str, tmp_path: Path) -> None:
    assert mlflow.get_tracking_uri() == mlflow_store == "sqlite:///" + (tmp_path / "mlflow.db").as_posix()
    assert mlflow.get_registry_uri() == mlflow_store
    assert Path.cwd() == tmp_path
    client = MlflowClient()
    assert [e.name for e in client.search_experiments()] == ["Default"]
    assert client.search_registered_models() == []
    assert client.get_experiment("0").artifact_location == (tmp_path / "mlartifacts" / "0").as_uri()


def test_ensure_experiment_absolute_artifacts_and_idempotent(mlflow_store: str, tmp_path: Path) -> None:
    experiment_id = store.ensure_experiment("painml-test", mlflow_store)
    location = mlflow.get_experiment(experiment_id).artifact_location
    assert location == (tmp_path.resolve() / "mlartifacts" / "painml-test").as_uri()
    assert location.startswith("file:///")
    assert store.ensure_experiment("painml-test", mlflow_store) == experiment_id

    MlflowClient().delete_experiment(experiment_id)
    assert store.ensure_experiment("painml-test", mlflow_store) == experiment_id
    assert mlflow.get_experiment(experiment_id).lifecycle_stage == "active"


def test_run_register_and_aliases(mlflow_store: str, tmp_path: Path) -> None:
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(X, y)
    experiment_id = store.ensure_experiment("iris", mlflow_store)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_param("C", 1.0)
        mlflow.log_metric("accuracy", 0.97)
        info = mlflow.sklearn.log_model(model, name="model", pip_requirements=FAST_REQUIREMENTS)
    assert info.flavors["sklearn"]["serialization_format"] == "skops"
    assert not (tmp_path / "mlruns").exists()
    assert any((tmp_path / "mlartifacts" / "iris").rglob("MLmodel"))

    assert registry.get_alias_version("iris-clf", "candidate") is None
    assert registry.register_version(info.model_uri, "iris-clf", tags={"data_sha256": "abc", "rows": 150}) == "1"
    assert registry.get_alias_version("iris-clf", "candidate") == "1"
    assert registry.get_alias_version("iris-clf", "champion") is None
    assert MlflowClient().get_model_version("iris-clf", "1").tags["rows"] == "150"

    registry.set_alias("iris-clf", "champion", "1")
    assert registry.get_alias_version("iris-clf", "champion") == "1"
    assert registry.version_run_id("iris-clf", "1") == run.info.run_id
    assert registry.run_metrics(mlflow_store, run.info.run_id) == {"accuracy": 0.97}

    loaded = mlflow.pyfunc.load_model("models:/iris-clf@candidate")
    np.testing.assert_array_equal(loaded.predict(X[:5]), model.predict(X[:5]))

    assert registry.register_version(info.model_uri, "iris-clf") == "2"
    assert registry.get_alias_version("iris-clf", "candidate") == "2"
    assert registry.get_alias_version("iris-clf", "champion") == "1"


def test_file_sha256_matches_hashlib(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    payload = np.random.default_rng(0).bytes(3 * (1 << 20) + 123)
    path.write_bytes(payload)
    assert file_sha256(path) == hashlib.sha256(payload).hexdigest()
    (tmp_path / "empty").write_bytes(b"")
    assert file_sha256(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()


def test_git_state_outside_a_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert runs.git_state(tmp_path) == {"commit": None, "dirty": None}
    assert runs.git_commit(tmp_path) is None


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_git_state_in_a_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
        monkeypatch.setenv(key, "painml tests")
    for key in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
        monkeypatch.setenv(key, "tests@painml.invalid")

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "a.txt").write_text("one\n")
    git("add", "a.txt")
    git("commit", "-q", "-m", "first")
    state = runs.git_state(tmp_path)
    assert isinstance(state["commit"], str) and len(state["commit"]) == 40
    assert state["dirty"] is False
    assert runs.git_commit(tmp_path) == state["commit"]

    (tmp_path / "untracked.db").write_text("")
    assert runs.git_state(tmp_path)["dirty"] is False
    (tmp_path / "a.txt").write_text("two\n")
    assert runs.git_state(tmp_path) == {"commit": state["commit"], "dirty": True}


def test_runs_open_on_training_and_show_the_whole_duration(mlflow_store: str) -> None:
    """The UI opens the experiment on its runs (not GenAI traces) and a run lasts from start of work to finish."""
    import time

    experiment_id = store.ensure_experiment("painml-ui", mlflow_store)
    began = time.time() - 60
    with runs.start_run(experiment_id, "ui", started=began) as run_id:
        pass
    runs.finish(run_id)
    client = MlflowClient()
    assert client.get_experiment(experiment_id).tags[runs.EXPERIMENT_KIND_TAG] == "custom_model_development"
    info = client.get_run(run_id).info
    assert info.start_time == int(began * 1000)
    assert info.end_time - info.start_time >= 60_000 and info.status == "FINISHED"


def test_run_ids_resolve_from_unique_prefixes(mlflow_store: str) -> None:
    """The 8 characters painml prints are enough; an unknown or ambiguous prefix is refused in words."""
    experiment_id = store.ensure_experiment("painml-prefix", mlflow_store)
    ids = []
    for _ in range(17):  # 17 ids over 16 hexadecimal digits: two share their first character
        with runs.start_run(experiment_id, "p") as run_id:
            ids.append(run_id)
    for run_id in ids[:3]:
        assert runs.resolve_run_id(run_id[:8]) == run_id
        assert runs.resolve_run_id(run_id.upper()) == run_id
    shared = next(d for d in "0123456789abcdef" if sum(i.startswith(d) for i in ids) >= 2)
    with pytest.raises(runs.RunNotFound, match="runs start with .*give more characters"):
        runs.resolve_run_id(shared)
    unknown = next(p for p in ("00000000", "ffffffff", "12345678") if not any(i.startswith(p) for i in ids))
    with pytest.raises(runs.RunNotFound, match="no run id starts with"):
        runs.resolve_run_id(unknown)
    with pytest.raises(runs.RunNotFound, match="not a run id"):
        runs.resolve_run_id("not-an-id")
