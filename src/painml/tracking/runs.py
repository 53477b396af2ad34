"""Logging one training run to MLflow: tags, parameters, lineage, metrics, tables, figures and models.

The job decides what the run holds; this module knows how MLflow wants it.
MLflow is imported inside the functions.
"""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from painml.model.bundle import ModelBundle
from painml.model.search import SearchResult
from painml.record.projections import mlflow_column_types


@dataclass(frozen=True)
class RunRecord:
    """What the jobs read back of a run: its id, name, start time, tags and metrics."""

    run_id: str
    name: str | None
    started: str
    """UTC, to the minute."""
    tags: dict[str, str]
    metrics: dict[str, float]


EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
"""Tells the MLflow UI the experiment holds model training runs, so it opens on them, not on GenAI traces."""


@contextlib.contextmanager
def start_run(experiment_id: str, name: str, started: float | None = None) -> Iterator[str]:
    """A new run of ``experiment_id`` for the block; yields its id, ends it on the way out.

    ``started`` (seconds since the epoch) backdates the run to when the work began, so that the UI shows the
    whole training's duration rather than the logging's; :func:`finish` sets the end once everything is logged.
    """
    import mlflow

    client = mlflow.MlflowClient()
    client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    start = None if started is None else int(started * 1000)
    run = client.create_run(experiment_id, start_time=start, run_name=name)
    with mlflow.start_run(run_id=run.info.run_id) as active:
        yield active.info.run_id


def finish(run_id: str) -> None:
    """Mark a run finished now: after what is logged once its block has closed (explanations, report)."""
    import time

    from mlflow import MlflowClient

    MlflowClient().set_terminated(run_id, "FINISHED", end_time=int(time.time() * 1000))


class RunNotFound(LookupError):
    """No run, or more than one, answers to the id or prefix given; the message says which."""


def resolve_run_id(prefix: str) -> str:
    """The full id of the one run whose id starts with ``prefix`` (a full id, or the 8 characters painml prints).

    Raises :class:`RunNotFound` naming the candidates when the prefix is unknown or ambiguous.
    """
    from mlflow import MlflowClient
    from mlflow.entities import ViewType
    from mlflow.exceptions import MlflowException

    prefix = prefix.strip().lower()
    if not prefix or any(c not in "0123456789abcdef" for c in prefix):
        raise RunNotFound(f"{prefix!r} is not a run id: run ids are hexadecimal, like the 8 characters painml prints")
    client = MlflowClient()
    if len(prefix) == 32:
        try:
            return client.get_run(prefix).info.run_id
        except MlflowException:
            raise RunNotFound(f"no run {prefix} in the tracking store {client.tracking_uri}") from None
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    found: list[str] = []
    token = None
    while experiments:
        page = client.search_runs(experiments, run_view_type=ViewType.ALL, max_results=1000, page_token=token)
        found += [r.info.run_id for r in page if r.info.run_id.startswith(prefix)]
        token = page.token
        if not token:
            break
    if not found:
        raise RunNotFound(f"no run id starts with {prefix} in the tracking store {client.tracking_uri}")
    if len(found) > 1:
        shown = ", ".join(sorted(found)[:5]) + (", ..." if len(found) > 5 else "")
        raise RunNotFound(f"{len(found)} runs start with {prefix} ({shown}): give more characters of the id")
    return found[0]


def set_tags(run_id: str, tags: Mapping[str, str]) -> None:
    """Set tags on a run, finished or not."""
    from mlflow import MlflowClient

    client = MlflowClient()
    for key, value in tags.items():
        client.set_tag(run_id, key, value)


def read_run(run_id: str) -> RunRecord:
    """The run's name, start, tags and latest metrics."""
    from mlflow import MlflowClient

    run = MlflowClient().get_run(run_id)
    started = datetime.fromtimestamp(run.info.start_time / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    return RunRecord(
        run_id, run.info.run_name, started, dict(run.data.tags), {k: float(v) for k, v in run.data.metrics.items()}
    )


REQUIREMENTS = ("scikit-learn", "lightgbm", "pandas", "numpy", "scipy", "skops", "pandera", "pyarrow", "mlflow")


def log_run(
    *,
    tags: Mapping[str, str],
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    training: pd.DataFrame,
    source: str,
    texts: Mapping[str, str],
    tables: Mapping[str, tuple[pd.DataFrame, bool]],
    figures: Mapping[str, Any],
) -> None:
    """Log everything of the active run but the models.

    ``training`` (features and ``pain_type``) is logged as the run's input
    dataset; ``texts`` are files by name, ``tables`` name -> (frame, write the
    index), ``figures`` name -> matplotlib figure (PNG). Non-finite metrics are
    left out (MLflow refuses them).
    """
    import mlflow

    mlflow.set_tags({**tags, "python": platform.python_version()})
    mlflow.log_params(dict(params))
    mlflow.log_input(mlflow.data.from_pandas(training, name=source, targets="pain_type"), context="training")
    mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)})
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for name, text in texts.items():
            (out / name).write_text(text)
        for name, (frame, index) in tables.items():
            frame.to_csv(out / name, index=index)
        for name, fig in figures.items():
            fig.savefig(out / name, dpi=110, bbox_inches="tight")
        mlflow.log_artifacts(str(out))


def log_search(search: SearchResult) -> list[str]:
    """A family's hyper-parameter search under the active run: a summary on the run, and each trial as a
    child run (its settings, state, mean cross-validated log-loss and the running mean after each fold).
    Returns the child runs' ids."""
    import mlflow
    from mlflow.entities import Metric, Param, RunTag

    family = search.family
    states = [t.state for t in search.trials]
    summary = {f"{family}.search_trials": len(states), f"{family}.search_pruned": states.count("pruned")}
    if search.best_value is not None:
        summary[f"{family}.search_best_cv_log_loss"] = search.best_value
    mlflow.log_metrics(summary)
    mlflow.set_tag(f"painml.search.{family}", search.study)
    parent = mlflow.active_run().info
    client = mlflow.MlflowClient()
    now = int(datetime.now(UTC).timestamp() * 1000)
    children = []
    for trial in search.trials:
        tags = {
            "mlflow.parentRunId": parent.run_id,
            "painml.family": family,
            "painml.study": search.study,
            "painml.trial": str(trial.number),
            "painml.trial_state": trial.state,
        }
        child = client.create_run(parent.experiment_id, run_name=f"{family} trial {trial.number}", tags=tags)
        metrics = [Metric("cv_log_loss_running", v, now, step) for step, v in enumerate(trial.running)]
        if trial.value is not None:
            metrics.append(Metric("cv_log_loss", trial.value, now, 0))
        if trial.seconds is not None:
            metrics.append(Metric("seconds", trial.seconds, now, 0))
        params = [Param(k, str(v)) for k, v in trial.params.items()]
        client.log_batch(child.info.run_id, metrics=metrics, params=params, tags=[RunTag("painml.search", "trial")])
        client.set_terminated(child.info.run_id, "FAILED" if trial.state == "fail" else "FINISHED")
        children.append(child.info.run_id)
    return children


def log_model(
    bundle: ModelBundle,
    name: str,
    *,
    code_file: str,
    code_path: str,
    input_example: pd.DataFrame,
    output_example: pd.DataFrame,
) -> str:
    """Log a bundle as a models-from-code pyfunc (``code_file`` runs on load) with a signature; its URI.

    No class of ours is pickled: MLflow copies ``code_path`` (the package) and the bundle folder.

    The signature declares the outputs and an optional ``reasons`` parameter, but no input columns:
    MLflow's pandas check of declared column types refuses what users read from painml's own files (a
    null in a long or boolean column: an integer column with one empty cell, which pandas reads as
    float64; the nullable Int64 and boolean of painml's Parquet), and no declared type accepts both an
    int64 and a float64 column. The model checks every cell itself and names row, column and what was
    expected. The record's real types (boolean, long, double, string) are in the model's metadata
    (``record_types``), for Spark users casting columns for ``mlflow.pyfunc.spark_udf``.
    """
    import mlflow
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import ParamSchema, ParamSpec

    params = ParamSchema([ParamSpec("reasons", "long", 0)])
    signature = ModelSignature(inputs=None, outputs=infer_signature(None, output_example).outputs, params=params)
    with tempfile.TemporaryDirectory() as tmp:
        folder = bundle.save(Path(tmp) / name / "bundle")
        info = mlflow.pyfunc.log_model(
            name=name,
            python_model=code_file,
            artifacts={"bundle": str(folder)},
            code_paths=[code_path],
            signature=signature,
            input_example=input_example,
            metadata={"record_types": mlflow_column_types()},
            pip_requirements=_requirements(),
        )
    return info.model_uri


def log_artifacts(run_id: str, folder: str | os.PathLike[str], artifact_path: str) -> None:
    """Add the files of ``folder`` under ``artifact_path`` of a finished run."""
    from mlflow import MlflowClient

    MlflowClient().log_artifacts(run_id, str(folder), artifact_path=artifact_path)


def download(run_id: str, artifact_path: str, dst: str | os.PathLike[str]) -> Path | None:
    """One artifact (file or folder) of a run into ``dst``; None when the run has no such artifact."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact_path, dst_path=str(dst)))
    except (MlflowException, OSError):
        return None


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in REQUIREMENTS]


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


def run_metrics(run_id: str) -> dict[str, float]:
    """Latest value of every metric logged by run ``run_id``."""
    from mlflow import MlflowClient

    return {key: float(value) for key, value in MlflowClient().get_run(run_id).data.metrics.items()}
