"""How related a site's patients are to a model's training data, before any of the site's labels are used.

- a membership model (Debray et al. 2015): a classifier told to separate source rows from site rows; its
  cross-validated AUROC is 0.5 when the case mix is the same (validation then tests reproducibility) and
  near 1 when it differs (it tests transportability);
- standardised mean differences of the recorded features and of their missingness;
- which optional blocks (questionnaires, examination, tests) the site records, beside the source;
- the site's class mix estimated from the source model's probabilities alone, by the EM prior adjustment
  of Saerens, Latinne & Decaestecker (2002, Neural Computation 14:21), valid when p(x | class) is stable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from painml.config import GbmConfig
from painml.evaluation.metrics import auroc
from painml.features.encoding import build_features
from painml.model.families import make_classifier
from painml.record.columns import BLOCKS, BY_NAME, FEATURE_COLUMNS, OPTIONAL_BLOCKS

MEMBERSHIP_ROWS = 2_000
"""Source rows the membership model sees at most (AUROC does not depend on the class balance)."""
MEMBERSHIP_MODEL = GbmConfig(
    family="gbm", n_estimators=100, learning_rate=0.1, num_leaves=7, min_child_samples=20, reg_lambda=1.0,
    early_stopping_rounds=None,
)  # fmt: skip


@dataclass(frozen=True)
class PriorShift:
    """The EM estimate of the site's class mix and the source posteriors adjusted to it."""

    source_prior: np.ndarray
    site_prior: np.ndarray
    proba: np.ndarray
    iterations: int
    converged: bool


def em_prior_adjustment(
    proba: np.ndarray, source_prior: np.ndarray, *, tol: float = 1e-8, max_iter: int = 1000
) -> PriorShift:
    """Saerens et al. (2002): iterate p_t(k | x) proportional to pi_t(k) / pi_s(k) * p_s(k | x) and
    pi_{t+1}(k) = mean over rows of p_t(k | x), from pi_0 = pi_s, until the priors move less than ``tol``.

    ``proba`` are the source model's calibrated probabilities on the unlabelled site rows, ``source_prior``
    the class mix they were trained under."""
    proba = np.asarray(proba, dtype=np.float64)
    source = np.asarray(source_prior, dtype=np.float64) / np.sum(source_prior)
    prior = source.copy()
    adjusted = proba
    for iteration in range(1, max_iter + 1):
        weighted = proba * (prior / source)
        adjusted = weighted / weighted.sum(axis=1, keepdims=True)
        new = adjusted.mean(axis=0)
        if np.abs(new - prior).max() < tol:
            return PriorShift(source, new, adjusted, iteration, True)
        prior = new
    return PriorShift(source, prior, adjusted, max_iter, False)


def membership_auroc(source: pd.DataFrame, site: pd.DataFrame, *, seed: int = 0, folds: int = 5) -> float:
    """Cross-validated AUROC of a boosted model telling site rows (positive) from source rows, on every feature."""
    if len(source) > MEMBERSHIP_ROWS:
        source = source.sample(MEMBERSHIP_ROWS, random_state=seed)
    X = pd.concat([source[list(FEATURE_COLUMNS)], site[list(FEATURE_COLUMNS)]], ignore_index=True)
    y = np.r_[np.zeros(len(source), dtype=int), np.ones(len(site), dtype=int)]
    features = build_features("gbm", _all_groups())
    from sklearn.pipeline import Pipeline

    model = Pipeline([("features", features), ("model", make_classifier(MEMBERSHIP_MODEL, "none", seed, 2))])
    cv = StratifiedKFold(max(2, min(folds, len(site))), shuffle=True, random_state=seed)
    p = cross_val_predict(model, X, y, cv=cv, method="predict_proba")[:, 1]
    return auroc(y == 1, p)


def _all_groups() -> tuple[str, ...]:
    from painml.config import FeatureConfig

    return FeatureConfig().groups


def standardised_differences(source: pd.DataFrame, site: pd.DataFrame) -> pd.DataFrame:
    """Per recorded numeric or yes/no feature: means, SMD (difference over the pooled SD, on recorded values)
    and the share missing on each side; largest absolute SMD first."""
    rows = []
    for name in FEATURE_COLUMNS:
        if BY_NAME[name].kind not in ("binary", "integer", "number"):
            continue
        a = pd.to_numeric(source[name], errors="coerce").astype(float)
        b = pd.to_numeric(site[name], errors="coerce").astype(float)
        ma, mb = a.mean(), b.mean()
        pooled = np.sqrt((a.var() + b.var()) / 2) if a.notna().sum() > 1 and b.notna().sum() > 1 else np.nan
        smd = (mb - ma) / pooled if pooled and np.isfinite(pooled) and pooled > 0 else np.nan
        rows.append(
            {
                "feature": name,
                "source_mean": ma,
                "site_mean": mb,
                "smd": smd,
                "source_missing": float(a.isna().mean()),
                "site_missing": float(b.isna().mean()),
            }
        )
    table = pd.DataFrame(rows)
    return table.reindex(table["smd"].abs().sort_values(ascending=False, na_position="last").index).reset_index(
        drop=True
    )


def blocks_recorded(frame: pd.DataFrame) -> dict[str, float]:
    """Share of rows recording anything of each optional block (questionnaires, examination, tests)."""
    return {b: float(frame[list(BLOCKS[b])].notna().any(axis=1).mean()) for b in OPTIONAL_BLOCKS}


def describe_membership(value: float) -> str:
    """Debray's reading of the membership AUROC, in words."""
    if value < 0.6:
        return "similar case mix: validating here tests reproducibility"
    if value < 0.8:
        return "moderately different case mix: validating here tests reproducibility and transportability"
    return "very different case mix: validating here tests transportability"
