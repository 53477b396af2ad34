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

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

DEFAULT_DB = "mlflow.db"
DEFAULT_ARTIFACTS = "mlartifacts"

_LOCAL_SCHEMES = frozenset({"", "sqlite", "file"})
_SERVER_SCHEMES = frozenset({"http", "https", "databricks", "databricks-uc", "uc"})
# Schema-migration INFO lines, repeated by every command that opens a new store.
# Warnings and errors still come through.
_QUIET_LOGGERS = ("alembic", "mlflow.store.db.utils")


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


SERVER_TIMEOUT_S = 5.0
"""Seconds to wait for a tracking server to answer before a read-only command gives up."""


class StoreUnavailable(LookupError):
    """The store named does not exist (only training creates one) or its server cannot be reached."""


def local_store_path(uri: str) -> Path | None:
    """The file (``sqlite:``) or folder (``file:`` or a plain path) of a store on this disk; else None."""
    scheme = _scheme(uri)
    if scheme == "sqlite":
        rest = uri[len("sqlite://") :].split("?", 1)[0]
        return Path(rest[1:]) if rest.startswith("/") and rest != "/:memory:" and rest != "/" else None
    if scheme == "file":
        return Path(unquote(urlparse(uri).path))
    if scheme == "" or len(scheme) == 1:
        return Path(uri).expanduser()
    return None


def require_store(uri: str) -> None:
    """Raise :class:`StoreUnavailable` naming ``uri`` unless the store exists (or its server answers).

    Read-only commands call this before MLflow touches the store: MLflow
    creates a missing SQLite file (and its tables) on first use, and retries an
    unreachable server for minutes.
    """
    path = local_store_path(uri)
    if path is not None:
        if not path.exists():
            raise StoreUnavailable(
                f"there is no MLflow store at {path}: train a model first (painml train), or point "
                "--tracking-uri (or MLFLOW_TRACKING_URI) at the store that holds it"
            )
        return
    if _scheme(uri) in ("http", "https"):
        import socket

        parsed = urlparse(uri)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            with socket.create_connection((parsed.hostname or "", port), timeout=SERVER_TIMEOUT_S):
                pass
        except OSError as error:
            reason = error.strerror or type(error).__name__
            if isinstance(error, TimeoutError | socket.timeout):
                reason = f"no answer in {SERVER_TIMEOUT_S:g} s"
            raise StoreUnavailable(f"cannot reach the tracking server {uri}: {reason}") from None
        # Then MLflow's own requests: a short timeout and one retry rather than minutes of them.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(SERVER_TIMEOUT_S * 2)))
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")


@contextlib.contextmanager
def creating(uri: str) -> Iterator[None]:
    """Hold an exclusive lock beside a local SQLite store while it is opened (and so created or migrated).

    Two trainings started at once on a new store would otherwise both create
    its tables, and one dies with "table ... already exists". Elsewhere (other
    stores, systems without ``fcntl``) this does nothing.
    """
    path = local_store_path(uri) if _scheme(uri) == "sqlite" else None
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        fcntl = None  # type: ignore[assignment]
    if path is None or fcntl is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


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

    with creating(tracking_uri):  # the first request creates and migrates a new SQLite store
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        experiment = client.get_experiment_by_name(name)
        client.search_registered_models(max_results=1)  # the registry's tables too
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
