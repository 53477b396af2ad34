"""The report job: the reviewer report of a training run, written to a file and logged to the run.

At the end of training the inputs are handed over in-process (:func:`report_after_training`: the
split, the bundle and the test or out-of-fold probabilities the run already has). ``painml report --run
RUN_ID`` rebuilds them from the run (:func:`inputs_from_run`): its config re-draws or re-reads the data,
the winner is loaded from the run, and the logged tables are downloaded. A holdout run's test rows are
recomputed from the same split and predicted again by the winner; a resampled (cv) run's probabilities are
its logged out-of-fold predictions, never the registered model's own (it was fitted on every row).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from painml.config import FileData, TrainConfig, load_config
from painml.jobs.explain import write_plots
from painml.model.dataset import Dataset, split_rows
from painml.model.dataset import load_dataset as load_data
from painml.record.schema import Records
from painml.reporting.gather import ReportInputs
from painml.reporting.render import REPORT_FILE, gallery_examples, render
from painml.serving.predictor import Predictor
from painml.tracking import runs, store

REPORT_ARTIFACT = "report"


def write_report(inputs: ReportInputs, out_path: str | Path | None = None, *, log: bool = True) -> Path:
    """Render ``inputs`` to ``out_path`` (a file or folder; default a new temporary folder) and log it to
    the run as ``report/report.html``."""
    page = render(inputs)
    out = Path(out_path) if out_path else Path(tempfile.mkdtemp(prefix="painml-report-")) / REPORT_FILE
    if out.is_dir():
        out = out / REPORT_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    if log:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / REPORT_FILE).write_text(page, encoding="utf-8")
            runs.log_artifacts(inputs.run_id, tmp, REPORT_ARTIFACT)
    return out


def build_report(
    run_id: str, tracking_uri: str | None = None, out_path: str | Path | None = None, *, log: bool = True
) -> Path:
    """The report of a finished run, rebuilt from what the run logged (``painml report --run``)."""
    store.use_store(store.resolve_tracking_uri(tracking_uri))
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    with tempfile.TemporaryDirectory() as tmp:
        inputs = inputs_from_run(run_id, Path(tmp))
        return write_report(inputs, out_path, log=log)


REPORT_DIR_TAG = "painml.report_dir"
"""The run tag naming the folder training wrote its copy of the report to."""


def report_folder(run_id: str) -> Path:
    """Where training writes a run's report when not told otherwise: ``outputs/run-<first 8 characters>``."""
    return Path("outputs") / f"run-{run_id[:8]}"


def report_command(run_id: str, tracking_uri: str | None = None, out: str | Path | None = None) -> Path:
    """``painml report --run RUN_ID [--out FILE]``: build, log and return the report's path.

    ``RUN_ID`` may be any unique prefix of the id (painml prints the first 8 characters); an unknown or ambiguous
    one raises :class:`painml.tracking.runs.RunNotFound`. Without ``--out`` the report replaces the one training
    wrote (the folder its run tag names, when it still exists), else goes to ``outputs/run-<id>/``.
    """
    store.use_store(store.resolve_tracking_uri(tracking_uri))
    run_id = runs.resolve_run_id(run_id)
    if out is None:
        written = runs.read_run(run_id).tags.get(REPORT_DIR_TAG)
        out = Path(written) if written and Path(written).is_dir() else report_folder(run_id)
    return build_report(run_id, tracking_uri, out)


def report_after_training(inputs: ReportInputs, out_dir: Path | None = None, max_rows: int = 2000) -> dict[str, Any]:
    """End of training: the winner's explanations under ``shap/`` and the report under ``report/``,
    from the objects the run already holds (explained on the run's own test rows); a copy of the
    report in ``out_dir`` when given."""
    test = Records(inputs.frame.iloc[inputs.rows["test"]])
    proba = inputs.proba if inputs.proba is not None else inputs.bundle.predict_proba(test.features)
    examples = gallery_examples(inputs, proba)
    with tempfile.TemporaryDirectory() as tmp:
        shap_dir = Path(tmp) / "shap"
        paths = write_plots(inputs.bundle, test, shap_dir, max_rows=max_rows, examples=examples)
        runs.log_artifacts(inputs.run_id, shap_dir, "shap")
        inputs.shap_dir = shap_dir
        _logged_figures(inputs.run_id, inputs.winner, Path(tmp) / "figures", inputs.images, ("instability",))
        report = write_report(inputs, (out_dir or Path(tmp)) / REPORT_FILE)
        size = report.stat().st_size
    if out_dir is not None:
        runs.set_tags(inputs.run_id, {REPORT_DIR_TAG: str(Path(out_dir).resolve())})
    return {
        "shap": [f"shap/{p.name}" for p in paths],
        "report": f"{REPORT_ARTIFACT}/{REPORT_FILE}",
        "report_bytes": size,
        "report_file": report if out_dir else None,
    }


def inputs_from_run(run_id: str, tmp: Path) -> ReportInputs:
    """Read the run's config, tables and figures; rebuild its data and test rows; load its winner."""
    run = runs.read_run(run_id)
    tags = run.tags
    winner = tags.get("painml.winner")
    if not winner:
        raise ValueError(f"run {run_id} has no painml.winner tag: is it a painml training run?")

    def artifact(name: str) -> Path | None:
        return runs.download(run_id, name, tmp)

    cfg = load_config(_required(artifact("config.yaml"), "config.yaml"))
    lineage = json.loads(_required(artifact("lineage.json"), "lineage.json").read_text())
    metrics_path = artifact("metrics.json")
    metrics = json.loads(metrics_path.read_text()) if metrics_path else run.metrics
    comparison = pd.read_csv(_required(artifact("comparison.csv"), "comparison.csv"), index_col=0)
    subgroups_path = artifact(f"subgroups_{winner}.csv")
    subgroups = pd.read_csv(subgroups_path, keep_default_na=False, na_values=[""]) if subgroups_path else pd.DataFrame()
    baselines_path = artifact("baselines.csv")
    baselines = pd.read_csv(baselines_path) if baselines_path else pd.DataFrame()
    data = load_data(cfg)
    if isinstance(cfg.data, FileData) and lineage.get("sha256") and data.lineage.get("sha256") != lineage["sha256"]:
        raise ValueError(
            f"the training file {cfg.data.path} has changed since run {run_id}: its test rows cannot "
            "be rebuilt, so the report would not describe that run"
        )
    validation = tags.get("painml.validation", "holdout")
    bundle = Predictor.from_uri(f"runs:/{run_id}/{winner}").bundle
    proba = None
    if validation == "holdout":
        rows = split_rows(data.y, cfg)
    else:
        predictions = f"predictions_{winner}.csv"
        rows, proba = _out_of_fold(_required(artifact(predictions), predictions), bundle)
        if len(data.y) != len(rows["train"]):
            raise ValueError(
                f"run {run_id} predicted {len(rows['train']):,} rows out-of-fold but its data now has "
                f"{len(data.y):,}: the report would not describe that run"
            )
    images: dict[str, bytes] = {}
    _logged_figures(run_id, winner, tmp / "figures", images, ("confusion", "instability"))
    shap_dir = artifact("shap")
    if shap_dir is not None and not (shap_dir / "mean_abs_shap.csv").exists():
        shap_dir = None
    size_path = artifact("sample_size.txt")
    size_lines = tuple(size_path.read_text(encoding="utf-8").splitlines()) if size_path else ()
    sites_path = artifact(f"sites_{winner}.csv")
    sites = pd.read_csv(sites_path, keep_default_na=False, na_values=[""]) if sites_path else None
    return training_inputs(
        run_id,
        run.name or cfg.name,
        run.started,
        tags,
        cfg,
        data,
        rows,
        winner,
        bundle,
        metrics,
        comparison,
        subgroups,
        baselines,
        images=images,
        shap_dir=shap_dir,
        proba=proba,
        validation=validation,
        sample_size_lines=size_lines,
        sites=sites,
    )


def _out_of_fold(path: Path, bundle: Any) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A resampled run's logged out-of-fold probabilities (``p_<class>`` per row, ``row`` its position in the
    data), in row order and the bundle's class order, and the rows they cover (all rows: fitting and
    estimating alike)."""
    predictions = pd.read_csv(path).sort_values("row", kind="stable")
    columns = [f"p_{c}" for c in bundle.classes]
    missing = [c for c in columns if c not in predictions.columns]
    if missing:
        raise ValueError(f"{path.name} lacks the columns {', '.join(missing)}")
    test = predictions["row"].to_numpy(dtype=np.intp)
    return {"train": test, "test": test}, predictions[columns].to_numpy(dtype=np.float64)


_FIGURE_FILES = {"confusion": "confusion_{}.png", "instability": "instability_{}.png"}
"""Figures the run logged that the report shows as they are (the instability plot needs every refit's
predictions, which only training holds)."""


def _logged_figures(run_id: str, winner: str, tmp: Path, images: dict[str, bytes], kinds: tuple[str, ...]) -> None:
    """Add the winner's logged figures of ``kinds`` to ``images`` (those the run has; none are required)."""
    tmp.mkdir(parents=True, exist_ok=True)
    for kind in kinds:
        if kind in images:
            continue
        path = runs.download(run_id, _FIGURE_FILES[kind].format(winner), tmp)
        if path is not None:
            images[kind] = path.read_bytes()


def training_inputs(
    run_id: str,
    run_name: str,
    started: str,
    tags: dict[str, str],
    cfg: TrainConfig,
    data: Dataset,
    rows: dict[str, Any],
    winner: str,
    bundle: Any,
    metrics: dict[str, float],
    comparison: pd.DataFrame,
    subgroups: pd.DataFrame,
    baselines: pd.DataFrame,
    **extra: Any,
) -> ReportInputs:
    """The report's inputs from a run's objects (whether just trained or rebuilt)."""
    simulated = data.records.truth is not None or data.lineage.get("source") == "simulate"
    return ReportInputs(
        run_id,
        run_name,
        started,
        tags,
        cfg,
        dict(data.lineage),
        simulated,
        winner,
        bundle,
        data.records.frame,
        data.y,
        rows,
        metrics,
        comparison,
        subgroups,
        baselines,
        **extra,
    )


def _required(path: Path | None, name: str) -> Path:
    if path is None:
        raise FileNotFoundError(f"the run has no {name} artifact: was it logged by painml train?")
    return path
