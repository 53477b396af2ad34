"""One family on the held-out test rows: metrics, conformal coverage, tables; and the side-by-side
comparison of every family with the ceiling and the screening tools on the same rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

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
    sets = prediction_sets(proba, bundle.metadata.conformal_qhat)
    y_index = np.array([classes.index(v) for v in y])
    metrics["test_conformal_coverage"], metrics["test_conformal_set_size"] = coverage(sets, y_index)
    predicted = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    frame = data.records.frame.iloc[test]
    tables = {
        "confusion": confusion(y, predicted, classes),
        "subgroups": subgroup_metrics(frame, y, proba, classes),
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
