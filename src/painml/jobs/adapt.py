"""Adapting a model trained elsewhere to a site's labelled patients: relatedness, external validation, the
updating ladder, one MLflow run, a new registered version with the alias ``adapted``.

1. Relatedness, before the site's labels are used: the membership model's AUROC, standardised differences,
   the blocks the site records, and the site's class mix estimated by EM from the source's probabilities.
2. External validation of the source as it is on the site's labels, with intervals at this n.
3. The updating ladder (:mod:`painml.model.updating`), every step scored by repeated cross-validation on the
   site's rows; the simplest step within one standard error of the best is registered.

The adapted model is an ordinary painml model: compiled, explained, served and reported like any other. Its
conformal threshold comes from the chosen step's out-of-fold probabilities on the site, and its profile of
familiar inputs is the source's and the site's together.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from rich.console import Console
from threadpoolctl import threadpool_limits

from painml.config import (
    ConfigError,
    FeatureConfig,
    FileData,
    LabelConfig,
    ModelConfig,
    TrackingConfig,
    TrainConfig,
    load_config,
)
from painml.evaluation import relatedness
from painml.evaluation.clinical import clinical_evaluation
from painml.evaluation.metrics import auroc, baseline_metrics, classification_metrics, subgroup_metrics
from painml.evaluation.resampling import resampled_metrics
from painml.evaluation.sample_size import assess
from painml.model.bundle import ModelBundle
from painml.model.conformal import MONDRIAN_MIN_ROWS, class_thresholds, conformal_threshold, coverage, prediction_sets
from painml.model.dataset import Dataset, load_dataset, load_labelled
from painml.model.fit import training_profile
from painml.model.metadata import TrainingProfile
from painml.model.updating import (
    Affine,
    AsIs,
    LadderResult,
    Pooled,
    Revision,
    Rung,
    SiteOnly,
    Source,
    run_ladder,
)
from painml.record.files import read_raw
from painml.record.problems import Problem, SchemaError
from painml.simulator.simulate import simulate
from painml.tracking import registry, runs, store

ADAPTED = "adapted"


class AdaptConfig(BaseModel):
    """What a clinic may say about its site file and the ladder (``--config FILE``, YAML); all optional."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    labels: LabelConfig | None = None
    """The site's classes and how its recorded labels reach them (as in training configs); the same map sends
    the source's classes to the site's. Default: the source model's classes."""
    folds: int = Field(5, ge=2)
    repeats: int = Field(2, ge=1)
    conformal_confidence: float | None = Field(None, gt=0.5, lt=0.999)
    """Default: the source model's."""
    source_rows: Path | None = None
    """A labelled file like the source's training data (for the membership model and the pooled step);
    default: drawn from the simulator preset the source was trained on, when it was."""
    source_rows_n: int = Field(2_000, ge=100)
    """Source-like rows drawn from the simulator."""
    pooled_weights: tuple[float, ...] = (0.25, 1.0, 4.0)
    """Total weight of the source-like rows relative to the site's, tried by the ladder."""


def load_adapt_config(path: str | Path | None) -> AdaptConfig:
    if path is None:
        return AdaptConfig()
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
        if isinstance(raw.get("labels"), list):
            raw["labels"] = {"classes": raw["labels"]}
        return AdaptConfig.model_validate(raw)
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(str(path), [str(error)]) from None
    except ValidationError as error:
        raise ConfigError(str(path), [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()]) from None


@dataclass
class AdaptResult:
    run_id: str
    name: str
    version: str | None
    chosen: str
    reason: str
    ladder: pd.DataFrame
    relatedness: dict[str, Any]
    source_metrics: dict[str, float]
    adapted_metrics: dict[str, float]
    notes: list[str]


STEPS = {
    "as-is": (0, "the source model as it is"),
    "a": (1, "class intercepts (a prior shift)"),
    "b": (2, "temperature and class intercepts"),
    "b-full": (3, "multinomial logistic recalibration of the source logits"),
    "c": (4, "revision: corrections learned with the recalibrated source as offset"),
    "d": (5, "refit on the site alone (small-data defaults)"),
    "e": (6, "site plus weighted source-like rows"),
}


def run_adapt(
    source_uri: str,
    site_file: str | Path,
    *,
    config: AdaptConfig | None = None,
    name: str | None = None,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    seed: int = 0,
    console: Console | None = None,
) -> AdaptResult:
    """Relatedness, external validation, the ladder, one MLflow run, a new version of ``name`` aliased ``adapted``."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    console = console or Console()
    config = config or AdaptConfig()
    if not Path(site_file).is_file():
        raise SchemaError([Problem(None, None, None, f"no such file: {site_file}")])
    uri = store.resolve_tracking_uri(tracking_uri)
    located = registry.locate(source_uri, uri)
    bundle = ModelBundle.load(located.folder)
    name = name or located.name or bundle.metadata.registered_model
    source_cfg = _source_config(located)
    cfg = _site_config(bundle, source_cfg, config, site_file, name, experiment, seed)
    source = Source.of(bundle.estimator, cfg.classes, dict(cfg.labels.map))
    console.print(
        f"source: {located.uri}" + (f" ({located.name} version {located.version})" if located.version else "")
    )
    data = load_dataset(cfg)
    for note in data.label_notes:
        console.print(f"  {note}")
    classes = list(cfg.classes)
    y = data.y
    console.print(f"site: {site_file}, {len(y):,} labelled patients: " + ", ".join(
        f"{c} {n:,}" for c, n in data.class_counts(cfg.classes).items()
    ))  # fmt: skip
    notes: list[str] = []
    like = _source_like(bundle, config, cfg, seed, notes)

    console.rule("1. Relatedness (no site labels used)")
    related, related_tables = _relatedness(source, bundle, data, like, classes, notes, seed, console)

    console.rule("2. The source as it is, on the site's labelled patients")
    order = [source.classes.index(c) for c in classes]
    as_is = source.proba(data.X)[:, order]
    source_metrics = resampled_metrics(y, as_is[None], classes, seed=seed)
    clinical = clinical_evaluation(y, as_is, classes, data.records.frame, seed=seed)
    source_metrics |= clinical.metrics
    related_tables["source_calibration.csv"] = clinical.calibration
    if clinical.decision is not None:
        related_tables["source_decision_curve.csv"] = clinical.decision
    _print_validation(console, source_metrics, classes, len(y))

    console.rule("3. The updating ladder, scored by repeated cross-validation on the site")
    n_features = len(source.pipeline.named_steps["features"].get_feature_names_out())
    size = _sample_size(data, cfg, as_is, n_features)
    source_metrics["sample_size_parameters_supported"] = size.parameters_supported
    console.print(
        f"  sample size (Riley 2019/2020, Pate 2023; each class pair's C as the source achieves it here): "
        f"{len(y):,} patients support about {size.parameters_supported:.1f} parameters per class contrast. Per "
        f"contrast, intercepts estimate 1, a full recalibration {len(source.model_classes) + 1}, a revision or "
        f"refit up to {n_features + 1}: steps beyond the budget must earn their place in the resampling below"
    )
    rows = None if like is None else (like["data"].X, like["data"].y)
    rungs = ladder_rungs(source, cfg, source_rows=rows, weights=config.pooled_weights, seed=seed)
    sorted_index = np.array([source.classes.index(v) for v in y])
    with threadpool_limits(limits=1, user_api="blas"):
        ladder = run_ladder(
            rungs, data.X, sorted_index, n_features=n_features, folds=config.folds, repeats=config.repeats, seed=seed
        )
    table = ladder.table.assign(step=lambda t: t["rung"].map(lambda r: STEPS[r.split(":")[0]][1]))
    _print_ladder(console, table)
    console.print(f"chosen: [bold]{ladder.chosen}[/]: {ladder.reason}")

    adapted, adapted_metrics, oof = _adapted_bundle(bundle, ladder, cfg, data, source, located, like, seed)
    with runs.start_run(store.ensure_experiment(cfg.tracking.experiment, uri), f"adapt-{name}") as run_id:
        _log(cfg, data, located, related, related_tables, source_metrics, adapted_metrics, table, ladder, oof, notes)
        model_uri = _log_model(adapted, adapted.metadata.family)
    store.use_store(uri)
    version = registry.register_version(
        model_uri, name, tags={"family": adapted.metadata.family, "config": cfg.name, "adapted_step": ladder.chosen}
    )
    registry.set_alias(name, ADAPTED, version)
    console.print(f"registered {name} version {version} with aliases 'candidate' and '{ADAPTED}' (run {run_id})")
    return AdaptResult(
        run_id, name, version, ladder.chosen, ladder.reason, table, related, source_metrics, adapted_metrics, notes
    )


def _sample_size(data: Dataset, cfg: TrainConfig, proba: np.ndarray, n_features: int):
    """Riley/Pate at the site's n, with each class pair's C taken from the source's probabilities on the site."""
    classes = list(cfg.classes)
    pairwise = {}
    for i, a in enumerate(classes):
        for b in classes[i + 1 :]:
            rows = (data.y == a) | (data.y == b)
            share = proba[rows, classes.index(b)] / (proba[rows, classes.index(a)] + proba[rows, classes.index(b)])
            pairwise[(a, b)] = max(auroc(data.y[rows] == b, share), 0.51)
    return assess(len(data.y), data.class_counts(cfg.classes), n_features + 1, pairwise, c_method="exact")


# --------------------------------------------------------------------------- configs


def _source_config(located: registry.Located) -> TrainConfig | None:
    """The source run's training config, when the source came from a painml run that logged one."""
    if not located.run_id:
        return None
    try:
        store.use_store(located.store or store.resolve_tracking_uri(None))
        with tempfile.TemporaryDirectory() as tmp:
            path = runs.download(located.run_id, "config.yaml", tmp)
            return None if path is None else load_config(path)
    except (ConfigError, OSError):
        return None


def _site_config(
    bundle: ModelBundle,
    source_cfg: TrainConfig | None,
    config: AdaptConfig,
    site_file: str | Path,
    name: str,
    experiment: str | None,
    seed: int,
) -> TrainConfig:
    """The training config that describes the adapted model: the site file, the site's labels, the source's family
    and features, validated by cross-validation (so ``painml report`` and ``painml promote`` read it as any run's)."""
    family = bundle.metadata.family
    settings = {"family": family, **dict(bundle.metadata.hyperparameters)}
    model_cfg = TypeAdapter(ModelConfig).validate_python(settings)
    features = source_cfg.features if source_cfg is not None else FeatureConfig()
    labels = config.labels or LabelConfig(classes=bundle.classes)
    confidence = config.conformal_confidence or bundle.metadata.conformal_confidence or 0.9
    try:
        return TrainConfig(
            name=f"adapt-{name}",
            seed=seed,
            data=FileData(source="file", path=Path(site_file)),
            labels=labels,
            features=features,
            models=(model_cfg,),
            validation={"method": "cv", "folds": config.folds, "repeats": config.repeats},
            calibration="none",
            conformal_confidence=confidence,
            tracking=TrackingConfig(
                experiment=experiment or (source_cfg.tracking.experiment if source_cfg else "painml"),
                registered_model=name,
            ),
        )
    except ValidationError as error:
        raise ConfigError("adapt", [e["msg"] for e in error.errors()]) from None


def _source_like(bundle: ModelBundle, config: AdaptConfig, cfg: TrainConfig, seed: int, notes: list[str]):
    """Labelled rows like the source's training data (a file from the config, else the simulator preset the
    source was drawn from), with labels in the site's classes and the source's own; None when there are none."""
    lineage = bundle.metadata.lineage
    if config.source_rows is not None:
        raw, where = read_raw(config.source_rows), f"file {config.source_rows}"
    elif lineage.get("source") == "simulate":
        overrides = {k: lineage[k] for k in ("label", "response_level") if lineage.get(k) is not None}
        n = min(config.source_rows_n, int(lineage.get("n", config.source_rows_n)))
        raw = simulate(lineage["preset"], n, int(lineage.get("seed", 0)) + 1000 + seed, **overrides)
        where = f"{n:,} rows drawn from the simulator preset {lineage['preset']} the source was trained on"
    else:
        notes.append(
            "no source-like rows (the source was not trained on the simulator and the config names no "
            "source_rows file): no membership model, no standardised differences, no pooled step"
        )
        return None
    original = raw["pain_type"].astype(str).str.strip().str.lower().value_counts(normalize=True).to_dict()
    data = load_labelled(raw, cfg, {}, where, where)
    return {"data": data, "where": where, "source_shares": original}


# --------------------------------------------------------------------------- relatedness


def _relatedness(source, bundle, data: Dataset, like, classes, notes, seed, console) -> tuple[dict, dict]:
    figures: dict[str, Any] = {}
    tables: dict[str, pd.DataFrame] = {}
    site_frame = data.records.frame
    blocks = relatedness.blocks_recorded(site_frame)
    seen = bundle.metadata.training_profile.blocks_seen
    for block, share in blocks.items():
        figures[f"site_records_{block}"] = share
        source_word = (
            "" if seen is None else (" (the source saw it)" if block in seen else " (the source never saw it)")
        )
        console.print(f"  {block}: recorded for {share:.0%} of the site's patients{source_word}")
        if share == 0 and seen is not None and block in seen:
            notes.append(f"the site records no {block}: the source used it; its patients are scored without it")
    if like is not None:
        auc = relatedness.membership_auroc(like["data"].records.frame, site_frame, seed=seed)
        figures["membership_auroc"] = auc
        console.print(
            f"  membership model (source-like rows: {like['where']}): AUROC {auc:.3f}, "
            f"{relatedness.describe_membership(auc)}"
        )
        smd = relatedness.standardised_differences(like["data"].records.frame, site_frame)
        tables["relatedness_smd.csv"] = smd
        top = smd.dropna(subset=["smd"]).head(5)
        console.print(
            "  largest standardised differences: " + ", ".join(f"{r.feature} {r.smd:+.2f}" for r in top.itertuples())
        )
        figures["smd_max_abs"] = float(smd["smd"].abs().max())
        figures["smd_share_above_0.1"] = float((smd["smd"].abs() > 0.1).mean())
    source_prior = _source_prior(source, like)
    if source_prior is None:
        notes.append("the source's class mix is unknown: no EM estimate of the site's")
    else:
        raw = _softmax(source.logits(data.X))
        shift = relatedness.em_prior_adjustment(raw, source_prior)
        site_prior = source.P @ shift.site_prior
        recorded = data.class_counts(tuple(classes))
        n = sum(recorded.values())
        for c in classes:
            k = source.classes.index(c)
            figures[f"em_class_mix_{c}"] = float(site_prior[k])
            figures[f"site_class_mix_{c}"] = recorded[c] / n
        console.print(
            "  class mix estimated without labels (EM, Saerens 2002): "
            + ", ".join(f"{c} {figures[f'em_class_mix_{c}']:.0%}" for c in classes)
            + "; recorded: "
            + ", ".join(f"{c} {figures[f'site_class_mix_{c}']:.0%}" for c in classes)
        )
        adjusted = shift.proba @ source.P.T
        y_index = np.array([source.classes.index(v) for v in data.y])
        figures["em_adjusted_log_loss"] = float(
            -np.log(np.clip(adjusted[np.arange(len(y_index)), y_index], 1e-15, 1)).mean()
        )
    return figures, tables


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def _source_prior(source: Source, like) -> np.ndarray | None:
    """The class mix the source's probabilities reflect: the source-like rows' recorded labels, source classes."""
    if like is None:
        return None
    shares = like["source_shares"]
    prior = np.array([shares.get(c.lower(), 0.0) for c in source.model_classes])
    return prior / prior.sum() if prior.sum() > 0 and (prior > 0).all() else None


# --------------------------------------------------------------------------- ladder and the adapted bundle


def ladder_rungs(
    source: Source,
    cfg: TrainConfig,
    *,
    source_rows: tuple[pd.DataFrame, np.ndarray] | None = None,
    weights: tuple[float, ...] = AdaptConfig().pooled_weights,
    seed: int = 0,
) -> list[Rung]:
    """The ladder the command climbs: intercepts and temperature only when the label sets match one to one, the
    pooled step only with source-like rows (features, labels in the site's classes), once per weight."""
    model_cfg = cfg.models[0]
    rungs: list[Rung] = [AsIs("as-is", 0, STEPS["as-is"][1], source)]
    if source.one_to_one:
        rungs += [
            Affine("a", 1, STEPS["a"][1], source, "intercepts"),
            Affine("b", 2, STEPS["b"][1], source, "temperature"),
        ]
    rungs += [
        Affine("b-full", 3, STEPS["b-full"][1], source, "recalibration"),
        Revision("c", 4, STEPS["c"][1], source, seed),
        SiteOnly("d", 5, STEPS["d"][1], model_cfg, cfg),
    ]
    if source_rows is not None:
        X, y = source_rows
        rungs += [Pooled(f"e:{w:g}", 6, STEPS["e"][1], model_cfg, cfg, X, y, w) for w in weights]
    return rungs


def combined_profile(source: TrainingProfile, site: TrainingProfile) -> TrainingProfile:
    """Inputs familiar to either the source's training data or the site's."""
    numeric = dict(source.numeric_ranges)
    for name, (lo, hi) in site.numeric_ranges.items():
        a, b = numeric.get(name, (lo, hi))
        numeric[name] = (min(a, lo), max(b, hi))
    categories = dict(source.categories)
    for name, values in site.categories.items():
        categories[name] = tuple(sorted(set(categories.get(name, ())) | set(values)))
    blocks = (
        None if source.blocks_seen is None else tuple(sorted(set(source.blocks_seen) | set(site.blocks_seen or ())))
    )
    return TrainingProfile(numeric, categories, blocks, tuple(sorted(set(source.sites) | set(site.sites))))


def _adapted_bundle(bundle, ladder: LadderResult, cfg, data: Dataset, source: Source, located, like, seed):
    classes = list(cfg.classes)
    order = [source.classes.index(c) for c in classes]
    oof = ladder.oof[ladder.chosen][:, :, order]
    y_index = np.array([classes.index(v) for v in data.y])
    pooled = oof.reshape(-1, len(classes))
    pooled_y = np.tile(y_index, oof.shape[0])
    confidence = cfg.conformal_confidence
    by_class = None
    if np.bincount(y_index, minlength=len(classes)).min() >= MONDRIAN_MIN_ROWS:
        by_class = tuple(class_thresholds(pooled, pooled_y, confidence))
    qhat = conformal_threshold(pooled, pooled_y, confidence)
    lineage = {
        **data.lineage,
        "adapted_from": located.uri,
        "source_name": located.name,
        "source_version": located.version,
        "source_run": located.run_id,
        "source_lineage": dict(bundle.metadata.lineage),
        "adapted_step": ladder.chosen,
    }
    detail = {
        f"adapted_{k}": v
        for k, v in ladder.fitted.detail.items()
        if k in ("trees_added", "penalty", "weight", "A", "b")
    }
    profile = combined_profile(bundle.metadata.training_profile, training_profile(data.records, np.arange(len(data.y))))
    metadata = replace(
        bundle.metadata,
        classes=tuple(classes),
        registered_model=cfg.tracking.registered_model,
        config=cfg.name,
        lineage=lineage,
        conformal_confidence=confidence,
        conformal_qhat=qhat,
        conformal_qhat_by_class=by_class,
        validation="cv",
        training_profile=profile,
        hyperparameters={**dict(bundle.metadata.hyperparameters), "adapted_step": ladder.chosen, **detail},
        temperature_factor=None,
        metrics={},
        feature_means={} if ladder.chosen.startswith(("d", "e")) else dict(bundle.metadata.feature_means),
    )  # fmt: skip
    adapted = ModelBundle(ladder.fitted.pipeline, metadata)
    adapted = adapted.with_metadata(temperature_factor=adapted.temperature_factor)
    metrics = resampled_metrics(data.y, oof, classes, seed=seed)
    metrics |= clinical_evaluation(data.y, oof[0], classes, data.records.frame, seed=seed).metrics
    thresholds = metadata.thresholds if by_class is None else np.asarray(by_class)
    covered, size = coverage(prediction_sets(pooled, thresholds), pooled_y)
    metrics["test_conformal_coverage"], metrics["test_conformal_set_size"] = covered, size
    adapted = adapted.with_metadata(metrics={k: float(v) for k, v in metrics.items() if np.isfinite(v)})
    return adapted, metrics, oof


# --------------------------------------------------------------------------- output and logging


def _print_validation(console: Console, m: dict[str, float], classes: list[str], n: int) -> None:
    for key in ("log_loss", "brier", "macro_f1"):
        k = f"test_{key}"
        if k in m:
            console.print(
                f"  {key.replace('_', ' ')} {m[k]:.3f} (95% interval {m[k + '_ci_low']:.3f}-{m[k + '_ci_high']:.3f})"
            )
    for c in classes:
        i, s = m.get(f"test_calibration_intercept_{c}"), m.get(f"test_calibration_slope_{c}")
        if i is not None and s is not None:
            auc = [m.get(f"test_auroc_{c}{end}", float("nan")) for end in ("", "_ci_low", "_ci_high")]
            console.print(
                f"  {c}: AUROC {auc[0]:.3f} ({auc[1]:.3f}-{auc[2]:.3f}); "
                f"calibration intercept {i:+.2f} ({m[f'test_calibration_intercept_{c}_ci_low']:+.2f} to "
                f"{m[f'test_calibration_intercept_{c}_ci_high']:+.2f}), slope {s:.2f} "
                f"({m[f'test_calibration_slope_{c}_ci_low']:.2f}-{m[f'test_calibration_slope_{c}_ci_high']:.2f})"
            )
    console.print(f"  (intervals from resampling the site's {n:,} patients: that is how precisely this n can tell)")


def _print_ladder(console: Console, table: pd.DataFrame) -> None:
    from rich.table import Table

    shown = Table(title="Updating ladder: resampled (out-of-fold) log-loss on the site, simplest first")
    for col in ("step", "what", "parameters", "log-loss", "SE", "mean AUROC", ""):
        shown.add_column(col, justify="left" if col in ("step", "what", "") else "right")
    for row in table.itertuples():
        shown.add_row(
            row.rung, row.step, str(row.parameters),
            "" if row.log_loss != row.log_loss else f"{row.log_loss:.4f}",
            "" if row.log_loss_se != row.log_loss_se else f"{row.log_loss_se:.4f}",
            "" if row.auroc != row.auroc else f"{row.auroc:.3f}",
            "chosen" if row.chosen else row.note,
            style="bold green" if row.chosen else None,
        )  # fmt: skip
    console.print(shown)


def _comparison(
    table: pd.DataFrame, ladder: LadderResult, classes: list[str], sorted_classes: list[str], y
) -> pd.DataFrame:
    """The ladder as the report's model comparison: every step's out-of-fold metrics (first repeat)."""
    order = [sorted_classes.index(c) for c in classes]
    keys = ["macro_f1", "balanced_accuracy", "accuracy", "log_loss", "brier", "ece", "auroc_neuropathic"]
    rows = []
    for rung, proba in ladder.oof.items():
        m = classification_metrics(y, proba[0][:, order], classes)
        rows.append(
            {"model": f"{rung}" + (" (chosen)" if rung == ladder.chosen else ""), **{k: m.get(k, np.nan) for k in keys}}
        )
    return pd.DataFrame(rows, columns=["model", *keys]).set_index("model")


def _log(cfg, data, located, related, related_tables, source_metrics, adapted_metrics, table, ladder, oof, notes):
    git = runs.git_state(Path(__file__).parent)
    family = cfg.models[0].family
    classes = list(cfg.classes)
    tags = {
        "painml.config": cfg.name,
        "painml.winner": family,
        "painml.winner_reason": f"adapted by step {ladder.chosen}: {ladder.reason}",
        "painml.validation": "cv",
        "painml.adapted_step": ladder.chosen,
        "painml.adapted_from": located.uri,
        "git.commit": git["commit"] or "unknown",
        "git.dirty": str(git["dirty"]),
        "data.source": data.source,
    }
    params = {
        **cfg.flat(),
        "validation.used": "cv",
        "source.uri": located.uri,
        "source.name": located.name or "",
        "source.version": located.version or "",
        "source.run": located.run_id or "",
        "site.sha256": data.lineage["sha256"],
        "site.rows": len(data.y),
        **{f"data.class_count.{c}": n for c, n in data.class_counts(cfg.classes).items()},
    }
    metrics = {f"relatedness.{k}": v for k, v in related.items()}
    metrics |= {f"source.{k}": v for k, v in source_metrics.items()}
    metrics |= dict(adapted_metrics)
    for row in table.itertuples():
        if row.log_loss == row.log_loss:
            metrics[f"ladder.{row.rung}.log_loss"] = row.log_loss
            metrics[f"ladder.{row.rung}.log_loss_se"] = row.log_loss_se
    sorted_classes = sorted(classes)
    predictions = pd.DataFrame(oof[0], columns=[f"p_{c}" for c in classes]).assign(row=np.arange(len(data.y)))
    lineage = {
        **data.lineage,
        "adapted_from": located.uri,
        "source_version": located.version,
        "source_run": located.run_id,
    }
    texts = {
        "config.yaml": yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False),
        "metrics.json": json.dumps(metrics, indent=2, default=float),
        "lineage.json": json.dumps(lineage, indent=2, default=str),
        "data_notes.txt": "\n".join([*data.label_notes, *notes]) + "\n",
        "adapt.txt": f"chosen step: {ladder.chosen}\nwhy: {ladder.reason}\n",
    }
    tables = {
        "ladder.csv": (table, False),
        "comparison.csv": (_comparison(table, ladder, classes, sorted_classes, data.y), True),
        f"predictions_{family}.csv": (predictions, False),
        f"subgroups_{family}.csv": (subgroup_metrics(data.records.frame, data.y, oof[0], classes), False),
        "baselines.csv": (baseline_metrics(data.records.frame, data.y, classes), False),
        **{name: (frame, False) for name, frame in related_tables.items()},
    }
    runs.log_run(
        tags=tags,
        params=params,
        metrics=metrics,
        training=data.X.assign(pain_type=data.y),
        source=data.source,
        texts=texts,
        tables=tables,
        figures={},
    )


def _log_model(bundle: ModelBundle, name: str) -> str:
    from painml.jobs.train import _log_model as log_model

    return log_model(bundle, name)
