"""Fitting one family: features + classifier on the training rows, hyper-parameters, calibration,
and the bundle with its conformal threshold and training profile."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from painml.config import GbmConfig, TrainConfig
from painml.features.encoding import build_features
from painml.model import calibration
from painml.model.bundle import ModelBundle
from painml.model.conformal import conformal_threshold
from painml.model.dataset import Dataset
from painml.model.families import INNER_FOLDS, make_classifier
from painml.model.metadata import BundleMetadata, TrainingProfile
from painml.model.search import SearchResult, probe, search_hyperparameters, searchable
from painml.record.columns import BLOCKS, BY_NAME, FEATURE_COLUMNS, OPTIONAL_BLOCKS
from painml.record.schema import Records

VALIDATION_SHARE = 0.1


OnSearch = Callable[[SearchResult], None]
"""Called with a finished search (its trials become MLflow child runs)."""


def fit_pipeline(
    model_cfg,
    cfg: TrainConfig,
    X: pd.DataFrame,
    y: np.ndarray,
    train: np.ndarray,
    *,
    on_search: OnSearch | None = None,
):
    """Fit features + classifier on the ``train`` rows (uncalibrated); returns it and the chosen model config.

    Hyper-parameters come from the config, or from an Optuna search
    (:mod:`painml.model.search`) by cross-validation on the training rows when
    ``search.enabled``; ``on_search`` receives its result. The boosted
    model finds its number of trees by early stopping on a 10% slice of the
    training rows (or by inner cross-validation) and is
    refitted on all training rows at that size (scaled for the extra rows), so
    the stored model holds exactly the trees it uses: TreeSHAP explains every
    stored tree. Everything here is learned from ``train`` alone, so resampling
    repeats all of it in every fold.
    """
    # One BLAS thread: OpenBLAS's threads spin while they wait, and on a busy two-core machine two of them
    # made the default logistic fit twenty times slower (21.5 s against 1.1 s), for no gain when quiet.
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit_pipeline(model_cfg, cfg, X, y, train, on_search)


def _fit_pipeline(model_cfg, cfg: TrainConfig, X: pd.DataFrame, y: np.ndarray, train: np.ndarray, on_search):
    features = build_features(model_cfg.family, cfg.features.groups, cfg.features.missing_indicators)
    Xt, yt = features.fit_transform(X.iloc[train]), y[train]
    if searchable(model_cfg, cfg):
        found = search_hyperparameters(model_cfg, cfg, Xt, yt)
        model_cfg = found.best
        if on_search is not None:
            on_search(found)
    classifier = make_classifier(model_cfg, cfg.class_weight, cfg.seed, len(cfg.classes))
    if isinstance(model_cfg, GbmConfig) and model_cfg.early_stopping_rounds:
        if model_cfg.rounds == "inner_cv":
            inner = StratifiedKFold(INNER_FOLDS, shuffle=True, random_state=cfg.seed)
            found = [probe(model_cfg, cfg, Xt, yt, a, b)[1] for a, b in inner.split(np.zeros(len(yt)), yt)]
            trees = float(np.mean(found)) / (1 - 1 / INNER_FOLDS)
        else:
            fit, val = train_test_split(
                np.arange(len(train)), test_size=VALIDATION_SHARE, stratify=yt, random_state=cfg.seed
            )
            trees = probe(model_cfg, cfg, Xt, yt, fit, val)[1] / (1 - VALIDATION_SHARE)
        classifier.set_params(n_estimators=max(1, round(trees)))
    classifier.fit(Xt, yt)
    return Pipeline([("features", features), ("model", classifier)]), model_cfg


def fit_family(
    model_cfg,
    cfg: TrainConfig,
    X: pd.DataFrame,
    y: np.ndarray,
    rows: dict[str, np.ndarray],
    *,
    on_search: OnSearch | None = None,
):
    """Holdout training: the pipeline on the train rows, calibrated on the calibration rows."""
    pipeline, model_cfg = fit_pipeline(model_cfg, cfg, X, y, rows["train"], on_search=on_search)
    cal = rows["calibration"]
    return calibration.calibrate(pipeline, cfg.calibration, X.iloc[cal], y[cal]), model_cfg


def training_profile(records: Records, rows: np.ndarray) -> TrainingProfile:
    """What training data looked like, for flagging unfamiliar inputs at prediction time."""
    frame = records.frame.iloc[rows]
    numeric = {
        c: (float(frame[c].min()), float(frame[c].max()))
        for c in FEATURE_COLUMNS
        if BY_NAME[c].kind in ("integer", "number") and frame[c].notna().any()
    }
    categories = {
        c: tuple(sorted(frame[c].dropna().unique().tolist())) for c in FEATURE_COLUMNS if BY_NAME[c].kind == "category"
    }
    blocks = tuple(b for b in OPTIONAL_BLOCKS if frame[list(BLOCKS[b])].notna().any().any())
    sites = tuple(sorted(frame["site"].dropna().unique().tolist()))
    return TrainingProfile(numeric, categories, blocks, sites)


def build_bundle(
    estimator: Any,
    family: str,
    cfg: TrainConfig,
    data: Dataset,
    rows: dict[str, np.ndarray],
    hyperparameters: dict[str, Any] | None = None,
) -> ModelBundle:
    """Holdout training: the estimator plus its conformal threshold (fitted on the conformal rows)."""
    bundle = new_bundle(estimator, family, cfg, data, rows["train"], hyperparameters)
    conformal = rows["conformal"]
    y_index = np.array([cfg.classes.index(v) for v in data.y[conformal]])
    qhat = conformal_threshold(bundle.predict_proba(data.X.iloc[conformal]), y_index, cfg.conformal_confidence)
    return bundle.with_metadata(conformal_qhat=qhat)


def new_bundle(
    estimator: Any,
    family: str,
    cfg: TrainConfig,
    data: Dataset,
    train: np.ndarray,
    hyperparameters: dict[str, Any] | None = None,
) -> ModelBundle:
    """The estimator with the metadata every bundle carries (no conformal threshold yet)."""
    metadata = BundleMetadata(
        classes=tuple(cfg.classes),
        family=family,
        registered_model=cfg.tracking.registered_model,
        config=cfg.name,
        lineage=data.lineage,
        conformal_confidence=cfg.conformal_confidence,
        training_profile=training_profile(data.records, train),
        hyperparameters=hyperparameters or {},
    )
    bundle = ModelBundle(estimator, metadata)
    return bundle.with_metadata(temperature_factor=bundle.temperature_factor)
