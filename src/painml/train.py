"""Training: config -> data -> split -> both families -> evaluation -> MLflow -> registry.

One run holds every family of the config; metric keys are prefixed by the
family (``gbm.test_log_loss``) and the winner's are also logged unprefixed
(``test_log_loss``), so runs compare on the same keys whichever family won.
The ceiling (``oracle_*``) is logged when the data carries the simulator's
exact posterior.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import loguniform, uniform
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from painml import evaluate, tracking
from painml.bundle import ModelBundle
from painml.columns import BLOCKS, BY_NAME, FEATURE_COLUMNS
from painml.config import FileData, GbmConfig, TrainConfig, higher_is_better
from painml.features import build_features
from painml.models import make_classifier
from painml.predict import Predictor, conformal_threshold, prediction_sets
from painml.schema import Records, load_records

SPLITS = ("train", "calibration", "conformal", "test")


@dataclass
class Dataset:
    records: Records
    lineage: dict[str, Any]
    source: str

    @property
    def X(self) -> pd.DataFrame:
        return self.records.features

    @property
    def y(self) -> np.ndarray:
        return self.records.label.to_numpy(dtype=object)


@dataclass
class FamilyResult:
    family: str
    bundle: ModelBundle
    metrics: dict[str, float]
    proba: np.ndarray
    fit_seconds: float
    artifacts: dict[str, Any] = field(default_factory=dict)


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


def load_dataset(cfg: TrainConfig) -> Dataset:
    """The training data named by the config, validated against the schema (labels required)."""
    if isinstance(cfg.data, FileData):
        path = Path(cfg.data.path)
        records = load_records(path, require_label=True, classes=cfg.labels)
        lineage = {"source": "file", "path": str(path.resolve()), "sha256": tracking.file_sha256(path),
                   "rows": len(records.frame)}
        return Dataset(records, lineage, str(path))
    from painml.simulate import simulate

    d = cfg.data
    frame = simulate(d.preset, d.n, d.seed)
    records = load_records(frame, require_label=True, classes=cfg.labels)
    lineage = {"source": "simulate", "preset": d.preset, "n": d.n, "seed": d.seed, "rows": len(frame)}
    return Dataset(records, lineage, f"simulator preset={d.preset} n={d.n} seed={d.seed}")


def split_rows(y: np.ndarray, cfg: TrainConfig) -> dict[str, np.ndarray]:
    """Disjoint train / calibration / conformal / test row positions; deterministic for a seed.

    The calibration share of the config is halved between temperature
    calibration and the conformal threshold, which must not see the same rows.
    """
    s, seed = cfg.split, cfg.seed
    idx = np.arange(len(y))

    def cut(rows: np.ndarray, share: float) -> tuple[np.ndarray, np.ndarray]:
        strat = y[rows] if s.stratify else None
        a, b = train_test_split(rows, test_size=share, stratify=strat, random_state=seed)
        return np.sort(a), np.sort(b)

    rest, test = cut(idx, s.test_size)
    train, held = cut(rest, s.calibration_size / (1 - s.test_size))
    calibration, conformal = cut(held, 0.5)
    return {"train": train, "calibration": calibration, "conformal": conformal, "test": test}


VALIDATION_SHARE = 0.1
SEARCH_SPACE = {
    "gbm": {"learning_rate": loguniform(0.02, 0.2), "num_leaves": [4, 7, 15, 31], "min_child_samples": [20, 40, 80, 160],
            "reg_lambda": loguniform(0.1, 20), "colsample": uniform(0.4, 0.6)},
    "logistic": {"C": loguniform(1e-3, 10)},
}


def _probe(model_cfg, cfg: TrainConfig, Xt: pd.DataFrame, y: np.ndarray, fit: np.ndarray, val: np.ndarray):
    """Fit on ``fit`` rows and score on ``val`` rows: (validation log-loss, trees used or None)."""
    from sklearn.metrics import log_loss

    model = make_classifier(model_cfg, cfg.class_weight, cfg.seed)
    if isinstance(model_cfg, GbmConfig) and model_cfg.early_stopping_rounds:
        import lightgbm

        with warnings.catch_warnings():
            # eval_X/eval_y, the replacement, does not encode string labels in LightGBM 4.7
            warnings.filterwarnings("ignore", message=".*'eval_set' is deprecated")
            model.fit(Xt.iloc[fit], y[fit], eval_set=[(Xt.iloc[val], y[val])],
                      callbacks=[lightgbm.early_stopping(model_cfg.early_stopping_rounds, verbose=False)])
        trees = model.best_iteration_ or model_cfg.n_estimators
    else:
        model.fit(Xt.iloc[fit], y[fit])
        trees = None
    return log_loss(y[val], model.predict_proba(Xt.iloc[val]), labels=model.classes_), trees


def search_hyperparameters(model_cfg, cfg: TrainConfig, Xt: pd.DataFrame, y: np.ndarray, fit: np.ndarray,
                           val: np.ndarray) -> tuple[Any, list[dict]]:
    """Random search on the validation slice until ``n_iter`` trials or the time budget is spent."""
    from sklearn.model_selection import ParameterSampler

    deadline = time.perf_counter() + cfg.search.time_budget_s
    best, best_loss, trials = model_cfg, _probe(model_cfg, cfg, Xt, y, fit, val)[0], []
    space = ParameterSampler(SEARCH_SPACE[model_cfg.family], n_iter=cfg.search.n_iter, random_state=cfg.seed)
    for params in space:
        if time.perf_counter() > deadline:
            break
        trial = model_cfg.model_copy(update={k: (v.item() if hasattr(v, "item") else v) for k, v in params.items()})
        loss = _probe(trial, cfg, Xt, y, fit, val)[0]
        trials.append({**params, "validation_log_loss": loss})
        if loss < best_loss:
            best, best_loss = trial, loss
    return best, trials


def fit_family(model_cfg, cfg: TrainConfig, X: pd.DataFrame, y: np.ndarray, rows: dict[str, np.ndarray]):
    """Fit features + classifier on the train rows, then calibrate on the calibration rows.

    Hyper-parameters come from the config, or from a random search on a
    validation slice of the training rows when ``search.enabled``. The boosted
    model finds its number of trees by early stopping on that slice and is
    refitted on all training rows at that size (scaled for the extra rows), so
    the stored model holds exactly the trees it uses: TreeSHAP explains every
    stored tree. Returns the fitted estimator and the chosen model config.
    """
    features = build_features(model_cfg.family, cfg.features.groups, cfg.features.missing_indicators)
    train = rows["train"]
    Xt, yt = features.fit_transform(X.iloc[train]), y[train]
    fit, val = train_test_split(np.arange(len(train)), test_size=VALIDATION_SHARE, stratify=yt, random_state=cfg.seed)
    if cfg.search.enabled:
        model_cfg, _ = search_hyperparameters(model_cfg, cfg, Xt, yt, fit, val)
    classifier = make_classifier(model_cfg, cfg.class_weight, cfg.seed)
    if isinstance(model_cfg, GbmConfig) and model_cfg.early_stopping_rounds:
        trees = _probe(model_cfg, cfg, Xt, yt, fit, val)[1]
        classifier.set_params(n_estimators=max(1, round(trees / (1 - VALIDATION_SHARE))))
    classifier.fit(Xt, yt)
    pipeline = Pipeline([("features", features), ("model", classifier)])
    if cfg.calibration == "none":
        return pipeline, model_cfg
    cal = rows["calibration"]
    return CalibratedClassifierCV(FrozenEstimator(pipeline), method=cfg.calibration).fit(X.iloc[cal], y[cal]), model_cfg


def training_profile(records: Records, rows: np.ndarray) -> dict[str, Any]:
    """What training data looked like, for flagging unfamiliar inputs at prediction time."""
    frame = records.frame.iloc[rows]
    numeric = {c: [float(frame[c].min()), float(frame[c].max())]
               for c in FEATURE_COLUMNS if BY_NAME[c].kind in ("integer", "number") and frame[c].notna().any()}
    categories = {c: sorted(frame[c].dropna().unique().tolist())
                  for c in FEATURE_COLUMNS if BY_NAME[c].kind == "category"}
    blocks = [b for b in ("dn4_interview", "paindetect", "examination", "tests")
              if frame[list(BLOCKS[b])].notna().any().any()]
    sites = sorted(frame["site"].dropna().unique().tolist())
    return {"numeric_ranges": numeric, "categories": categories, "blocks_seen": blocks, "sites": sites}


def build_bundle(estimator, family: str, cfg: TrainConfig, data: Dataset, rows: dict[str, np.ndarray]) -> ModelBundle:
    """The estimator plus its conformal threshold and training profile."""
    bundle = ModelBundle(estimator, {"classes": list(cfg.labels), "family": family,
                                     "registered_model": cfg.tracking.registered_model, "config": cfg.name,
                                     "lineage": data.lineage})
    predictor = Predictor(bundle)
    conformal = rows["conformal"]
    y_index = np.array([cfg.labels.index(v) for v in data.y[conformal]])
    bundle.metadata["conformal_confidence"] = cfg.conformal_confidence
    bundle.metadata["conformal_qhat"] = conformal_threshold(
        predictor.predict_proba(data.X.iloc[conformal]), y_index, cfg.conformal_confidence)
    bundle.metadata["training_profile"] = training_profile(data.records, rows["train"])
    bundle.metadata["temperature_factor"] = bundle.temperature_factor
    return bundle


def evaluate_family(bundle: ModelBundle, data: Dataset, rows: dict[str, np.ndarray]) -> tuple[dict, np.ndarray, dict]:
    """Test-set metrics, conformal coverage and the tables and figures for one family."""
    classes = bundle.classes
    test = rows["test"]
    y = data.y[test]
    proba = Predictor(bundle).predict_proba(data.X.iloc[test])
    metrics = evaluate.classification_metrics(y, proba, classes)
    sets = prediction_sets(proba, bundle.metadata["conformal_qhat"])
    y_index = np.array([classes.index(v) for v in y])
    metrics["test_conformal_coverage"] = float(sets[np.arange(len(y)), y_index].mean())
    metrics["test_conformal_set_size"] = float(sets.sum(axis=1).mean())
    predicted = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    frame = data.records.frame.iloc[test]
    tables = {
        "confusion": evaluate.confusion(y, predicted, classes),
        "subgroups": evaluate.subgroup_metrics(frame, y, proba, classes),
    }
    return metrics, proba, tables


def run_training(
    cfg: TrainConfig,
    *,
    tracking_uri: str | None = None,
    promote_now: bool = False,
    console=None,
    log_models: bool = True,
    explain: bool = True,
) -> TrainResult:
    """Train every family of the config, log one MLflow run, register the winner as ``candidate``."""
    import logging

    import mlflow
    from rich.console import Console

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = console or Console()
    uri = tracking.resolve_tracking_uri(tracking_uri)
    tracking.use_store(uri)
    experiment_id = tracking.ensure_experiment(cfg.tracking.experiment, uri)
    families = [m.family for m in cfg.models]
    steps = ["data", "split", *[f"fit {f}" for f in families], "evaluate", "log to MLflow", "register", "explain"]
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=False, disable=not console.is_terminal) as progress:
        task = progress.add_task("", total=len(steps))

        def stage(name: str) -> None:
            progress.update(task, description=f"[bold]{name}[/]")
            console.print(f"- {name}") if not console.is_terminal else None

        stage(f"loading data: {cfg.data.source}")
        data = load_dataset(cfg)
        progress.advance(task)
        stage("splitting train / calibration / conformal / test")
        rows = split_rows(data.y, cfg)
        progress.advance(task)
        results: dict[str, FamilyResult] = {}
        for model_cfg in cfg.models:
            stage(f"fitting {model_cfg.family} on {len(rows['train']):,} rows")
            start = time.perf_counter()
            estimator, chosen = fit_family(model_cfg, cfg, data.X, data.y, rows)
            bundle = build_bundle(estimator, model_cfg.family, cfg, data, rows)
            bundle.metadata["hyperparameters"] = chosen.model_dump()
            seconds = time.perf_counter() - start
            metrics, proba, tables = evaluate_family(bundle, data, rows)
            bundle.metadata["metrics"] = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
            results[model_cfg.family] = FamilyResult(model_cfg.family, bundle, metrics, proba, seconds, tables)
            progress.advance(task)
        stage("evaluating against the screening tools and the ceiling")
        test = rows["test"]
        y_test = data.y[test]
        truth = None if data.records.truth is None else data.records.truth.iloc[test]
        oracle = evaluate.oracle_metrics(truth, y_test, list(cfg.labels))
        baselines = evaluate.baseline_metrics(data.records.frame.iloc[test], y_test, list(cfg.labels))
        primary = cfg.tracking.primary_metric
        better = max if higher_is_better(primary) else min
        winner = better(results, key=lambda f: results[f].metrics[primary])
        comparison = comparison_table(results, oracle, baselines)
        progress.advance(task)

        stage("logging the run to MLflow")
        with mlflow.start_run(experiment_id=experiment_id, run_name=cfg.name) as run:
            model_uris = _log_run(mlflow, cfg, data, rows, results, oracle, baselines, comparison, winner, log_models)
            run_id = run.info.run_id
        progress.advance(task)
        version = promotion = None
        if log_models:
            stage(f"registering {winner} as {cfg.tracking.registered_model}")
            version = tracking.register_version(model_uris[winner], cfg.tracking.registered_model,
                                                tags={"family": winner, "config": cfg.name})
            champion = tracking.get_alias_version(cfg.tracking.registered_model, tracking.CHAMPION)
            if champion is None or promote_now:
                promotion = promote(cfg.tracking.registered_model, tracking_uri=uri, version=version)
        progress.advance(task)
        result = TrainResult(run_id, winner, results, oracle, baselines, comparison, version, promotion)
        if explain and log_models:
            from painml.report import after_training

            stage(f"explaining {winner} (SHAP) and writing the reviewer report")
            result.report = after_training(result, cfg, uri, data=data)["report"]
        progress.advance(task)
    return result


def comparison_table(results: dict[str, FamilyResult], oracle: dict[str, float], baselines: pd.DataFrame) -> pd.DataFrame:
    """Three-class view on the same test rows: each model, the exact-posterior ceiling, painDETECT bands."""
    keys = ["macro_f1", "balanced_accuracy", "accuracy", "log_loss", "brier", "ece", "auroc_neuropathic"]
    rows = [{"model": family, **{k: r.metrics.get(f"test_{k}", np.nan) for k in keys}} for family, r in results.items()]
    if oracle:
        rows.append({"model": "exact posterior (ceiling)", **{k: oracle.get(f"oracle_{k}", np.nan) for k in keys}})
    for _, b in baselines[baselines["question"] == "3 classes"].iterrows():
        rows.append({"model": b["baseline"], "macro_f1": b["macro_f1"], "balanced_accuracy": b["balanced_accuracy"],
                     "accuracy": b["accuracy"]})
    return pd.DataFrame(rows, columns=["model", *keys]).set_index("model")


def _log_run(mlflow, cfg, data, rows, results, oracle, baselines, comparison, winner, log_models) -> dict[str, str]:
    """Log params, lineage, metrics, tables, figures and models; return each family's model URI."""
    import yaml

    git = tracking.git_state(Path(__file__).parent)
    mlflow.set_tags({
        "painml.config": cfg.name, "painml.winner": winner, "git.commit": git["commit"] or "unknown",
        "git.dirty": str(git["dirty"]), "data.source": data.source, "python": platform.python_version(),
    })
    mlflow.log_params(cfg.flat())
    mlflow.log_params({f"data.lineage.{k}": v for k, v in data.lineage.items()} | {
        f"rows.{k}": len(v) for k, v in rows.items()})
    training = data.X.iloc[rows["train"]].assign(pain_type=data.y[rows["train"]])
    mlflow.log_input(mlflow.data.from_pandas(training, name=data.source, targets="pain_type"), context="training")
    metrics: dict[str, float] = dict(oracle)
    for family, r in results.items():
        metrics |= {f"{family}.{k}": v for k, v in r.metrics.items()}
        metrics |= {f"{family}.{k}": v for k, v in evaluate.ceiling_gap(r.metrics, oracle).items()}
        metrics[f"{family}.fit_seconds"] = r.fit_seconds
        if cfg.search.enabled:
            mlflow.log_params({f"{family}.chosen.{k}": v for k, v in r.bundle.metadata["hyperparameters"].items()})
    metrics |= results[winner].metrics | evaluate.ceiling_gap(results[winner].metrics, oracle)
    mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)})
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        (out / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float))
        (out / "lineage.json").write_text(json.dumps(data.lineage, indent=2))
        baselines.to_csv(out / "baselines.csv", index=False)
        comparison.to_csv(out / "comparison.csv")
        for family, r in results.items():
            r.artifacts["confusion"].to_csv(out / f"confusion_{family}.csv")
            r.artifacts["subgroups"].to_csv(out / f"subgroups_{family}.csv", index=False)
            y_test = data.y[rows["test"]]
            for kind, fig in (
                ("confusion", evaluate.plot_confusion(r.artifacts["confusion"], f"{family}: confusion matrix (test)")),
                ("calibration", evaluate.plot_calibration(y_test, r.proba, r.bundle.classes,
                                                         f"{family}: calibration (test)")),
            ):
                fig.savefig(out / f"{kind}_{family}.png", dpi=110, bbox_inches="tight")
        mlflow.log_artifacts(str(out))
        if not log_models:
            return {}
        return {family: log_model(mlflow, r.bundle, family, out / family / "bundle").model_uri
                for family, r in results.items()}


def log_model(mlflow, bundle: ModelBundle, name: str, folder: Path):
    """Log a bundle as a models-from-code pyfunc with a signature and a synthetic input example."""
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import ColSpec, Schema

    import painml
    from painml.simulate import simulate

    bundle.save(folder)
    example = load_records(simulate("pain_clinic", 5, seed=0)).frame.iloc[:, : 2 + len(FEATURE_COLUMNS)]
    output = Predictor(bundle).predict(example)
    inputs = Schema([
        ColSpec("double" if BY_NAME[c].kind in ("binary", "integer", "number") else "string", c, required=False)
        for c in example.columns
    ])
    signature = ModelSignature(inputs=inputs, outputs=infer_signature(None, output).outputs)
    return mlflow.pyfunc.log_model(
        name=name,
        python_model=str(Path(painml.__file__).parent / "mlflow_model.py"),
        artifacts={"bundle": str(folder)},
        code_paths=[str(Path(painml.__file__).parent)],
        signature=signature,
        input_example=_signature_frame(example),
        pip_requirements=_requirements(),
    )


def _signature_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Every record column as float64 or string, the types the signature promises."""
    out = frame.copy()
    for col in out.columns:
        if col in BY_NAME and BY_NAME[col].kind in ("binary", "integer", "number"):
            out[col] = out[col].astype("float64")
        else:
            out[col] = out[col].astype(object)
    return out


def _requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("scikit-learn", "lightgbm", "pandas", "numpy", "scipy", "skops",
                                            "pandera", "pyarrow", "mlflow")]


def promote(name: str, *, tracking_uri: str | None = None, version: str | None = None,
            data_path: str | Path | None = None) -> str:
    """Move ``champion`` to the candidate only if it beats the champion on the same evaluation.

    Both versions are scored on rows neither was trained on: ``data_path``
    when given (a labelled file), else a fresh cohort from the candidate's
    simulator preset, else the candidate's own test rows of its training file
    (only when the champion did not train on that file too). The metric is the
    candidate config's primary metric.
    """
    import mlflow

    uri = tracking.resolve_tracking_uri(tracking_uri)
    tracking.use_store(uri)
    candidate = version or tracking.get_alias_version(name, tracking.CANDIDATE)
    if candidate is None:
        return f"{name} has no candidate version to promote"
    champion = tracking.get_alias_version(name, tracking.CHAMPION)
    if champion is None:
        tracking.set_alias(name, tracking.CHAMPION, candidate)
        return f"version {candidate} is now champion (there was no champion yet)"
    if champion == candidate:
        return f"version {candidate} is already champion"
    cfg = _run_config(mlflow, tracking.version_run_id(name, candidate))
    champion_cfg = _run_config(mlflow, tracking.version_run_id(name, champion))
    if data_path is not None:
        records = load_records(data_path, require_label=True, classes=cfg.labels)
        where = f"{data_path} ({len(records.frame):,} rows)"
    elif not isinstance(cfg.data, FileData):
        from painml.simulate import simulate

        n = max(5_000, int(cfg.data.n * cfg.split.test_size))
        records = load_records(simulate(cfg.data.preset, n, cfg.data.seed + 1), require_label=True, classes=cfg.labels)
        where = f"a fresh {cfg.data.preset} cohort of {n:,} patients (seed {cfg.data.seed + 1})"
    else:
        if champion_cfg.data == cfg.data and champion_cfg.model_dump(include={"seed", "split"}) != cfg.model_dump(
                include={"seed", "split"}):
            return ("not promoted: the champion trained on the same file with a different split, so the "
                    "candidate's test rows are not held out for it; pass a held-out labelled file with --data")
        data = load_dataset(cfg)
        test = split_rows(data.y, cfg)["test"]
        records = Records(data.records.frame.iloc[test], data.records.label.iloc[test])
        where = f"the candidate's test rows of {cfg.data.path} ({len(records.frame):,} rows)"
    primary = cfg.tracking.primary_metric
    y = records.label.to_numpy(dtype=object)
    scores = {}
    for v in (candidate, champion):
        predictor = load_predictor(f"models:/{name}/{v}")
        scores[v] = evaluate.classification_metrics(y, predictor.predict_proba(records.features),
                                                    predictor.classes)[primary]
    wins = scores[candidate] > scores[champion] if higher_is_better(primary) else scores[candidate] < scores[champion]
    verdict = (f"{primary} on {where}: candidate v{candidate} {scores[candidate]:.4f}, "
               f"champion v{champion} {scores[champion]:.4f}")
    if wins:
        tracking.set_alias(name, tracking.CHAMPION, candidate)
        return f"promoted: version {candidate} is now champion; {verdict}"
    return f"not promoted: champion stays version {champion}; {verdict}"


def _run_config(mlflow, run_id: str) -> TrainConfig:
    from painml.config import load_config

    return load_config(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="config.yaml"))


def load_predictor(model_uri: str) -> Predictor:
    """A Predictor for ``models:/``, ``runs:/`` URIs or a local model folder."""
    return Predictor.from_uri(model_uri)
