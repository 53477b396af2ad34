"""What the reviewer report shows, gathered in one record, and the statistics computed for it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from painml.config import TrainConfig
from painml.evaluation.clinical import ClinicalEvaluation
from painml.evaluation.metrics import COMPONENT_ABSENT, COMPONENT_PRESENT
from painml.evaluation.sample_size import SampleSizeAssessment
from painml.evaluation.stability import Instability
from painml.model.bundle import ModelBundle
from painml.record.columns import BLOCKS
from painml.record.vocabulary import block_title


@dataclass
class ReportInputs:
    """Everything the report shows, gathered from one run."""

    run_id: str
    run_name: str
    started: str
    tags: dict[str, str]
    cfg: TrainConfig
    lineage: dict[str, Any]
    simulated: bool
    winner: str
    bundle: ModelBundle
    frame: pd.DataFrame
    y: np.ndarray
    rows: dict[str, np.ndarray]
    metrics: dict[str, float]
    comparison: pd.DataFrame
    subgroups: pd.DataFrame
    baselines: pd.DataFrame
    images: dict[str, bytes] = field(default_factory=dict)
    shap_dir: Path | None = None
    proba: np.ndarray | None = None
    """The winner's probabilities on the test rows, when the caller has them (training does)."""
    validation: str = "holdout"
    """holdout (``rows["test"]`` held out) or cv (every row, predicted out-of-fold; model fitted on all rows)."""
    clinical: ClinicalEvaluation | None = None
    """The winner's calibration table and curves, and decision curves, on the same rows as ``proba``."""
    stability: Instability | None = None
    """The winner's prediction instability across the cross-validation refits (cv only)."""
    sample_size: dict[str, SampleSizeAssessment] = field(default_factory=dict)
    """The sample-size check of every family, made before fitting."""
    sample_size_basis: str = ""
    """Where the anticipated performance of the sample-size check came from, in words."""


def component_table(
    baselines: pd.DataFrame, y_true: np.ndarray, proba: np.ndarray, classes: list[str], model_name: str
) -> pd.DataFrame:
    """The yes/no screening tools against the model on their question: is a neuropathic component present?

    The model answers with P(not nociceptive) >= 0.5, on every row the tools
    were asked about (rows labelled nociceptive, neuropathic or mixed).
    """
    tools = (
        baselines[baselines["question"] == "neuropathic component"] if "question" in baselines else baselines.iloc[:0]
    )
    present = [c for c in COMPONENT_PRESENT if c in classes]
    absent = [c for c in COMPONENT_ABSENT if c in classes]
    rows = []
    if present and absent:
        asked = np.isin(y_true, present + absent)
        truth = np.isin(y_true[asked], present)
        score = proba[asked][:, [classes.index(c) for c in present]].sum(axis=1)
        positive = score >= 0.5
        sens = float(positive[truth].mean()) if truth.any() else np.nan
        spec = float((~positive[~truth]).mean()) if (~truth).any() else np.nan
        auc = float(roc_auc_score(truth, score)) if 0 < truth.sum() < len(truth) else np.nan
        rows.append(
            {
                "tool": f"{model_name} (P(neuropathic or mixed) >= 0.5)",
                "coverage": 1.0,
                "sensitivity": sens,
                "specificity": spec,
                "balanced_accuracy": (sens + spec) / 2,
                "auroc": auc,
            }
        )
    for _, b in tools.iterrows():
        rows.append(
            {
                "tool": b["baseline"],
                "coverage": b["coverage"],
                "sensitivity": b["sensitivity"],
                "specificity": b["specificity"],
                "balanced_accuracy": b["balanced_accuracy"],
                "auroc": b["auroc"],
            }
        )
    return pd.DataFrame(rows, columns=["tool", "coverage", "sensitivity", "specificity", "balanced_accuracy", "auroc"])


def missingness(frame: pd.DataFrame) -> pd.DataFrame:
    """Per block of the record: rows with nothing recorded in it, and cells missing."""
    rows = []
    for block, cols in BLOCKS.items():
        if block == "identification":
            continue
        present = [c for c in cols if c in frame.columns]
        if not present:
            continue
        missing = frame[present].isna()
        rows.append(
            {
                "block": block_title(block).name,
                "columns": len(present),
                "rows with the whole block missing": float(missing.all(axis=1).mean()),
                "cells missing": float(missing.to_numpy().mean()),
            }
        )
    return pd.DataFrame(rows)
