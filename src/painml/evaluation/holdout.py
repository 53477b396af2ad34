"""One family on the held-out test rows: metrics, conformal coverage, tables; and the side-by-side
comparison of every family with the ceiling and the screening tools on the same rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from painml.config import FAMILY_SIMPLICITY, higher_is_better
from painml.evaluation.clinical import clinical_evaluation
from painml.evaluation.metrics import (
    classification_metrics,
    confusion,
    subgroup_metrics,
)
from painml.model.bundle import ModelBundle
from painml.model.conformal import coverage, prediction_sets
from painml.model.dataset import Dataset


@dataclass
class FamilyResult:
    family: str
    bundle: ModelBundle
    metrics: dict[str, float]
    proba: np.ndarray
    fit_seconds: float
    artifacts: dict[str, Any] = field(default_factory=dict)


def evaluate_family(bundle: ModelBundle, data: Dataset, rows: dict[str, np.ndarray]) -> tuple[dict, np.ndarray, dict]:
    """Test-set metrics, conformal coverage and the tables and figures for one family."""
    classes = bundle.classes
    test = rows["test"]
    y = data.y[test]
    proba = bundle.predict_proba(data.X.iloc[test])
    metrics = classification_metrics(y, proba, classes)
    sets = prediction_sets(proba, bundle.metadata.thresholds)
    y_index = np.array([classes.index(v) for v in y])
    metrics["test_conformal_coverage"], metrics["test_conformal_set_size"] = coverage(sets, y_index)
    predicted = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    frame = data.records.frame.iloc[test]
    clinical = clinical_evaluation(y, proba, classes, frame)
    metrics |= clinical.metrics
    tables = {
        "confusion": confusion(y, predicted, classes),
        "subgroups": subgroup_metrics(frame, y, proba, classes),
        "clinical": clinical,
    }
    return metrics, proba, tables


def comparison_table(
    results: dict[str, FamilyResult], oracle: dict[str, float], baselines: pd.DataFrame
) -> pd.DataFrame:
    """Three-class view on the same test rows: each model, the exact-posterior ceiling, painDETECT bands."""
    keys = ["macro_f1", "balanced_accuracy", "accuracy", "log_loss", "brier", "ece", "auroc_neuropathic"]
    rows = [{"model": family, **{k: r.metrics.get(f"test_{k}", np.nan) for k in keys}} for family, r in results.items()]
    if oracle:
        rows.append({"model": "exact posterior (ceiling)", **{k: oracle.get(f"oracle_{k}", np.nan) for k in keys}})
    for _, b in baselines[baselines["question"] == "3 classes"].iterrows():
        rows.append(
            {
                "model": b["baseline"],
                "macro_f1": b["macro_f1"],
                "balanced_accuracy": b["balanced_accuracy"],
                "accuracy": b["accuracy"],
            }
        )
    return pd.DataFrame(rows, columns=["model", *keys]).set_index("model")


def choose_winner(results: dict[str, FamilyResult], primary: str) -> tuple[str, str]:
    """The family to register, and why in words.

    The best on the primary metric, unless a simpler family (screening, then logistic, then gbm) is within
    one standard error of it (the one-standard-error rule; the error from the metric's resampling interval),
    in which case the simplest such family: on small data a difference within the noise is not a reason to
    take the more flexible model.
    """
    better = max if higher_is_better(primary) else min
    best = better(results, key=lambda f: results[f].metrics[primary])
    value = results[best].metrics[primary]
    low, high = results[best].metrics.get(f"{primary}_ci_low"), results[best].metrics.get(f"{primary}_ci_high")
    if low is None or high is None or not np.isfinite(low) or not np.isfinite(high):
        return best, f"{best}, best {primary} ({value:.4f})"
    se = (high - low) / (2 * 1.96)
    rank = {f: FAMILY_SIMPLICITY.index(f) if f in FAMILY_SIMPLICITY else len(FAMILY_SIMPLICITY) for f in results}
    close = [f for f in results if abs(results[f].metrics[primary] - value) <= se]
    simplest = min(close, key=lambda f: rank[f])
    if simplest == best:
        return best, f"{best}, best {primary} ({value:.4f}; standard error {se:.4f})"
    return simplest, (
        f"{simplest}: its {primary} ({results[simplest].metrics[primary]:.4f}) is within one standard error "
        f"({se:.4f}) of the best, {best} ({value:.4f}), and it is the simpler model"
    )
