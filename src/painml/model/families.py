"""The model families, built from their typed configs.

LightGBM is the boosted family: on this data it fits several times faster
than scikit-learn's HistGradientBoosting and its TreeSHAP is exact with
one-hot inputs (see ``bench/bench_boosters.py``); its trees are also simple
to replay outside LightGBM for serving (:mod:`painml.model.compiled.trees`). The logistic model is
multinomial (binary for two classes) and fully transparent; the screening family is the same model on the
questionnaires' totals only. All take class weights for imbalanced label sets.
"""

from __future__ import annotations

from lightgbm import LGBMClassifier
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold

from painml.config import GbmConfig, LogisticConfig, ScreeningConfig

ModelConfig = GbmConfig | LogisticConfig | ScreeningConfig
INNER_FOLDS = 5
PENALTY_GRID = 12


def make_classifier(model: ModelConfig, class_weight: str, seed: int, n_classes: int = 3):
    """An unfitted classifier for one family; deterministic for a given seed.

    LightGBM's thread count is left to OpenMP (``OMP_NUM_THREADS``): two
    threads on a busy two-core machine can be a hundred times slower than one.
    """
    weight = "balanced" if class_weight == "balanced" else None
    if isinstance(model, GbmConfig):
        return LGBMClassifier(
            objective="multiclass" if n_classes > 2 else "binary",
            n_estimators=model.n_estimators,
            learning_rate=model.learning_rate,
            num_leaves=model.num_leaves,
            min_child_samples=model.min_child_samples,
            reg_lambda=model.reg_lambda,
            colsample_bytree=model.colsample,
            class_weight=weight,
            random_state=seed,
            deterministic=True,
            force_row_wise=True,
            verbose=-1,
        )
    if model.C == "auto":
        # the penalty is learned from data, so it is chosen inside every fit (and every resample) by inner CV
        return LogisticRegressionCV(
            Cs=PENALTY_GRID,
            cv=StratifiedKFold(INNER_FOLDS, shuffle=True, random_state=seed),
            scoring="neg_log_loss",
            l1_ratios=(0.0,),
            use_legacy_attributes=False,
            max_iter=model.max_iter,
            class_weight=weight,
            random_state=seed,
        )
    return LogisticRegression(C=model.C, max_iter=model.max_iter, class_weight=weight, random_state=seed)


SMALL_DATA_GBM = {
    "learning_rate": 0.05,
    "n_estimators": 1000,
    "num_leaves": 4,
    "min_child_samples": 20,
    "reg_lambda": 5.0,
    "colsample": 0.8,
    "early_stopping_rounds": 30,
    "rounds": "inner_cv",
}
"""The boosted family's settings for a few hundred to a few thousand rows: shallow trees, strong
regularisation, the number of trees chosen by inner cross-validation."""


def for_small_data(model: ModelConfig) -> ModelConfig:
    """The small-data settings in place of every setting the config left at its default: the boosted
    family's :data:`SMALL_DATA_GBM`, and the logistic family's penalty chosen by inner cross-validation.
    Settings written in the config are kept as they are."""
    defaults = (
        SMALL_DATA_GBM if isinstance(model, GbmConfig) else {"C": "auto"} if isinstance(model, LogisticConfig) else {}
    )
    return model.model_copy(update={k: v for k, v in defaults.items() if k not in model.model_fields_set})
