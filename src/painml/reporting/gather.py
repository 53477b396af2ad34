"""What the reviewer report shows, gathered in one record, and the statistics computed for it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from painml.config import TrainConfig
from painml.evaluation.clinical import ClinicalEvaluation
from painml.evaluation.decision import TREAT_ALL, TREAT_NONE
from painml.evaluation.sample_size import CRITERIA, SampleSizeAssessment
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
    sites: pd.DataFrame | None = None
    """Leave-one-site-out results of the winner (each site predicted by a model fitted on the others)."""
    sample_size_basis: str = ""
    """Where the anticipated performance of the sample-size check came from, in words."""
    sample_size_lines: tuple[str, ...] = ()
    """The lines of the run's ``sample_size.txt``: what a rebuilt report shows when ``sample_size`` is empty."""


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


# --------------------------------------------------------------------------- validation, sample size, utility

ESTIMATED_METRICS = ("macro_f1", "balanced_accuracy", "accuracy", "log_loss", "brier")
"""Metrics logged with a resampling interval (``test_<m>_ci_low/_ci_high``) under resampling validation."""
DECISION_THRESHOLDS = (0.1, 0.2, 0.3)
"""Threshold probabilities the decision table shows (the curves span 5-50%)."""


def resampled(inputs: ReportInputs) -> bool:
    """True when performance was estimated by resampling (every row predicted out-of-fold), not on a test split."""
    return inputs.validation != "holdout"


def estimated_vs_apparent(metrics: dict[str, float], classes: list[str]) -> pd.DataFrame:
    """The estimate (out-of-fold, or optimism-corrected under the bootstrap), its 95% interval and the apparent
    (in-sample) value of each metric logged by a resampled run; ``optimism`` is apparent minus estimate (for
    log loss and Brier, lower is better, so optimism is negative there); ``plus632`` the .632+ estimate where
    the run logged one. Rows with no estimate are left out."""
    keys = [*ESTIMATED_METRICS, *[f"auroc_{c}" for c in classes], "pdi", "ece"]
    rows = []
    for key in keys:
        estimate = metrics.get(f"test_{key}")
        if estimate is None or not np.isfinite(estimate):
            continue
        apparent = metrics.get(f"apparent_{key}", np.nan)
        rows.append(
            {
                "metric": key,
                "estimate": float(estimate),
                "low": float(metrics.get(f"test_{key}_ci_low", np.nan)),
                "high": float(metrics.get(f"test_{key}_ci_high", np.nan)),
                "apparent": float(apparent),
                "optimism": float(apparent) - float(estimate),
                "plus632": float(metrics.get(f"test_{key}_632plus", np.nan)),
            }
        )
    return pd.DataFrame(rows, columns=["metric", "estimate", "low", "high", "apparent", "optimism", "plus632"])


def decision_summary(decision: pd.DataFrame, thresholds: tuple[float, ...] = DECISION_THRESHOLDS) -> pd.DataFrame:
    """Net benefit and net interventions avoided per 100 at a few thresholds, one row per (row subset, strategy).

    Wide: ``nb_<t>`` and ``avoided_<t>`` for each threshold t (as a percentage in the name, e.g. ``nb_10``).
    Treat none is left out (its net benefit is 0 by definition); treat all's interventions avoided are NaN
    (it is what the others are compared with). Subsets keep the frame's order ("all" first, then each
    screening tool's own rows, where the model and treat all are scored again).
    """
    out = []
    for (subset, strategy), block in decision.groupby(["rows", "strategy"], sort=False):
        if strategy == TREAT_NONE:
            continue
        row: dict[str, Any] = {
            "rows": subset,
            "n": int(block["n"].iloc[0]),
            "prevalence": float(block["prevalence"].iloc[0]),
            "strategy": strategy,
        }
        for t in thresholds:
            at = block[np.isclose(block["threshold"], t)]
            nb = float(at["net_benefit"].iloc[0]) if len(at) else np.nan
            avoided = float(at["net_interventions_avoided_per_100"].iloc[0]) if len(at) else np.nan
            row[f"nb_{round(t * 100)}"] = nb
            row[f"avoided_{round(t * 100)}"] = np.nan if strategy == TREAT_ALL else avoided
        out.append(row)
    return pd.DataFrame(out)


@dataclass(frozen=True)
class SampleSizeRow:
    """One family's sample-size check as the report shows it, from the structured assessment or, for a
    report rebuilt from a run, from the logged metrics and the verdict line of ``sample_size.txt``."""

    family: str
    n: int
    parameters: float
    n_required: float
    binding: str
    """The criterion that sets ``n_required``, in words ("" when unknown)."""
    parameters_supported: float
    expected_shrinkage: float
    adequate: bool | None
    verdict: str


def sample_size_rows(inputs: ReportInputs) -> list[SampleSizeRow]:
    """Every family's sample-size check, in config order: the structured assessments when training handed them
    over, otherwise the run's ``<family>.sample_size_*`` metrics and ``sample_size_lines``."""
    verdicts = parse_sample_size_lines(inputs.sample_size_lines)[1]
    n = len(inputs.y)
    out = []
    for model in inputs.cfg.models:
        family = model.family
        s = inputs.sample_size.get(family)
        if s is not None:
            binding = f"({s.binding}) {CRITERIA[s.binding]}"
            if s.model == "multinomial" and s.binding == "i":
                binding += f", {s.binding_pair[0]} vs {s.binding_pair[1]}"
            out.append(
                SampleSizeRow(
                    family,
                    s.n,
                    s.parameters,
                    s.n_required,
                    binding,
                    s.parameters_supported,
                    s.expected_shrinkage,
                    s.adequate,
                    s.verdict,
                )
            )
            continue
        m = inputs.metrics
        required = m.get(f"{family}.sample_size_required")
        verdict = verdicts.get(family, "")
        if required is None and not verdict:
            continue
        criterion = re.search(r"criterion (i{1,3}):", verdict)
        out.append(
            SampleSizeRow(
                family,
                n,
                float(m.get(f"{family}.sample_size_parameters", np.nan)),
                float(np.nan if required is None else required),
                f"({criterion.group(1)}) {CRITERIA[criterion.group(1)]}" if criterion else "",
                float(m.get(f"{family}.sample_size_parameters_supported", np.nan)),
                float(m.get(f"{family}.sample_size_expected_shrinkage", np.nan)),
                None if required is None else n >= required,
                verdict,
            )
        )
    return out


def parse_sample_size_lines(lines: tuple[str, ...] | list[str]) -> tuple[str, dict[str, str]]:
    """The anticipated-performance basis and each family's verdict from the lines of a run's ``sample_size.txt``
    (``anticipated performance: ...`` then ``<family>: <P> candidate parameters per class contrast; <verdict>``)."""
    basis, verdicts = "", {}
    for line in lines:
        line = line.strip()
        if line.startswith("anticipated performance:"):
            basis = line.removeprefix("anticipated performance:").strip()
            continue
        family, sep, rest = line.partition(": ")
        if sep:
            verdicts[family] = rest.split("; ", 1)[1] if "; " in rest else rest
    return basis, verdicts
