"""The ``painml`` command: one subcommand per stage of the flow, and ``painml serve`` for scoring.

Each command imports its job inside the function: ``painml --help`` and
``painml serve predict`` stay fast because nothing imports scikit-learn,
MLflow or pandas until a command needs it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from painml import __version__
from painml.cli.serve import serve_app
from painml.simulator.clinical_tables import PRESETS
from painml.tracking.registry import DEFAULT_MODEL_NAME

app = typer.Typer(
    name="painml",
    help="Classify chronic pain as neuropathic, nociceptive or mixed.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(serve_app, name="serve")


def _version(value: bool) -> None:
    if value:
        print(f"painml {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Classify chronic pain as neuropathic, nociceptive or mixed: simulate, validate, train, promote,
    explain, report and serve."""


console = Console(width=max(Console().width, 120))
err = Console(stderr=True, soft_wrap=True)  # problem lines are never wrapped: logs are searched line by line

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the result as one JSON object on stdout; errors as JSON on stderr.")
]


def _fail(as_json: bool, headline: str, detail: str, code: int, problems: list | None = None) -> typer.Exit:
    """Report a failure (as JSON on stderr under ``--json``) and return the exit to raise."""
    if as_json:
        import json

        body = {"error": headline, "detail": detail}
        if problems is not None:
            from painml.record.schema import problem_dict

            body["problems"] = [problem_dict(p) for p in problems]
        sys.stderr.write(json.dumps(body, ensure_ascii=False) + "\n")
    else:
        err.print(headline, style="red", markup=False)
        if detail:
            err.print(detail, markup=False)
    return typer.Exit(code)


def _emit(body: dict) -> None:
    import json

    sys.stdout.write(json.dumps(body, ensure_ascii=False, default=str) + "\n")


PresetOption = Annotated[str, typer.Option("--preset", help=f"Case mix: {', '.join(PRESETS)}.")]


def _check_preset(preset: str) -> None:
    if preset not in PRESETS:
        err.print(f"[red]unknown preset {preset!r}[/]; choose one of: {', '.join(PRESETS)}")
        raise typer.Exit(2)


@app.command()
def simulate(
    out: Annotated[Path, typer.Option("--out", help="Output file, .csv or .parquet.")],
    preset: PresetOption = "pain_clinic",
    n: Annotated[int, typer.Option("--n", min=1, help="Number of patients.")] = 10_000,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed; same seed, same bytes.")] = 0,
    shards: Annotated[
        int,
        typer.Option(
            "--shards",
            min=1,
            help="Independent seeded streams drawn in parallel processes (same seed and shards, same bytes; "
            "not the single-stream cohort of that seed).",
        ),
    ] = 1,
) -> None:
    """Draw a simulated cohort with its ground truth and exact posterior."""
    from painml.simulator.shards import simulate_sharded
    from painml.simulator.simulate import write_cohort

    _check_preset(preset)
    if out.suffix.lower() not in (".csv", ".parquet"):
        err.print(f"[red]{out}[/]: the output must end in .csv or .parquet")
        raise typer.Exit(2)
    if shards > n:
        err.print(f"[red]--shards {shards}[/] is more than the {n:,} patients: each shard needs at least one")
        raise typer.Exit(2)
    start = time.perf_counter()
    in_shards = f", {shards} shards" if shards > 1 else ""
    with console.status(f"Simulating {n:,} patients ({preset}, seed {seed}{in_shards})"):
        cohort = simulate_sharded(preset, n, seed, shards)
        write_cohort(cohort, out)
    shares = cohort["pain_type"].value_counts(normalize=True)
    console.print(
        f"Wrote {n:,} patients to [bold]{out}[/] in {time.perf_counter() - start:.1f} s; labels: "
        + ", ".join(f"{k} {v:.0%}" for k, v in shares.items())
    )


@app.command()
def realism(
    preset: PresetOption = "pain_clinic",
    n: Annotated[int, typer.Option("--n", min=1000, help="Cohort size.")] = 40_000,
    seed: Annotated[int, typer.Option("--seed", min=0)] = 11,
) -> None:
    """Compare a simulated cohort with the published clinical figures."""
    from painml.simulator.realism import EVERY_SETTING, evaluate_realism, realism_table
    from painml.simulator.simulate import simulate as draw

    _check_preset(preset)
    with console.status(f"Simulating {n:,} patients and scoring the targets"):
        results = evaluate_realism(draw(preset, n, seed))
    console.print(realism_table(results, f"Realism: {preset}, n = {n:,}, seed {seed}"))
    applies = [r for r in results if r.estimate.n > 0 and (preset == "pain_clinic" or r.target.scope == EVERY_SETTING)]
    outside = [r for r in applies if not r.inside]
    if preset != "pain_clinic":
        console.print(
            f"[dim]Targets that describe a pain clinic are shown for comparison; the {len(applies)} that hold "
            "in every setting and have patients in this cohort are checked.[/]"
        )
    if outside:
        err.print(f"[red]{len(outside)} target(s) outside the published band[/]")
        raise typer.Exit(1)


@app.command()
def validate(
    file: Annotated[Path, typer.Argument(help="CSV or Parquet file in the patient-record schema.")],
    require_label: Annotated[
        bool, typer.Option("--require-label", help="The file is for training: pain_type must be present.")
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Read the labels as this training config does (its classes, map and drop)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check a file against the patient-record schema and summarise it."""
    from painml.config import ConfigError, load_config
    from painml.record.schema import validate_file

    if config is None:
        raise typer.Exit(validate_file(file, require_label=require_label, as_json=as_json))
    try:
        labels = load_config(config).labels
    except ConfigError as error:
        raise _fail(as_json, "invalid configuration", str(error), 2) from None
    code = validate_file(
        file,
        require_label=require_label,
        classes=labels.classes,
        label_map=labels.map,
        label_drop=labels.drop,
        as_json=as_json,
    )
    raise typer.Exit(code)


ConfigOption = Annotated[Path, typer.Option("--config", help="Training config (YAML).")]
TrackingOption = Annotated[
    str | None,
    typer.Option("--tracking-uri", help="MLflow tracking URI; else $MLFLOW_TRACKING_URI, else ./mlflow.db."),
]


@app.command()
def train(
    config: ConfigOption = Path("configs/default.yaml"),
    data: Annotated[Path | None, typer.Option("--data", help="Train on this CSV/Parquet file instead.")] = None,
    tracking_uri: TrackingOption = None,
    experiment: Annotated[str | None, typer.Option("--experiment", help="MLflow experiment name.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", min=0, help="Training seed (splits, models).")] = None,
    promote: Annotated[bool, typer.Option("--promote", help="Then promote the new version if it wins.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Train every model family of a config, log the run to MLflow and register the winner."""
    from painml.config import ConfigError, load_config
    from painml.jobs.report import report_folder
    from painml.jobs.train import run_training
    from painml.record.schema import SchemaError

    try:
        cfg = load_config(config).with_overrides(data_path=data, seed=seed, experiment=experiment)
    except ConfigError as error:
        raise _fail(as_json, "invalid configuration", str(error), 2) from None
    try:
        result = run_training(
            cfg,
            tracking_uri=tracking_uri,
            promote_now=promote,
            console=Console(stderr=True, quiet=True) if as_json else console,
            report_dir=report_folder,
        )
    except SchemaError as error:
        raise _fail(as_json, "the training data is not valid", error.report(), 1, error.problems) from None
    except ConfigError as error:
        raise _fail(as_json, "the configuration does not suit this data", str(error), 2) from None
    if as_json:
        _emit(_train_json(result, cfg))
        return
    _print_result(result, cfg)


def _train_json(result, cfg) -> dict:
    """The run, its verdicts and the registered version, for scripts (``train --json``)."""

    def number(value):
        return value if isinstance(value, (int, float)) and value == value and abs(value) != float("inf") else None

    return {
        "run_id": result.run_id,
        "config": cfg.name,
        "classes": list(cfg.classes),
        "validation": result.validation,
        "winner": result.winner,
        "winner_reason": result.winner_reason or None,
        "registered_model": cfg.tracking.registered_model,
        "registered_version": result.registered_version,
        "alias": "candidate" if result.registered_version else None,
        "promotion": result.promotion,
        "families": {
            family: {"fit_seconds": number(r.fit_seconds), "metrics": {k: number(v) for k, v in r.metrics.items()}}
            for family, r in result.families.items()
        },
        "oracle": {k: number(v) for k, v in (result.oracle or {}).items()},
        "report_file": str(result.report_file) if result.report_file else None,
    }


def _print_result(result, cfg) -> None:
    from rich.table import Table

    def numbers(value) -> str:
        return "" if value != value else f"{value:.3f}"

    v = cfg.validation
    rows = {
        "holdout": "test set",
        "cv": f"out-of-fold ({v.folds}-fold cross-validation x {v.repeats})",
        "bootstrap": f"optimism-corrected (Harrell's bootstrap, {v.resamples} refits)",
    }[result.validation]
    from painml.evaluation.metrics import label_set_name

    compared = ["models"] + [
        words
        for key, words in (
            ("exact posterior (ceiling)", "the exact-posterior ceiling"),
            ("painDETECT bands", "painDETECT bands"),
        )
        if key in result.comparison.index
    ]
    table = Table(title=f"{rows.capitalize()}, {label_set_name(cfg.classes)} ({cfg.name}): {', '.join(compared)}")
    table.add_column("model")
    for col in result.comparison.columns:
        table.add_column(col.replace("_", " "), justify="right")
    for name, row in result.comparison.iterrows():
        table.add_row(name, *map(numbers, row), style="bold green" if name == result.winner else None)
    console.print(table)
    tools = result.baselines[result.baselines["question"] != "3 classes"]
    table = Table(title="Screening tools on the same rows: is a neuropathic component present?")
    for col in ("tool", "coverage", "sensitivity", "specificity", "balanced accuracy", "AUROC"):
        table.add_column(col, justify="left" if col == "tool" else "right")
    for _, b in tools.iterrows():
        table.add_row(
            b["baseline"],
            f"{b['coverage']:.0%}",
            *map(numbers, b[["sensitivity", "specificity", "balanced_accuracy", "auroc"]]),
        )
    console.print(table)
    for family, r in result.families.items():
        gap = ""
        if result.oracle:
            gap = (
                f"; gap to ceiling: log-loss +{r.metrics['test_log_loss'] / result.oracle['oracle_log_loss'] - 1:.1%}"
                f", macro-F1 {r.metrics['test_macro_f1'] - result.oracle['oracle_macro_f1']:+.3f}"
            )
        console.print(
            f"{family}: fitted in {r.fit_seconds:.1f} s; {cfg.conformal_confidence:.0%} conformal sets "
            f"cover {r.metrics['test_conformal_coverage']:.1%} of {rows} patients{gap}"
        )
        for line in _small_data_lines(r.metrics, cfg.classes):
            console.print(f"    {line}")
    console.print(f"MLflow run {result.run_id}; winner: [bold]{result.winner_reason or result.winner}[/]")
    if result.registered_version:
        console.print(
            f"registered {cfg.tracking.registered_model} version {result.registered_version} with alias 'candidate'"
        )
    if result.promotion:
        console.print(result.promotion)
    if result.report_file:
        console.print(f"reviewer report: [bold]{result.report_file}[/] (also in the run's artifacts: {result.report})")


def _small_data_lines(metrics: dict[str, float], classes: tuple[str, ...]) -> list[str]:
    """Intervals, calibration slopes and stability, when the run estimated them."""
    lines = []
    if "test_log_loss_ci_low" in metrics:
        shown = []
        for key in ("log_loss", "macro_f1", "brier"):
            m = f"test_{key}"
            shown.append(
                f"{key.replace('_', ' ')} {metrics[m]:.3f} ({metrics[m + '_ci_low']:.3f}-{metrics[m + '_ci_high']:.3f})"
            )
        lines.append("95% intervals: " + ", ".join(shown))
    slopes = [
        f"{c} {metrics[f'test_calibration_slope_{c}']:.2f}"
        for c in classes
        if f"test_calibration_slope_{c}" in metrics
        and metrics[f"test_calibration_slope_{c}"] == metrics[f"test_calibration_slope_{c}"]
    ]
    if slopes:
        lines.append("calibration slope (1 is ideal, below 1 too extreme): " + ", ".join(slopes))
    if "stability_mape" in metrics:
        lines.append(
            f"stability across refits: mean absolute change {metrics['stability_mape']:.3f}; "
            f"{metrics['stability_unstable_share']:.1%} of patients change class in over 20% of refits"
        )
    return lines


@app.command()
def promote(
    name: Annotated[str, typer.Option("--name", help="Registered model name.")] = DEFAULT_MODEL_NAME,
    version: Annotated[
        str | None, typer.Option("--version", help="Version to promote; default: the candidate.")
    ] = None,
    data: Annotated[Path | None, typer.Option("--data", help="Labelled held-out file to compare on.")] = None,
    tracking_uri: TrackingOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make the candidate the champion if it beats the champion on the same evaluation."""
    from painml.jobs.promote import NothingToPromote
    from painml.jobs.promote import promote as run_promotion
    from painml.model.bundle import ModelFolderError
    from painml.record.schema import SchemaError
    from painml.tracking.registry import ModelNotFound
    from painml.tracking.store import StoreUnavailable

    try:
        verdict = run_promotion(name, tracking_uri=tracking_uri, version=version, data_path=data)
    except SchemaError as error:
        raise _fail(as_json, f"{data} is not valid", error.report(), 1, error.problems) from None
    except (NothingToPromote, StoreUnavailable, ModelNotFound, ModelFolderError) as error:
        raise _fail(as_json, "nothing was promoted", str(error.args[0] if error.args else error), 2) from None
    if as_json:
        _emit(_promote_json(name, version, str(verdict)))
        return
    console.print(verdict, markup=False)


def _promote_json(name: str, version: str | None, verdict: str) -> dict:
    """The promotion's verdict for scripts: whether the champion moved, to which version, and the sentence."""
    import re

    moved = re.match(r"(?:promoted: )?version (\S+) is now champion", verdict)
    stays = re.match(r"not promoted: champion stays version (\S+?);", verdict) or re.match(
        r"version (\S+) is already champion", verdict
    )
    scores = dict(re.findall(r"(candidate|champion) v\S+ (-?[0-9.]+)", verdict))
    return {
        "name": name,
        "requested_version": version,
        "promoted": moved is not None,
        "champion": moved.group(1) if moved else (stays.group(1) if stays else None),
        "scores": {k: float(v) for k, v in scores.items()},
        "verdict": verdict,
    }


@app.command()
def adapt(
    model: Annotated[
        str, typer.Option("--model", help="Source: models:/NAME@alias, models:/NAME/VERSION, runs:/... or a folder.")
    ],
    data: Annotated[Path, typer.Option("--data", help="The site's labelled patients (CSV or Parquet).")],
    config: Annotated[
        Path | None, typer.Option("--config", help="Adapt config (YAML): labels, folds, repeats, source rows.")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Register as a version of this model; default: the source's.")
    ] = None,
    tracking_uri: TrackingOption = None,
    experiment: Annotated[str | None, typer.Option("--experiment", help="MLflow experiment name.")] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the resampling and the refits.")] = 0,
) -> None:
    """Adapt a model trained elsewhere to a site's labelled patients: relatedness, external validation, the
    updating ladder (smallest change first); registers the result with the alias 'adapted'."""
    from painml.config import ConfigError
    from painml.jobs.adapt import load_adapt_config, run_adapt
    from painml.model.bundle import ModelFolderError
    from painml.model.updating import LabelMismatch
    from painml.record.schema import SchemaError
    from painml.tracking.registry import ModelNotFound
    from painml.tracking.store import StoreUnavailable

    try:
        result = run_adapt(
            model,
            data,
            config=load_adapt_config(config),
            name=name,
            tracking_uri=tracking_uri,
            experiment=experiment,
            seed=seed,
            console=console,
        )
    except (ModelNotFound, StoreUnavailable, ModelFolderError) as error:
        raise _fail(False, "the source model cannot be loaded", str(error), 2) from None
    except SchemaError as error:
        raise _fail(False, f"{data} is not valid", error.report(), 1) from None
    except ConfigError as error:
        raise _fail(False, "invalid configuration", str(error), 2) from None
    except LabelMismatch as error:
        raise _fail(False, "the source model and the site do not fit together", str(error), 2) from None
    for note in result.notes:
        console.print(f"note: {note}")


@app.command()
def explain(
    model: Annotated[
        str, typer.Option("--model", help="models:/NAME@alias, models:/NAME/VERSION, runs:/... or a folder.")
    ],
    input: Annotated[Path, typer.Option("--input", help="Cohort file (CSV or Parquet) to explain.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the plots.")],
    patient_id: Annotated[
        list[str] | None, typer.Option("--patient-id", help="Also draw this patient's waterfalls (repeatable).")
    ] = None,
    tracking_uri: TrackingOption = None,
) -> None:
    """SHAP plots (beeswarm, bar, class comparison, dependence, waterfalls) for any cohort."""
    from painml.jobs.explain import explain_command
    from painml.model.bundle import ModelFolderError
    from painml.record.schema import SchemaError
    from painml.tracking.registry import ModelNotFound
    from painml.tracking.store import StoreUnavailable

    if out.exists() and not out.is_dir():
        err.print(f"--out {out} is a file: give a folder for the plots (it is created if missing)", markup=False)
        raise typer.Exit(2)
    try:
        written = explain_command(model, input, out, patient_id or None, tracking_uri)
    except SchemaError as error:
        err.print(f"[red]{input} is not valid[/]\n{error.report()}")
        raise typer.Exit(1) from None
    except KeyError as error:
        err.print(f"[red]{error.args[0]}[/]")
        raise typer.Exit(2) from None
    except (StoreUnavailable, ModelNotFound, ModelFolderError) as error:
        err.print(f"no model to explain: {error}", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except OSError as error:  # the input or the output folder
        err.print(f"{error.filename or out}: {error.strerror or error}", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None
    console.print(f"wrote {len(written)} files to {out}")


@app.command()
def report(
    run: Annotated[
        str, typer.Option("--run", help="MLflow run id of a training run, or its first characters (as printed).")
    ],
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the HTML file here; default: beside the training report.")
    ] = None,
    tracking_uri: TrackingOption = None,
) -> None:
    """The reviewer report of a training run: one self-contained HTML file, logged to the run."""
    from painml.jobs.report import report_command
    from painml.tracking.runs import RunNotFound

    try:
        written = report_command(run, tracking_uri, out)
    except (RunNotFound, ValueError, FileNotFoundError) as error:
        err.print(f"[red]cannot report on run {run}[/]: {error.args[0] if error.args else error}")
        raise typer.Exit(2) from None
    console.print(f"report written to {written}")


@app.command()
def quickstart(
    config: ConfigOption = Path("configs/default.yaml"),
    n: Annotated[int, typer.Option("--n", min=1000, help="Cohort size for the realism check.")] = 40_000,
) -> None:
    """The main job on the embedded defaults: realism check, training, registry."""
    console.rule("1. Is the simulated cohort realistic?")
    try:
        realism(preset="pain_clinic", n=n, seed=11)
    except typer.Exit as stop:
        if stop.exit_code:
            raise
    console.rule(f"2. Train both model families ({config}), explain the winner, write the report")
    train(config=config, data=None, tracking_uri=None, experiment=None, seed=None, promote=False)
    console.rule("3. Score a batch file with the champion")
    _score_sample(Path("data/sample_cohort.csv"), Path("outputs/sample_predictions.csv"))


def _score_sample(source: Path, output: Path) -> None:
    """Batch-score the sample cohort and show a few patients with their reasons."""
    import pandas as pd

    from painml.serving.batch import score_file
    from painml.serving.predictor import Predictor

    output.parent.mkdir(parents=True, exist_ok=True)
    predictor = Predictor.from_uri()
    result = score_file(predictor, source, output, reasons=3, progress=False)
    console.print(
        f"scored {result.rows_scored:,} patients from {source} with {predictor.name} "
        f"v{predictor.version} into [bold]{output}[/] in {result.seconds:.1f} s"
    )
    shown = pd.read_csv(output).head(5)
    for _, row in shown.iterrows():
        classes = ", ".join(f"{c} {row[f'p_{c}']:.0%}" for c in predictor.classes)
        console.print(
            f"[bold]{row['patient_id']}[/]: {row['predicted_class']} ({classes}); "
            f"prediction set {{{row['prediction_set'].replace('|', ', ')}}}"
        )
        for i in (1, 2, 3):
            if isinstance(row.get(f"reason_{i}"), str):
                console.print(f"    {row[f'reason_{i}']}")


def main() -> None:  # pragma: no cover - console entry
    app()
