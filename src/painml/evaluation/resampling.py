"""Validation by resampling: every patient predicted by models that never saw them, for cohorts too small
to spend a fifth on a test split.

Repeated stratified k-fold cross-validation of the whole pipeline. In each
fold the features, the early stopping and any tuning are fitted on the fold's
training rows alone (:func:`painml.model.fit.fit_pipeline`). What is learned
from the held-out scores is cross-fitted too: the temperature and the
conformal threshold that calibrate and cover a fold's rows are fitted on the
other folds' out-of-fold scores of the same repeat, so no estimate uses a
patient to judge itself. The registered model is fitted on all rows, with the
temperature and threshold fitted on all out-of-fold scores
(scikit-learn's ``ensemble=False`` pattern).

The folds run in parallel (joblib, both cores; LightGBM and BLAS are limited
to one thread per worker) and report progress as they finish.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.model_selection import LeaveOneGroupOut, RepeatedStratifiedKFold, StratifiedKFold

from painml.config import TrainConfig
from painml.evaluation.calibration import per_class_calibration
from painml.evaluation.clinical import clinical_evaluation
from painml.evaluation.intervals import BOOTSTRAP_REPS, auroc_interval, bootstrap_intervals
from painml.evaluation.metrics import classification_metrics, confusion, subgroup_metrics
from painml.evaluation.stability import prediction_instability
from painml.model import calibration
from painml.model.bundle import ModelBundle
from painml.model.conformal import MONDRIAN_MIN_ROWS, class_thresholds, conformal_threshold, prediction_sets
from painml.model.dataset import Dataset
from painml.model.fit import OnSearch, fit_pipeline, new_bundle

Progress = Callable[[int, int], None]
"""Called with (folds done, folds in all) as folds finish."""


@dataclass(frozen=True)
class OutOfFold:
    """Out-of-fold predictions of one family, and what the final model takes from them."""

    proba: np.ndarray
    """(repeats, rows, classes): calibrated probabilities, configured class order."""
    covered: np.ndarray
    """(repeats, rows): the conformal set, with a threshold fitted on the other folds, holds the true class."""
    set_size: np.ndarray
    """(repeats, rows)."""
    refits: np.ndarray
    """(folds x repeats, rows, classes): each fold model's calibrated probabilities on every row (stability)."""
    beta: float
    """Inverse temperature fitted on all out-of-fold scores (1.0 without calibration)."""
    qhat: float
    qhat_by_class: tuple[float, ...] | None
    """Class-conditional thresholds, when every class has at least MONDRIAN_MIN_ROWS rows."""


def cross_validate(model_cfg, cfg: TrainConfig, data: Dataset, *, progress: Progress | None = None) -> OutOfFold:
    """Repeated stratified k-fold cross-validation of one family (see the module docstring)."""
    v = cfg.validation
    X, y = data.X, data.y
    classes = list(cfg.classes)
    splitter = RepeatedStratifiedKFold(n_splits=v.folds, n_repeats=v.repeats, random_state=cfg.seed)
    folds = list(splitter.split(np.zeros(len(y)), y))
    fitted = _run(model_cfg, cfg, X, y, folds, progress)
    model_classes = fitted[0][2]
    y_model = np.searchsorted(model_classes, y)
    order = [list(model_classes).index(c) for c in classes]
    y_index = np.array([classes.index(v) for v in y])
    n, k, repeats = len(y), len(classes), v.repeats
    temperature = cfg.calibration == "temperature"
    scores = [np.zeros((n, *fitted[0][0].shape[1:])) for _ in range(repeats)]
    fold_of = np.zeros((repeats, n), dtype=np.intp)
    for f, (test_scores, _, _) in enumerate(fitted):
        r, test = f // v.folds, folds[f][1]
        scores[r][test] = test_scores
        fold_of[r, test] = f % v.folds
    proba = np.zeros((repeats, n, k))
    covered = np.zeros((repeats, n), dtype=bool)
    set_size = np.zeros((repeats, n))
    for r in range(repeats):
        for f in range(v.folds):
            held, rest = fold_of[r] == f, fold_of[r] != f
            beta = calibration.fit_temperature(scores[r][rest], y_model[rest]) if temperature else None
            proba[r, held] = _calibrated(scores[r][held], beta)[:, order]
        for f in range(v.folds):
            held, rest = fold_of[r] == f, fold_of[r] != f
            qhat = _thresholds(proba[r, rest], y_index[rest], cfg.conformal_confidence)
            sets = prediction_sets(proba[r, held], qhat)
            covered[r, held] = sets[np.arange(held.sum()), y_index[held]]
            set_size[r, held] = sets.sum(axis=1)
    stacked = np.concatenate(scores)
    beta = calibration.fit_temperature(stacked, np.tile(y_model, repeats)) if temperature else None
    oof = _calibrated(stacked, beta)[:, order]
    qhat_single = conformal_threshold(oof, np.tile(y_index, repeats), cfg.conformal_confidence)
    by_class = _thresholds(oof, np.tile(y_index, repeats), cfg.conformal_confidence)
    refits = np.stack([_calibrated(all_scores, beta)[:, order] for _, all_scores, _ in fitted])
    return OutOfFold(
        proba,
        covered,
        set_size,
        refits,
        1.0 if beta is None else beta,
        qhat_single,
        tuple(by_class.tolist()) if isinstance(by_class, np.ndarray) else None,
    )


def leave_one_site_out(model_cfg, cfg: TrainConfig, data: Dataset) -> pd.DataFrame | None:
    """Internal-external validation (TRIPOD+AI: heterogeneity across clusters): each site predicted by a model
    fitted on the other sites, its temperature cross-fitted within them; one row per site with its metrics.
    None with fewer than two sites; a site is left out when the other sites lack a class, or it has one."""
    sites = data.records.frame["site"].fillna("(no site)").to_numpy(dtype=object)
    if len(set(sites)) < 2:
        return None
    X, y = data.X, data.y
    classes = list(cfg.classes)
    rows = []
    for train, test in LeaveOneGroupOut().split(np.zeros(len(y)), y, sites):
        if set(y[train]) != set(classes):
            continue
        pipeline, _ = fit_pipeline(model_cfg, cfg, X, y, train)
        beta = None
        if cfg.calibration == "temperature":
            inner = StratifiedKFold(min(cfg.validation.folds, _smallest(y[train])), shuffle=True, random_state=cfg.seed)
            folds = [(train[a], train[b]) for a, b in inner.split(np.zeros(len(train)), y[train])]
            fitted = _run(model_cfg, cfg, X, y, folds, None)
            inner_scores = np.concatenate([s for s, _, _ in fitted])
            inner_y = np.concatenate([y[test_rows] for _, test_rows in folds])
            beta = calibration.fit_temperature(inner_scores, np.searchsorted(pipeline.classes_, inner_y))
        order = [list(pipeline.classes_).index(c) for c in classes]
        score = calibration.raw_scores if beta is not None else _probabilities
        proba = _calibrated(score(pipeline, X.iloc[test]), beta)[:, order]
        y_site = y[test]
        if len(set(y_site)) < 2:
            continue
        metrics = classification_metrics(y_site, proba, classes, prefix="")
        slope = per_class_calibration(y_site, proba, classes)["slope"]
        rows.append(
            {
                "site": sites[test[0]],
                "n": len(test),
                **{k: metrics[k] for k in ("log_loss", "brier", "macro_f1", "balanced_accuracy")},
                **{f"auroc_{c}": metrics[f"auroc_{c}"] for c in classes},
                **{f"calibration_slope_{c}": float(s) for c, s in zip(classes, slope)},
            }
        )
    return pd.DataFrame(rows) if rows else None


def _thresholds(proba: np.ndarray, y_index: np.ndarray, confidence: float) -> float | np.ndarray:
    """Class-conditional thresholds when every class has enough rows, else one threshold."""
    counts = np.bincount(y_index, minlength=proba.shape[1])
    if counts.min() >= MONDRIAN_MIN_ROWS:
        return class_thresholds(proba, y_index, confidence)
    return conformal_threshold(proba, y_index, confidence)


def _smallest(y: np.ndarray) -> int:
    return int(pd.Series(y).value_counts().min())


def _fit_fold(model_cfg, cfg, X, y, train, test):
    """A fold model's scores on its held-out rows and on every row: raw scores to be calibrated by temperature,
    or the model's own probabilities when the config asks for no calibration."""
    pipeline, _ = fit_pipeline(model_cfg, cfg, X, y, train)
    score = calibration.raw_scores if cfg.calibration == "temperature" else _probabilities
    every = score(pipeline, X)
    return every[test], every, np.asarray(pipeline.classes_)


def _probabilities(pipeline, X) -> np.ndarray:
    return np.asarray(pipeline.predict_proba(X), dtype=np.float64)


def _calibrated(scores: np.ndarray, beta: float | None) -> np.ndarray:
    """Temperature-scaled probabilities, or the scores themselves when they already are probabilities."""
    return scores if beta is None else calibration.apply_temperature(scores, beta)


def _run(model_cfg, cfg, X, y, folds, progress: Progress | None) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Fit every fold (two workers), in fold order; ``progress`` after each."""
    results: list = [None] * len(folds)
    jobs = Parallel(n_jobs=2, return_as="generator_unordered", max_nbytes=None)(
        delayed(_indexed)(i, model_cfg, cfg, X, y, train, test) for i, (train, test) in enumerate(folds)
    )
    for done, (i, result) in enumerate(jobs, start=1):
        results[i] = result
        if progress is not None:
            progress(done, len(folds))
    return results


def _indexed(i, *args):
    return i, _fit_fold(*args)


def resampled_family(
    model_cfg,
    cfg: TrainConfig,
    data: Dataset,
    *,
    method: str = "cv",
    progress: Progress | None = None,
    on_search: OnSearch | None = None,
) -> tuple[ModelBundle, dict[str, float], np.ndarray, dict[str, Any], OutOfFold]:
    """Cross-validate one family, then fit it on all rows with the out-of-fold temperature and threshold.

    Returns the bundle to register, its metrics (``test_*``: out-of-fold, averaged over repeats, with
    ``_ci_low``/``_ci_high`` from resampling patients; ``apparent_*``: the final model on its own rows;
    conformal coverage overall and per class), the first repeat's out-of-fold probabilities (for tables,
    baselines and plots, which then cover every patient), its tables, and the out-of-fold record.

    ``method="bootstrap"``: one repeat of cross-validation gives the temperature, the threshold and the
    out-of-fold tables, and Harrell's bootstrap gives the estimates (:func:`bootstrap_optimism`):
    ``test_*`` are then the apparent values less the mean optimism, beside ``optimism_*`` and ``.632+``;
    their intervals keep the width of the out-of-fold patient-bootstrap interval, centred on the estimate.
    ``on_search`` receives the hyper-parameter search of the final model (each fold searches again, alone).
    """
    if method == "bootstrap":
        cfg = cfg.model_copy(update={"validation": cfg.validation.model_copy(update={"repeats": 1})})
    oof = cross_validate(model_cfg, cfg, data, progress=progress if method == "cv" else None)
    X, y = data.X, data.y
    everyone = np.arange(len(y))
    pipeline, chosen = fit_pipeline(model_cfg, cfg, X, y, everyone, on_search=on_search)
    estimator = pipeline
    if cfg.calibration == "temperature":
        estimator = calibration.with_temperature(pipeline, oof.beta, X, y)
    bundle = new_bundle(estimator, model_cfg.family, cfg, data, everyone, chosen.model_dump())
    bundle = bundle.with_metadata(conformal_qhat=oof.qhat, conformal_qhat_by_class=oof.qhat_by_class, validation=method)
    classes = list(cfg.classes)
    y_index = np.array([classes.index(v) for v in y])
    metrics = resampled_metrics(y, oof.proba, classes, seed=cfg.seed)
    metrics |= classification_metrics(y, bundle.predict_proba(X), classes, prefix="apparent_")
    metrics["test_conformal_coverage"] = float(oof.covered.mean())
    metrics["test_conformal_set_size"] = float(oof.set_size.mean())
    for k, c in enumerate(classes):
        metrics[f"test_conformal_coverage_{c}"] = float(oof.covered[:, y_index == k].mean())
    first = oof.proba[0]
    predicted = np.asarray(classes, dtype=object)[first.argmax(axis=1)]
    clinical = clinical_evaluation(y, first, classes, data.records.frame, seed=cfg.seed)
    metrics |= clinical.metrics
    full = bundle.predict_proba(X)
    refits = oof.refits
    if method == "bootstrap":
        out_of_fold = dict(metrics)
        boot = bootstrap_optimism(model_cfg, cfg, data, metrics, progress=progress)
        metrics |= boot.metrics
        refits = boot.refits
        for key, value in boot.metrics.items():  # the out-of-fold interval's width, centred on the estimate
            low, high = out_of_fold.get(f"{key}_ci_low"), out_of_fold.get(f"{key}_ci_high")
            if key.startswith("test_") and low is not None and high is not None:
                shift = value - out_of_fold[key]
                metrics[f"{key}_ci_low"], metrics[f"{key}_ci_high"] = low + shift, high + shift
    stability = prediction_instability(full, refits, classes)
    metrics["stability_mape"] = float(stability.mape)
    metrics["stability_unstable_share"] = float(stability.share_unstable)
    tables = {
        "confusion": confusion(y, predicted, classes),
        "subgroups": subgroup_metrics(data.records.frame, y, first, classes),
        "clinical": clinical,
        "stability": stability,
        "refits": refits,
    }
    return bundle, metrics, first, tables, oof


OPTIMISM_METRICS = ("log_loss", "brier", "macro_f1", "balanced_accuracy", "accuracy")


@dataclass(frozen=True)
class Bootstrap:
    """Harrell's optimism-corrected metrics, the .632+ check, and every refit's predictions (stability)."""

    metrics: dict[str, float]
    refits: np.ndarray
    """(resamples, rows, classes): each bootstrap model's calibrated probabilities on every original row."""


def bootstrap_optimism(
    model_cfg, cfg: TrainConfig, data: Dataset, apparent: dict[str, float], *, progress: Progress | None = None
) -> Bootstrap:
    """Harrell's bootstrap (Steyerberg 2001; rms::validate) over the whole pipeline, with Efron & Tibshirani's
    .632+ estimate of log-loss and Brier as a check (Iba et al. 2021 recommend it at small n).

    Each resample refits the pipeline on a bootstrap sample (early stopping and penalty learned there), fits
    its temperature on the sample's out-of-bag rows, and is scored on the sample (its apparent performance)
    and on the original rows; the mean difference is the optimism, subtracted from the registered model's
    apparent metrics (``apparent`` holds ``apparent_*``). Out-of-bag losses give the .632+ estimate.
    """
    X, y = data.X, data.y
    classes = list(cfg.classes)
    n = len(y)
    rng = np.random.default_rng(cfg.seed)
    samples = [np.sort(rng.integers(0, n, n)) for _ in range(cfg.validation.resamples)]
    fitted = _run(model_cfg, cfg, X, y, [(s, np.arange(0)) for s in samples], progress)
    model_classes = fitted[0][2]
    order = [list(model_classes).index(c) for c in classes]
    y_model = np.searchsorted(model_classes, y)
    y_index = np.array([classes.index(v) for v in y])
    optimism = {m: [] for m in (*OPTIMISM_METRICS, *(f"auroc_{c}" for c in classes))}
    oob_loss, oob_brier, oob_count = np.zeros(n), np.zeros(n), np.zeros(n)
    refits = []
    for sample, (_, scores, _) in zip(samples, fitted):
        oob = np.setdiff1d(np.arange(n), sample)
        beta = None
        if cfg.calibration == "temperature" and len(set(y_model[oob])) == len(classes):
            beta = calibration.fit_temperature(scores[oob], y_model[oob])
        elif cfg.calibration == "temperature":
            beta = 1.0
        proba = _calibrated(scores, beta)[:, order]
        refits.append(proba)
        on_sample = classification_metrics(y[sample], proba[sample], classes, prefix="")
        on_original = classification_metrics(y, proba, classes, prefix="")
        for m in optimism:
            optimism[m].append(on_sample[m] - on_original[m])
        rows = np.arange(len(oob))
        oob_loss[oob] += -np.log(np.clip(proba[oob, y_index[oob]], 1e-15, 1.0))
        onehot = np.zeros((len(oob), len(classes)))
        onehot[rows, y_index[oob]] = 1.0
        oob_brier[oob] += ((proba[oob] - onehot) ** 2).sum(axis=1)
        oob_count[oob] += 1
    metrics: dict[str, float] = {}
    for m, values in optimism.items():
        mean = float(np.nanmean(values))
        metrics[f"optimism_{m}"] = mean
        metrics[f"test_{m}"] = apparent[f"apparent_{m}"] - mean
    seen = oob_count > 0
    full = np.stack(refits).mean(axis=0)
    for name, per_row, no_information in (
        ("log_loss", oob_loss, _no_information_log_loss(y_index, full)),
        ("brier", oob_brier, _no_information_brier(y_index, full)),
    ):
        err1 = float((per_row[seen] / oob_count[seen]).mean())
        metrics[f"test_{name}_632plus"] = _632_plus(apparent[f"apparent_{name}"], err1, no_information)
    return Bootstrap(metrics, np.stack(refits))


def _632_plus(apparent: float, oob: float, no_information: float) -> float:
    """Efron & Tibshirani (1997): the .632 weight raised towards 1 as overfitting (relative to the
    no-information error) grows."""
    oob = min(oob, no_information) if no_information > apparent else oob
    overfit = (oob - apparent) / (no_information - apparent) if no_information > apparent and oob > apparent else 0.0
    weight = 0.632 / (1 - 0.368 * overfit)
    return float((1 - weight) * apparent + weight * oob)


def _no_information_log_loss(y_index: np.ndarray, proba: np.ndarray) -> float:
    """Log-loss if predictions were unrelated to patients: every patient's class against every prediction."""
    shares = np.bincount(y_index, minlength=proba.shape[1]) / len(y_index)
    return float(-(shares * np.log(np.clip(proba, 1e-15, 1.0)).mean(axis=0)).sum())


def _no_information_brier(y_index: np.ndarray, proba: np.ndarray) -> float:
    """Multiclass Brier score of every patient's class against every prediction."""
    shares = np.bincount(y_index, minlength=proba.shape[1]) / len(y_index)
    mean_p, mean_p2 = proba.mean(axis=0), (proba**2).sum(axis=1).mean()
    return float(mean_p2 - 2 * (shares * mean_p).sum() + 1.0)


def resampled_metrics(y: np.ndarray, proba: np.ndarray, classes: list[str], *, seed: int = 0) -> dict[str, float]:
    """``test_*`` of out-of-fold probabilities (repeats, rows, classes): the average over repeats, and a 95%
    interval from resampling patients (ECE and AUROC: the average only, AUROC with its own interval)."""
    y_index = np.array([classes.index(v) for v in y])
    out: dict[str, float] = {}
    averaged = pd.DataFrame([classification_metrics(y, p, classes) for p in proba]).mean().to_dict()
    out |= {k: float(v) for k, v in averaged.items()}
    for row in bootstrap_intervals(y_index, list(proba), reps=BOOTSTRAP_REPS // 5, seed=seed).itertuples():
        out[f"test_{row.metric}"] = row.estimate
        out[f"test_{row.metric}_ci_low"], out[f"test_{row.metric}_ci_high"] = row.low, row.high
    for k, c in enumerate(classes):
        low, high = auroc_interval(y_index == k, proba[0][:, k], seed=seed)
        out[f"test_auroc_{c}_ci_low"], out[f"test_auroc_{c}_ci_high"] = low, high
    return out
