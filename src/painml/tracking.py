"""Thin helpers around MLflow tracking and the model registry.

Every job records to one store and promotes models through registry aliases
(``candidate`` on registration, ``champion`` once it wins); these functions keep
that plumbing, and MLflow's local-store pitfalls, out of the training code:

- the default store is a SQLite file under the working directory, named by an
  absolute URI so a later ``cd`` cannot split one project into two stores;
- artifacts of a local store go to ``<cwd>/mlartifacts/<experiment>``, given as an
  absolute ``file://`` URI, because MLflow otherwise writes them to a ``./mlruns``
  relative to whatever directory the process happens to run in;
- a missing alias is an ordinary answer (``None``), not an exception.

Nothing here prints: callers decide what the user sees. MLflow is imported
by the functions that use it (about a second and a half), so that reading
which store to use costs nothing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
from pathlib import Path
from urllib.parse import urlparse

DEFAULT_DB = "mlflow.db"
DEFAULT_ARTIFACTS = "mlartifacts"
CANDIDATE = "candidate"
CHAMPION = "champion"

_LOCAL_SCHEMES = frozenset({"", "sqlite", "file"})
_SERVER_SCHEMES = frozenset({"http", "https", "databricks", "databricks-uc", "uc"})
# Schema-migration INFO lines, repeated by every command that opens a new store.
# Warnings and errors still come through.
_QUIET_LOGGERS = ("alembic", "mlflow.store.db.utils")
_REGISTRATION_TIMEOUT_S = 300
_HASH_BLOCK = 1 << 20


def resolve_tracking_uri(explicit: str | None = None) -> str:
    """Return the store to use: ``explicit``, else ``$MLFLOW_TRACKING_URI``, else ``<cwd>/mlflow.db``.

    The default is made absolute here so that it names the same file for the
    whole run, whatever directory MLflow or a subprocess later resolves it from.
    """
    if explicit:
        return explicit
    from_env = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if from_env:
        return from_env
    return "sqlite:///" + (Path.cwd().resolve() / DEFAULT_DB).as_posix()


def _scheme(uri: str) -> str:
    """URI scheme in lower case; the bare word ``databricks`` names a workspace, not a path."""
    return "databricks" if uri.strip().lower() == "databricks" else urlparse(uri).scheme.lower()


def is_local_store(uri: str) -> bool:
    """True for stores on this machine (``sqlite:``, ``file:`` or a plain path)."""
    scheme = _scheme(uri)
    # A one-letter "scheme" is a Windows drive ("C:\\runs"), i.e. a plain path.
    return scheme in _LOCAL_SCHEMES or len(scheme) == 1


def _is_server(uri: str) -> bool:
    """True when a tracking server, which owns the artifact root, stands behind ``uri``."""
    return _scheme(uri) in _SERVER_SCHEMES


def use_store(tracking_uri: str) -> None:
    """Point MLflow's tracking and registry at ``tracking_uri`` and quiet its migration INFO lines."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    for name in _QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.WARNING:
            logger.setLevel(logging.WARNING)


def ensure_experiment(name: str, tracking_uri: str) -> str:
    """Return the id of experiment ``name``, creating it (or restoring it from deletion) if needed.

    Without a tracking server, MLflow's default artifact root is ``./mlruns``
    relative to the current directory; a new experiment therefore gets the
    absolute ``file://<cwd>/mlartifacts/<name>``. A server chooses its own root.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        location = None if _is_server(tracking_uri) else (Path.cwd().resolve() / DEFAULT_ARTIFACTS / name).as_uri()
        try:
            return client.create_experiment(name, artifact_location=location)
        except MlflowException as exc:
            # Another process created it between the lookup and the create.
            if exc.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
                raise
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment.experiment_id)
    return experiment.experiment_id


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a whole file, read in 1 MiB blocks.

    MLflow's dataset digest only covers the first rows; this pins the exact data.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _git(path: str | os.PathLike[str], *args: str) -> str | None:
    """Stdout of ``git -C path args``, or None when git is missing or fails."""
    try:
        result = subprocess.run(
            ["git", "-C", os.fspath(path), *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip()


def git_state(path: str | os.PathLike[str] = ".") -> dict[str, str | bool | None]:
    """Commit and dirtiness of the checkout at ``path``, to tag runs with the code that made them.

    ``dirty`` is True when tracked files differ from the commit (untracked files
    such as a local ``mlflow.db`` do not count); both keys are None outside a
    repository or without git.
    """
    commit = _git(path, "rev-parse", "--verify", "HEAD")
    if not commit:
        return {"commit": None, "dirty": None}
    status = _git(path, "status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def git_commit(path: str | os.PathLike[str] = ".") -> str | None:
    """Full ``HEAD`` commit hash at ``path``, or None; see :func:`git_state` for dirtiness."""
    commit = git_state(path)["commit"]
    return commit if isinstance(commit, str) else None


def register_version(model_uri: str, name: str, tags: dict[str, object] | None = None) -> str:
    """Register ``model_uri`` as a new version of ``name``, wait until READY, alias it ``candidate``.

    Returns the version number as a string. Only a READY version may carry the
    alias that serving and promotion look up.
    """
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    version = mlflow.register_model(
        model_uri,
        name,
        await_registration_for=_REGISTRATION_TIMEOUT_S,
        tags={key: str(value) for key, value in (tags or {}).items()},
    )
    status = MlflowClient().get_model_version(name, version.version).status
    if status != "READY":
        raise MlflowException(f"Model {name!r} version {version.version} is {status}, not READY.")
    set_alias(name, CANDIDATE, version.version)
    return str(version.version)


def get_alias_version(name: str, alias: str) -> str | None:
    """Version of ``name`` that carries ``alias``, or None when the alias or the model does not exist.

    Read from the registered model's alias map: a missing alias is reported by
    stores as a generic invalid-parameter error, which cannot be told apart
    from a real one.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

    try:
        model = MlflowClient().get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            return None
        raise
    version = model.aliases.get(alias)
    return None if version is None else str(version)


def set_alias(name: str, alias: str, version: str | int) -> None:
    """Point ``alias`` of model ``name`` at ``version`` (moving it from any other version)."""
    from mlflow import MlflowClient

    MlflowClient().set_registered_model_alias(name, alias, str(version))


def run_metrics(run_id: str) -> dict[str, float]:
    """Latest value of every metric logged by run ``run_id``."""
    from mlflow import MlflowClient

    return {key: float(value) for key, value in MlflowClient().get_run(run_id).data.metrics.items()}


def version_run_id(name: str, version: str | int) -> str:
    """Run that produced version ``version`` of model ``name``, to compare versions by their metrics."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    run_id = MlflowClient().get_model_version(name, str(version)).run_id
    if not run_id:
        raise MlflowException(f"Model {name!r} version {version} was not registered from a run.")
    return run_id
