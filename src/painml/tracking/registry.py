"""The model registry: where models are registered, which version carries which alias, and how a
model URI becomes a folder on this disk.

One default model (:data:`DEFAULT_MODEL_NAME`, :data:`DEFAULT_MODEL_URI`);
``candidate`` on registration, ``champion`` once a version wins promotion. A
local SQLite registry is read directly (two rows; importing MLflow costs about
two seconds, more than scoring a patient), anything else through MLflow, which
is imported only inside the functions that need it.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from painml import DEFAULT_MODEL_NAME
from painml.model.bundle import METADATA_FILE, ModelFolderError
from painml.tracking.store import require_store, resolve_tracking_uri, use_store

DEFAULT_MODEL_URI = f"models:/{DEFAULT_MODEL_NAME}@champion"


@dataclass(frozen=True)
class Located:
    """A model found on this disk: its bundle folder and, when it came from a store, where and which."""

    folder: Path
    uri: str
    name: str | None = None
    version: str | None = None
    run_id: str | None = None
    store: str | None = None


def locate(uri: str | None = None, tracking_uri: str | None = None) -> Located:
    """The bundle folder of ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``runs:/RUN/PATH`` or a folder.

    Raises :class:`ModelNotFound` with a readable message when there is nothing there
    (``absent`` when the store answered and holds no such model),
    :class:`painml.tracking.store.StoreUnavailable` when the store does not exist or
    cannot be reached (a missing store is never created here), and
    :class:`painml.model.bundle.ModelFolderError` for a folder that cannot serve.
    """
    uri = uri or DEFAULT_MODEL_URI
    local = Path(uri).expanduser()
    if "://" not in uri and local.exists():
        return Located(bundle_folder(local), str(uri))
    if not uri.startswith(("models:/", "runs:/")):
        raise ModelNotFound(f"{uri}: no such folder, and not a models:/ or runs:/ URI")
    store = resolve_tracking_uri(tracking_uri)
    require_store(store)
    local_version = _sqlite_model_version(store, uri) if uri.startswith("models:/") else None
    if local_version is not None:
        name, version, run_id, path = local_version
        return Located(bundle_folder(path), uri, name, version, run_id, store)
    import mlflow
    from mlflow.exceptions import MlflowException

    use_store(store)
    name = version = None
    try:
        if uri.startswith("models:/"):
            name, version = _registry_version(uri)
        path = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    except MlflowException as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        absent = error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND")
        listing = _listing(uri) if absent and uri.startswith("models:/") else ""
        raise ModelNotFound(f"{uri} in {store}: {message}{listing}", absent=absent) from None
    except OSError as error:  # the artifact store behind a registered version
        raise ModelNotFound(f"{uri} in {store}: its files cannot be read ({error})") from None
    return Located(bundle_folder(path), uri, name, version, _mlmodel(path).get("run_id"), store)


def _listing(uri: str) -> str:
    """What the registry does hold under the URI's model name: versions and aliases, or other names."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    name = uri[len("models:/") :].partition("@")[0].partition("/")[0]
    try:
        versions = model_versions(name)
        if not versions:
            names = registered_names()
            return f"; registered models: {', '.join(names)}" if names else "; no model is registered there"
        aliases = MlflowClient().get_registered_model(name).aliases
    except MlflowException:
        return ""
    shown = ", ".join(f"{a} -> v{v}" for a, v in sorted(aliases.items())) or "none"
    return f"; {name} has versions {', '.join(versions)} and aliases {shown}"


CANDIDATE = "candidate"


CHAMPION = "champion"


_REGISTRATION_TIMEOUT_S = 300


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


def model_versions(name: str) -> list[str]:
    """Versions of registered model ``name`` in ascending order; empty when there is no such model."""
    from mlflow import MlflowClient

    escaped = name.replace("'", "\\'")
    return [str(v) for v in sorted(int(m.version) for m in MlflowClient().search_model_versions(f"name = '{escaped}'"))]


def registered_names(limit: int = 20) -> list[str]:
    """Names of the registered models of the store (up to ``limit``)."""
    from mlflow import MlflowClient

    return sorted(m.name for m in MlflowClient().search_registered_models(max_results=limit))


def set_alias(name: str, alias: str, version: str | int) -> None:
    """Point ``alias`` of model ``name`` at ``version`` (moving it from any other version)."""
    from mlflow import MlflowClient

    MlflowClient().set_registered_model_alias(name, alias, str(version))


def version_run_id(name: str, version: str | int) -> str:
    """Run that produced version ``version`` of model ``name``, to compare versions by their metrics."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    run_id = MlflowClient().get_model_version(name, str(version)).run_id
    if not run_id:
        raise MlflowException(f"Model {name!r} version {version} was not registered from a run.")
    return run_id


class ModelNotFound(LookupError):
    """No model at the URI given (or the registry, run or folder could not be read).

    ``absent``: the store answered and has no such model (so "train one first" is the right hint).
    """

    def __init__(self, message: str, *, absent: bool = False) -> None:
        super().__init__(message)
        self.absent = absent


def bundle_folder(path: Path) -> Path:
    """The bundle inside ``path``: the folder itself, or the one an MLflow model's MLmodel names."""
    if (path / METADATA_FILE).exists():
        return path
    if not path.exists() and path.parent.name == "artifacts" and (path.parent.parent / "MLmodel").exists():
        path = path.parent.parent  # "<model>/artifacts/bundle", as train.load_predictor guesses it
    mlmodel = _mlmodel(path)
    try:
        artifacts = ((mlmodel.get("flavors") or {}).get("python_function") or {}).get("artifacts") or {}
        bundle = (artifacts.get("bundle") or {}).get("path")
    except AttributeError:
        raise ModelFolderError(f"{path / 'MLmodel'}: not an MLflow model description") from None
    if bundle is not None:
        inside = (path / str(bundle)).resolve()
        if not inside.is_relative_to(path.resolve()):
            raise ModelFolderError(f"{path / 'MLmodel'}: its bundle path {bundle!r} points outside the model folder")
        if (inside / METADATA_FILE).exists():
            return path / bundle
    candidates = sorted(p.parent for p in path.glob("artifacts/*/" + METADATA_FILE))
    if len(candidates) == 1:
        return candidates[0]
    raise ModelNotFound(f"{path}: no painml model bundle found (expected {METADATA_FILE} or an MLflow model)")


def _mlmodel(path: Path) -> dict[str, Any]:
    file = path / "MLmodel"
    if not file.exists():
        return {}
    import yaml

    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ModelFolderError(f"{file}: not readable YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ModelFolderError(f"{file}: not an MLflow model description")
    return data


def _sqlite_path(store: str) -> Path | None:
    if not store.startswith("sqlite:///"):
        return None
    path = Path(store[len("sqlite:///") :].split("?", 1)[0])
    return path if path.is_file() else None


def _sqlite_model_version(store: str, uri: str) -> tuple[str, str, str | None, Path] | None:
    """(name, version, run id, local model folder) read straight from a local SQLite registry, or None.

    Reads the two registry tables MLflow keeps (``registered_model_aliases``,
    ``model_versions``) read-only; anything unexpected (another store, a
    missing alias, an artifact not on this disk, an unknown table layout)
    returns None and MLflow itself resolves the URI, and explains any failure.
    """
    path = _sqlite_path(store)
    if path is None:
        return None
    ref = uri[len("models:/") :]
    if "@" in ref:
        name, _, alias = ref.partition("@")
        version = None
    else:
        name, _, version = ref.partition("/")
        alias = None
        if not version.isdigit():
            return None
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
            if alias is not None:
                rows = db.execute(
                    "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?", (name, alias)
                ).fetchall()
                if len(rows) != 1:
                    return None
                version = str(rows[0][0])
            rows = db.execute(
                "SELECT storage_location, run_id, status FROM model_versions WHERE name = ? AND version = ?",
                (name, int(version)),
            ).fetchall()
    except (sqlite3.Error, ValueError):
        return None
    if len(rows) != 1:
        return None
    location, run_id, status = rows[0]
    if status != "READY" or not isinstance(location, str) or not location.startswith("file://"):
        return None
    from urllib.parse import unquote, urlparse

    folder = Path(unquote(urlparse(location).path))
    if not (folder / "MLmodel").is_file():
        return None
    return name, version, run_id or None, folder


def run_metrics(store: str, run_id: str) -> dict[str, float]:
    """Latest value of every metric of a run: straight from a local SQLite store, else through MLflow.

    A store that has vanished raises :class:`StoreUnavailable` rather than being created anew.
    """
    require_store(store)
    path = _sqlite_path(store)
    if path is not None:
        try:
            with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
                rows = db.execute("SELECT key, value FROM latest_metrics WHERE run_uuid = ?", (run_id,)).fetchall()
            return {str(k): float(v) for k, v in rows}
        except sqlite3.Error:
            pass

    from mlflow import MlflowClient

    use_store(store)
    return {key: float(value) for key, value in MlflowClient().get_run(run_id).data.metrics.items()}


def _registry_version(uri: str) -> tuple[str, str | None]:
    """(name, version) of a ``models:/`` URI; the alias is resolved to its version now."""

    ref = uri[len("models:/") :]
    if "@" in ref:
        name, _, alias = ref.partition("@")
        version = get_alias_version(name, alias)
        if version is None:
            from mlflow.exceptions import MlflowException
            from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

            raise MlflowException(f"registered model {name!r} has no alias {alias!r}", RESOURCE_DOES_NOT_EXIST)
        return name, version
    name, _, version = ref.partition("/")
    return name, (version or None)
