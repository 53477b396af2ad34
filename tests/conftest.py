"""Shared fixtures. Add new ones below, each with a docstring saying what it isolates."""

from __future__ import annotations

import os

# Before anything imports pyplot: tests never open windows.
os.environ.setdefault("MPLBACKEND", "Agg")
# One OpenMP thread: on a busy two-core machine two threads can make LightGBM 100x slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
# Tests must not report usage to MLflow's telemetry endpoint.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from painml.tracking import registry, store

_MLFLOW_EXPERIMENT_ENV = ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME")


@pytest.fixture(scope="session")
def mlflow_template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated, empty MLflow SQLite database per session.

    Migrating a new store takes several seconds; copying the result takes
    milliseconds. It is built from inside its own directory so that nothing
    MLflow resolves against the working directory points into the repository.
    """
    from mlflow import MlflowClient

    directory = tmp_path_factory.mktemp("mlflow-template")
    path = directory / "template.db"
    uri = "sqlite:///" + path.as_posix()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(directory)
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.search_experiments()
        client.search_registered_models()
    return path


@pytest.fixture
def mlflow_store(mlflow_template_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A private MLflow store in ``tmp_path`` (the test's working directory); yields its URI.

    Tracking and registry URIs point at ``tmp_path/mlflow.db`` for the test and
    MLflow's global state (active run, active experiment, URIs) is put back
    afterwards, so no test sees another's runs or writes into the repository.
    """
    import mlflow
    import mlflow.tracking._model_registry.utils as registry_utils
    import mlflow.tracking._tracking_service.utils as tracking_utils
    import mlflow.tracking.fluent as fluent

    db = tmp_path / store.DEFAULT_DB
    shutil.copy(mlflow_template_db, db)
    # The Default experiment (id 0) keeps the artifact location it got in the template.
    with sqlite3.connect(db) as connection:
        connection.execute(
            "UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
            ((tmp_path / store.DEFAULT_ARTIFACTS / "0").as_uri(),),
        )
    connection.close()

    uri = "sqlite:///" + db.as_posix()
    previous_tracking_uri = tracking_utils._tracking_uri
    previous_registry_uri = registry_utils._registry_uri
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    for name in _MLFLOW_EXPERIMENT_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(fluent, "_active_experiment_id", None)
    store.use_store(uri)
    try:
        yield uri
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow.set_tracking_uri(previous_tracking_uri)
        mlflow.set_registry_uri(previous_registry_uri)
        # set_experiment exports these; monkeypatch then restores any prior values.
        for name in _MLFLOW_EXPERIMENT_ENV:
            os.environ.pop(name, None)


REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class TrainedStore:
    """A store holding one training run of ``configs/smoke.yaml`` (both families, registered winner) whose
    ``champion`` is the run's tree model (``champion_version``)."""

    uri: str
    directory: Path
    config: object
    result: object
    champion_version: str

    @property
    def model_uri(self) -> str:
        return f"models:/{self.config.tracking.registered_model}@champion"


@pytest.fixture(scope="session")
def trained_store(mlflow_template_db: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainedStore:
    """Train the smoke config once per session into its own store; read-only for the tests that share it.

    Tests that use it call ``store.use_store(trained_store.uri)`` (or pass
    the URI explicitly) and must not register or move aliases there.
    """
    import mlflow

    from painml.config import load_config
    from painml.jobs.train import run_training

    directory = tmp_path_factory.mktemp("trained-store")
    db = directory / store.DEFAULT_DB
    shutil.copy(mlflow_template_db, db)
    uri = "sqlite:///" + db.as_posix()
    config = load_config(REPO / "configs" / "smoke.yaml")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(directory)
        result = run_training(config, tracking_uri=uri)
        while mlflow.active_run() is not None:
            mlflow.end_run()
        champion = result.registered_version
        if result.winner != "gbm":
            # the serving tests exercise the compiled trees and TreeSHAP, whichever family wins on this small cohort
            name = config.tracking.registered_model
            champion = registry.register_version(f"runs:/{result.run_id}/gbm", name, tags={"family": "gbm"})
            registry.set_alias(name, registry.CHAMPION, champion)
    return TrainedStore(uri, directory, config, result, champion)


@dataclass(frozen=True)
class Served:
    """The champion of ``trained_store`` loaded once as a Predictor, with patients to score."""

    predictor: object
    store: TrainedStore
    records: list  # JSON-ready patient records (None for missing), as clients send them
    frame: object  # the same records as a DataFrame


def _json_records(frame) -> list:
    import json

    return json.loads(frame.to_json(orient="records"))


@pytest.fixture(scope="session")
def served(trained_store: TrainedStore) -> Served:
    """The smoke champion as the one Predictor of the serving tests, and 60 simulated patients.

    Read-only: tests that need a changed predictor build their own from
    ``served.predictor.bundle``.
    """
    from painml.serving.predictor import Predictor
    from painml.simulator.simulate import simulate

    predictor = Predictor.from_uri(trained_store.model_uri, tracking_uri=trained_store.uri)
    cohort = simulate("pain_clinic", 60, seed=2024)
    keep = [c for c in cohort.columns if not c.startswith("true_") and c != "pain_type"]
    frame = cohort.loc[:, keep].reset_index(drop=True)
    return Served(predictor, trained_store, _json_records(frame), frame)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--model-uri",
        default=None,
        help="run the behavioural tests (-m behavioral) against this model, e.g. models:/painml-pain-type@candidate",
    )
    parser.addoption("--tracking-uri", default=None, help="the MLflow store --model-uri is resolved in")


# Tests that need any of these train a model, start one or read a trained store: the slow lane.
_SLOW_FIXTURES = frozenset({"trained_store", "served", "mlflow_store", "trained", "report_file", "behaving_model"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
