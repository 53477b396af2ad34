"""Training: config -> data -> split -> both families -> evaluation -> MLflow -> registry.

One run holds every family of the config; metric keys are prefixed by the
family (``gbm.test_log_loss``) and the winner's are also logged unprefixed
(``test_log_loss``), so runs compare on the same keys whichever family won.
The ceiling (``oracle_*``) is logged when the data carries the simulator's
exact posterior.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from painml.config import ConfigError, SimulatedData, TrainConfig
from painml.evaluation import metrics as evaluate
from painml.evaluation.holdout import FamilyResult, choose_winner, comparison_table, evaluate_family
from painml.evaluation.plots import (
    plot_calibration,
    plot_confusion,
    plot_decision_curve,
    plot_flexible_calibration,
    plot_instability,
)
from painml.evaluation.resampling import leave_one_site_out, resampled_family
from painml.evaluation.sample_size import SampleSizeAssessment, assess, simulated_pairwise_c
from painml.features.encoding import build_features
from painml.jobs.promote import promote
from painml.jobs.report import report_after_training, training_inputs
from painml.model.dataset import Dataset, check_class_counts, load_dataset, split_rows
from painml.model.families import for_small_data
from painml.model.fit import build_bundle, fit_family
from painml.model.search import SearchResult
from painml.record.columns import FEATURE_COLUMNS
from painml.record.schema import load_records
from painml.serving.frames import json_frame
from painml.serving.predictor import Predictor
from painml.simulator.simulate import simulate
from painml.tracking import registry, runs, store


@dataclass
class TrainResult:
    run_id: str
    winner: str
    families: dict[str, FamilyResult]
    oracle: dict[str, float]
    baselines: pd.DataFrame
    comparison: pd.DataFrame
    registered_version: str | None
    promotion: str | None
    report: str | None = None
    report_file: Path | None = None
    validation: str = "holdout"
    """holdout, or cv: metrics are out-of-fold estimates and the model is fitted on all rows."""
    winner_reason: str = ""
    sample_size: dict[str, SampleSizeAssessment] | None = None


def run_training(
    cfg: TrainConfig,
    *,
    tracking_uri: str | None = None,
    promote_now: bool = False,
    console=None,
    log_models: bool = True,
    explain: bool = True,
    report_dir: Callable[[str], Path] | None = None,
) -> TrainResult:
    """Train every family of the config, log one MLflow run, register the winner as ``candidate``.

    The reviewer report is logged to the run and, with ``report_dir``, also written there.
    """
    started = time.time()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    console = console or Console()
    uri = store.resolve_tracking_uri(tracking_uri)
    store.use_store(uri)
    experiment_id = store.ensure_experiment(cfg.tracking.experiment, uri)
    families = [m.family for m in cfg.models]
    steps = ["data", "split", *[f"fit {f}" for f in families], "evaluate", "log to MLflow", "register", "explain"]
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task("", total=len(steps))

        def stage(name: str) -> None:
            progress.update(task, description=f"[bold]{name}[/]")
            console.print(f"- {name}") if not console.is_terminal else None

        stage(f"loading data: {cfg.data.source}")
        data = load_dataset(cfg)
        method = cfg.validation.resolve(len(data.y))
        if method != "holdout" and cfg.calibration not in ("temperature", "none"):
            raise ConfigError(
                cfg.name,
                [
                    f"calibration: {cfg.calibration} needs held-out rows, and {len(data.y):,} rows are validated by "
                    "resampling (validation: auto below validation.auto_rows); use temperature or none, or "
                    "validation: holdout"
                ],
            )
        warnings = _describe_data(console, cfg, data, method)
        sizes, size_basis = _sample_size(console, cfg, data)
        progress.advance(task)
        if method == "holdout":
            stage("splitting train / calibration / conformal / test")
            rows = split_rows(data.y, cfg)
        else:
            v = cfg.validation
            how = (
                f"{v.folds}-fold cross-validation x {v.repeats} repeats"
                if method == "cv"
                else f"Harrell's bootstrap ({v.resamples} refits)"
            )
            stage(f"validating by {how}; the registered model is fitted on all {len(data.y):,} rows")
            everyone = np.arange(len(data.y))
            rows = {"train": everyone, "test": everyone}
        progress.advance(task)
        results: dict[str, FamilyResult] = {}
        searches: dict[str, SearchResult] = {}

        def keep(search: SearchResult) -> None:
            searches[search.family] = search

        for model_cfg in cfg.models:
            family = model_cfg.family
            if method != "holdout":
                model_cfg = for_small_data(model_cfg)
            start = time.perf_counter()
            if method == "holdout":
                stage(f"fitting {family} on {len(rows['train']):,} rows")
                estimator, chosen = fit_family(model_cfg, cfg, data.X, data.y, rows, on_search=keep)
                bundle = build_bundle(estimator, family, cfg, data, rows, chosen.model_dump())
                metrics, proba, tables = evaluate_family(bundle, data, rows)
            else:
                stage(f"validating {family}")
                steps = cfg.validation.folds * cfg.validation.repeats if method == "cv" else cfg.validation.resamples
                folds = progress.add_task(f"  {family}: refits", total=steps)
                bundle, metrics, proba, tables, _ = resampled_family(
                    model_cfg,
                    cfg,
                    data,
                    method=method,
                    progress=lambda done, total, t=folds: progress.update(t, completed=done),
                    on_search=keep,
                )
                progress.remove_task(folds)
            seconds = time.perf_counter() - start
            bundle = bundle.with_metadata(
                metrics={k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
            )
            results[family] = FamilyResult(family, bundle, metrics, proba, seconds, tables)
            progress.advance(task)
        stage("evaluating against the screening tools and the ceiling")
        test = rows["test"]
        y_test = data.y[test]
        truth = None if data.records.truth is None else data.records.truth.iloc[test]
        oracle = evaluate.oracle_metrics(truth, y_test, list(cfg.classes))
        baselines = evaluate.baseline_metrics(data.records.frame.iloc[test], y_test, list(cfg.classes))
        winner, why = choose_winner(results, cfg.tracking.primary_metric)
        console.print(f"  winner: {why}")
        if method != "holdout":
            sites = leave_one_site_out(next(m for m in cfg.models if m.family == winner), cfg, data)
            if sites is not None:
                results[winner].artifacts["sites"] = sites
                for row in sites.to_dict("records"):
                    console.print(
                        f"  {winner} on site {row['site']} (fitted on the other sites): "
                        f"log loss {row['log_loss']:.3f}, macro-F1 {row['macro_f1']:.3f}, {row['n']:,} patients"
                    )
        comparison = comparison_table(results, oracle, baselines)
        progress.advance(task)

        stage("logging the run to MLflow")
        with runs.start_run(experiment_id, cfg.name, started=started) as run_id:
            metrics = _log_run(
                cfg,
                data,
                rows,
                results,
                oracle,
                baselines,
                comparison,
                winner,
                why,
                method,
                warnings,
                sizes,
                size_basis,
            )
            for search in searches.values():
                runs.log_search(search)
            model_uris = {family: _log_model(r.bundle, family) for family, r in results.items()} if log_models else {}
        progress.advance(task)
        version = promotion = None
        if log_models:
            stage(f"registering {winner} as {cfg.tracking.registered_model}")
            version = registry.register_version(
                model_uris[winner], cfg.tracking.registered_model, tags={"family": winner, "config": cfg.name}
            )
            champion = registry.get_alias_version(cfg.tracking.registered_model, registry.CHAMPION)
            if champion is None or promote_now:
                promotion = promote(cfg.tracking.registered_model, tracking_uri=uri, version=version)
        progress.advance(task)
        result = TrainResult(
            run_id, winner, results, oracle, baselines, comparison, version, promotion,
            validation=method, winner_reason=why, sample_size=sizes,
        )  # fmt: skip
        if explain:
            stage(f"explaining {winner} (SHAP) and writing the reviewer report")
            run = runs.read_run(run_id)
            inputs = training_inputs(
                run_id,
                cfg.name,
                run.started,
                run.tags,
                cfg,
                data,
                rows,
                winner,
                results[winner].bundle,
                metrics,
                comparison,
                results[winner].artifacts["subgroups"],
                baselines,
                proba=results[winner].proba,
                validation=method,
                clinical=results[winner].artifacts["clinical"],
                stability=results[winner].artifacts.get("stability"),
                sites=results[winner].artifacts.get("sites"),
                sample_size=sizes,
                sample_size_basis=size_basis,
            )
            written = report_after_training(inputs, report_dir(run_id) if report_dir else None)
            result.report, result.report_file = written["report"], written["report_file"]
        runs.finish(run_id)
        progress.advance(task)
    return result


def _describe_data(console: Console, cfg: TrainConfig, data: Dataset, method: str) -> list[str]:
    """Print what the rules did to the labels and the class counts; refuse a class too small for the
    validation, warn about a rare one. Returns the warnings (they are logged with the run)."""
    for note in data.label_notes:
        console.print(f"  {note}")
    counts = data.class_counts(cfg.classes)
    console.print("  classes: " + ", ".join(f"{c} {n:,}" for c, n in counts.items()))
    warnings = check_class_counts(counts, method, cfg)
    for warning in warnings:
        console.print(f"  [yellow]warning[/]: {warning}")
    return warnings


def _sample_size(console: Console, cfg: TrainConfig, data: Dataset) -> tuple[dict[str, SampleSizeAssessment], str]:
    """Before any fitting: can the data support each family's candidate parameters (Riley 2019/2020 for two
    classes, Pate 2023 for more)? Parameters are counted from each family's encoder fitted on the data."""
    v = cfg.validation
    if v.anticipated_c is not None:
        pairwise_c: float | dict = v.anticipated_c
        basis = f"a C statistic of {v.anticipated_c:g} for every class pair (from the config)"
    else:
        preset = v.anticipated_preset or (cfg.data.preset if isinstance(cfg.data, SimulatedData) else "pain_clinic")
        pairwise_c = simulated_pairwise_c(preset, cfg.classes, cfg.labels.map, cfg.labels.drop, seed=cfg.seed)
        shown = ", ".join(f"{a} vs {b} {c:.2f}" for (a, b), c in pairwise_c.items())
        basis = (
            f"each class pair's C under the simulator's exact posterior for {preset} ({shown}): the best any "
            "model could do on such patients, so the check is optimistic"
        )
    counts = data.class_counts(cfg.classes)
    sizes = {}
    for model_cfg in cfg.models:
        encoder = build_features(model_cfg.family, cfg.features.groups, cfg.features.missing_indicators)
        parameters = len(encoder.fit(data.X).get_feature_names_out())
        size = sizes[model_cfg.family] = assess(len(data.y), counts, parameters, pairwise_c, c_method="exact")
        mark = "" if size.adequate else "[yellow]warning[/]: "
        console.print(
            f"  {mark}sample size, {model_cfg.family} ({parameters} parameters per contrast): {size.verdict}",
            markup=True,
        )
    return sizes, basis


def _log_run(
    cfg: TrainConfig,
    data: Dataset,
    rows: dict,
    results: dict[str, FamilyResult],
    oracle: dict[str, float],
    baselines: pd.DataFrame,
    comparison: pd.DataFrame,
    winner: str,
    why: str,
    method: str,
    warnings: list[str],
    sizes: dict[str, SampleSizeAssessment],
    size_basis: str,
) -> dict[str, float]:
    """Log params, lineage, metrics, tables and figures of the active run; return the metrics logged."""
    git = runs.git_state(Path(__file__).parent)
    tags = {
        "painml.config": cfg.name,
        "painml.winner": winner,
        "painml.winner_reason": why,
        "painml.validation": method,
        "git.commit": git["commit"] or "unknown",
        "git.dirty": str(git["dirty"]),
        "data.source": data.source,
    }
    params = {
        **cfg.flat(),
        "validation.used": method,
        **{f"data.lineage.{k}": v for k, v in data.lineage.items()},
        **{f"rows.{k}": len(v) for k, v in rows.items()},
        **{f"data.class_count.{c}": n for c, n in data.class_counts(cfg.classes).items()},
    }
    metrics: dict[str, float] = dict(oracle)
    for family, r in results.items():
        metrics |= {f"{family}.{k}": v for k, v in r.metrics.items()}
        metrics |= {f"{family}.{k}": v for k, v in evaluate.ceiling_gap(r.metrics, oracle).items()}
        metrics[f"{family}.fit_seconds"] = r.fit_seconds
        if family in sizes:
            s = sizes[family]
            metrics |= {
                f"{family}.sample_size_parameters": s.parameters,
                f"{family}.sample_size_required": s.n_required,
                f"{family}.sample_size_parameters_supported": s.parameters_supported,
                f"{family}.sample_size_expected_shrinkage": s.expected_shrinkage,
            }
        params |= {f"{family}.chosen.{k}": v for k, v in r.bundle.metadata.hyperparameters.items()}
    metrics |= results[winner].metrics | evaluate.ceiling_gap(results[winner].metrics, oracle)
    texts = {
        "config.yaml": yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False),
        "metrics.json": json.dumps(metrics, indent=2, default=float),
        "lineage.json": json.dumps(data.lineage, indent=2),
        "data_notes.txt": "\n".join([*data.label_notes, *warnings]) + "\n",
        "sample_size.txt": "\n".join(
            [f"anticipated performance: {size_basis}"]
            + [
                f"{f}: {s.parameters:.0f} candidate parameters per class contrast; {s.verdict}"
                for f, s in sizes.items()
            ]
        )
        + "\n",
    }
    tables = {"baselines.csv": (baselines, False), "comparison.csv": (comparison, True)}
    figures = {}
    y_test = data.y[rows["test"]]
    which = "test" if method == "holdout" else "out-of-fold"
    for family, r in results.items():
        tables[f"confusion_{family}.csv"] = (r.artifacts["confusion"], True)
        tables[f"subgroups_{family}.csv"] = (r.artifacts["subgroups"], False)
        if "sites" in r.artifacts:
            tables[f"sites_{family}.csv"] = (r.artifacts["sites"], False)
        predictions = pd.DataFrame(r.proba, columns=[f"p_{c}" for c in r.bundle.classes]).assign(row=rows["test"])
        tables[f"predictions_{family}.csv"] = (predictions, False)
        figures[f"confusion_{family}.png"] = plot_confusion(
            r.artifacts["confusion"], f"{family}: confusion matrix ({which})"
        )
        figures[f"calibration_{family}.png"] = plot_calibration(
            y_test, r.proba, r.bundle.classes, f"{family}: calibration ({which})"
        )
        clinical = r.artifacts["clinical"]
        tables[f"calibration_{family}.csv"] = (clinical.calibration, False)
        if clinical.curves:
            figures[f"calibration_curve_{family}.png"] = plot_flexible_calibration(
                clinical.curves, f"{family}: flexible calibration, one class against the rest ({which})"
            )
        if clinical.decision is not None:
            tables[f"decision_curve_{family}.csv"] = (clinical.decision, False)
            figures[f"decision_curve_{family}.png"] = plot_decision_curve(
                clinical.decision, f"{family}: is there a neuropathic component? Net benefit ({which})"
            )
        if "stability" in r.artifacts:
            figures[f"instability_{family}.png"] = plot_instability(
                r.bundle.predict_proba(data.X),
                r.artifacts["refits"],
                r.bundle.classes,
                f"{family}: prediction instability across the cross-validation refits",
            )
    training = data.X.iloc[rows["train"]].assign(pain_type=data.y[rows["train"]])
    runs.log_run(
        tags=tags,
        params=params,
        metrics=metrics,
        training=training,
        source=data.source,
        texts=texts,
        tables=tables,
        figures=figures,
    )
    return metrics


def _log_model(bundle, name: str) -> str:
    """Log a bundle as MLflow's pyfunc, with a synthetic input example (typed as painml's Parquet files type
    it) and the pyfunc's output for it."""
    cohort = simulate("pain_clinic", 5, seed=0)
    example = cohort.loc[:, ["patient_id", "site", *FEATURE_COLUMNS]]
    predictor = Predictor(bundle)
    output = json_frame(predictor, predictor.score_records(load_records(example, classes=predictor.classes)))
    code_file = importlib.util.find_spec("painml.serving.pyfunc").origin  # a path: the file runs when MLflow loads
    package = str(Path(code_file).parents[1])
    return runs.log_model(
        bundle, name, code_file=code_file, code_path=package, input_example=example, output_example=output
    )
