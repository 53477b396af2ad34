"""What a clinician and a reviewer need of one family's held-out (or out-of-fold) predictions on small data:
calibration as intercept, slope and a flexible curve per class (Van Calster's hierarchy), the polytomous
discrimination index, and decision curves for the question clinicians act on, "is there a neuropathic
component?", against the screening tools on the same rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from painml.evaluation.calibration import (
    CalibrationCurve,
    flexible_calibration_curve,
    per_class_calibration,
    polytomous_discrimination_index,
)
from painml.evaluation.decision import component_question, decision_curve, screening_tests

CURVE_ROWS = 2_000
"""Rows a flexible curve is drawn from (a seeded sample above that: loess costs n squared)."""
CURVE_BOOT = 100


@dataclass(frozen=True)
class ClinicalEvaluation:
    """The calibration table and curves, the decision curves (None without a component question) and metrics."""

    calibration: pd.DataFrame
    curves: dict[str, CalibrationCurve]
    decision: pd.DataFrame | None
    metrics: dict[str, float]


def clinical_evaluation(
    y: np.ndarray, proba: np.ndarray, classes: list[str], frame: pd.DataFrame, *, seed: int = 0
) -> ClinicalEvaluation:
    """Calibration, PDI and decision curves of ``proba`` (rows aligned with ``y`` and the record ``frame``)."""
    table = per_class_calibration(y, proba, classes)
    metrics: dict[str, float] = {}
    for row in table.to_dict("records"):
        for what in ("intercept", "slope"):
            key = f"test_calibration_{what}_{row['class']}"
            metrics[key] = float(row[what])
            metrics[f"{key}_ci_low"], metrics[f"{key}_ci_high"] = float(row[f"{what}_low"]), float(row[f"{what}_high"])
    sample = np.arange(len(y))
    if len(y) > CURVE_ROWS:
        sample = np.sort(np.random.default_rng(seed).choice(len(y), CURVE_ROWS, replace=False))
    curves = {}
    for k, c in enumerate(classes):
        positive = y[sample] == c
        if positive.any() and not positive.all():
            curves[c] = flexible_calibration_curve(positive, proba[sample, k], boot=CURVE_BOOT, seed=seed)
            metrics[f"test_ici_{c}"] = float(curves[c].ici)
    if len(classes) >= 3:
        y_index = np.array([classes.index(v) for v in y])
        metrics["test_pdi"] = float(polytomous_discrimination_index(y_index, proba))
    question = component_question(y, proba, classes)
    decision = None
    if question is not None and len(np.unique(question.y)) == 2:
        tests = screening_tests(frame, rows=question.rows)
        tests = {name: test for name, test in tests.items() if test[1].any()}
        decision = decision_curve(question.y, question.p, tests=tests)
    return ClinicalEvaluation(table, curves, decision, metrics)
