"""Decision curve analysis of "neuropathic component present?" (Vickers & Elkin 2006; Vickers et al., BMJ 2016).

Discrimination and calibration do not say whether acting on the model helps
patients. Net benefit does: true positives per patient minus false positives
weighted by the odds of the threshold probability pt, the exchange rate
between a missed component and an unneeded treatment or referral that pt
expresses. The question a clinic asks is whether the model beats the
questionnaire it already uses, so the yes/no screening rules (DN4 >= 4,
painDETECT >= 19, ...) enter as their own strategies, each scored only where
it could be computed, against the model on exactly those rows (reference
notes, section 4). No p-values or CIs (Vickers et al. 2023).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from painml.evaluation.metrics import (
    COMPONENT_ABSENT,
    COMPONENT_PRESENT,
    _binary_baselines,
    _check_classes,
    _labels,
    _proba,
)
from painml.features import screening

__all__ = [
    "ALL_ROWS",
    "DEFAULT_THRESHOLDS",
    "MODEL",
    "REFERENCE_STRATEGIES",
    "TREAT_ALL",
    "TREAT_NONE",
    "ComponentQuestion",
    "component_question",
    "decision_curve",
    "net_benefit",
    "screening_tests",
]

DEFAULT_THRESHOLDS = np.round(np.arange(0.05, 0.51, 0.01), 2)
"""5-50%: a neuropathic-pain trial or a referral is worth a few unneeded ones per component found."""
ALL_ROWS = "all"
MODEL = "model"
TREAT_ALL = "treat all"
TREAT_NONE = "treat none"
REFERENCE_STRATEGIES = (MODEL, TREAT_ALL, TREAT_NONE)
COLUMNS = ["rows", "n", "prevalence", "strategy", "threshold", "net_benefit", "net_interventions_avoided_per_100"]


@dataclass(frozen=True, eq=False)
class ComponentQuestion:
    """The binary question "neuropathic component present?" cut out of a multiclass problem.

    ``rows`` marks the rows asked (label in ``present`` or ``absent``; rows of
    any other class, e.g. a fourth label, cannot be scored against it, as in
    :func:`~painml.evaluation.metrics.baseline_metrics`); ``y`` and ``p`` are
    on those rows only. ``p`` is the sum of the model's probabilities of the
    ``present`` classes, not renormalised over the asked classes: at decision
    time a patient's class is unknown.
    """

    y: np.ndarray
    p: np.ndarray
    rows: np.ndarray
    present: tuple[str, ...]
    absent: tuple[str, ...]


def _check_threshold(threshold: float) -> float:
    t = float(threshold)
    if not 0 < t < 1:
        raise ValueError(f"threshold probabilities must be in (0, 1), got {threshold}")
    return t


def _bool(values: object, what: str, n: int | None = None) -> np.ndarray:
    arr = np.asarray(values).ravel()
    if arr.dtype != bool:
        if not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{what} must be boolean or 0/1")
        arr = arr.astype(bool)
    if n is not None and len(arr) != n:
        raise ValueError(f"{what} has {len(arr)} rows, expected {n}")
    return arr


def net_benefit(y: object, positive: object, threshold: float) -> float:
    """NB = TP/n - FP/n * pt/(1 - pt) of acting on ``positive``; NaN without rows.

    In units of true positives per patient: 0.10 is worth 10 components found
    per 100 patients with no unneeded treatment.
    """
    pt = _check_threshold(threshold)
    yy = _bool(y, "y")
    pos = _bool(positive, "positive", len(yy))
    n = len(yy)
    if n == 0:
        return float("nan")
    tp = np.count_nonzero(pos & yy)
    fp = np.count_nonzero(pos & ~yy)
    return float(tp / n - fp / n * pt / (1 - pt))


def decision_curve(
    y_component: object,
    p_component: object,
    thresholds: Sequence[float] | np.ndarray = DEFAULT_THRESHOLDS,
    *,
    tests: Mapping[str, tuple[object, object]] | None = None,
) -> pd.DataFrame:
    """Net benefit of the model, treat all, treat none and each screening test, in long format.

    The model treats when p >= pt. A test (``tests[name] = (positive,
    available)``, both boolean over the same rows as ``y_component``) treats
    its positives whatever pt is, so its curve changes only through the
    weight pt/(1 - pt).

    Like-for-like design: a test is scored only on its ``available`` rows,
    and the model, treat all and treat none are scored AGAIN on exactly those
    rows. The ``rows`` column names the subset a number was computed on:
    ``"all"`` for every row (model, treat all, treat none), and a test's name
    for that test's available rows (model, treat all, treat none and the test
    itself). Compare strategies only within one ``rows`` value; ``n`` and
    ``prevalence`` describe that subset. ``net_interventions_avoided_per_100``
    = (NB - NB_treat_all) / (pt/(1 - pt)) * 100: how many fewer patients per
    100 are treated at the same number of components found (0 for treat all;
    for treat none the same formula, -NB_treat_all / odds * 100).
    Rows are ordered by subset ("all" first, then tests in the mapping's
    order), strategy, threshold.
    """
    y = _bool(y_component, "y_component")
    p = np.asarray(p_component, dtype=np.float64).ravel()
    if len(p) != len(y):
        raise ValueError(f"p_component has {len(p)} rows, expected {len(y)}")
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise ValueError("p_component must be finite probabilities in [0, 1]")
    pts = np.array([_check_threshold(t) for t in np.asarray(thresholds, dtype=np.float64).ravel()])
    if len(pts) == 0:
        raise ValueError("no thresholds")
    tests = dict(tests or {})
    clash = set(tests) & {ALL_ROWS, *REFERENCE_STRATEGIES}
    if clash:
        raise ValueError(f"test names clash with reserved names: {sorted(clash)}")
    subsets: list[tuple[str, np.ndarray, dict[str, np.ndarray]]] = [(ALL_ROWS, np.ones(len(y), dtype=bool), {})]
    for name, (positive, available) in tests.items():
        pos = _bool(positive, f"tests[{name!r}] positive", len(y))
        avail = _bool(available, f"tests[{name!r}] available", len(y))
        subsets.append((name, avail, {name: pos}))
    weight = pts / (1 - pts)
    frames = []
    for rows_name, mask, own_tests in subsets:
        ys, ps = y[mask], p[mask]
        n = len(ys)
        prevalence = float(ys.mean()) if n else np.nan
        curves = {
            MODEL: np.array([net_benefit(ys, ps >= pt, pt) for pt in pts]),
            TREAT_ALL: np.array([net_benefit(ys, np.ones(n, dtype=bool), pt) for pt in pts]),
            TREAT_NONE: np.zeros(len(pts)) if n else np.full(len(pts), np.nan),
        }
        for name, pos in own_tests.items():
            curves[name] = np.array([net_benefit(ys, pos[mask], pt) for pt in pts])
        for strategy, nb in curves.items():
            frames.append(
                pd.DataFrame(
                    {
                        "rows": rows_name,
                        "n": n,
                        "prevalence": prevalence,
                        "strategy": strategy,
                        "threshold": pts,
                        "net_benefit": nb,
                        "net_interventions_avoided_per_100": (nb - curves[TREAT_ALL]) / weight * 100,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True).loc[:, COLUMNS]


def component_question(
    y_true: Sequence[str] | np.ndarray | pd.Series,
    proba: np.ndarray | pd.DataFrame,
    classes: Sequence[str],
) -> ComponentQuestion | None:
    """The "neuropathic component present?" question from multiclass labels and probabilities.

    Present = labels in COMPONENT_PRESENT ("neuropathic", "mixed") found in
    ``classes``, absent = COMPONENT_ABSENT ("nociceptive"). None when the
    label set has no such contrast (no present or no absent class in
    ``classes``): there is then no decision the screening tools answer.
    """
    classes = _check_classes(classes)
    y = _labels(y_true, classes)
    p = _proba(proba, classes, len(y))
    present = tuple(c for c in COMPONENT_PRESENT if c in classes)
    absent = tuple(c for c in COMPONENT_ABSENT if c in classes)
    if not present or not absent:
        return None
    rows = np.isin(y, present + absent)
    columns = [classes.index(c) for c in present]
    p_component = np.clip(p[rows][:, columns].sum(axis=1), 0.0, 1.0)
    return ComponentQuestion(y=np.isin(y[rows], present), p=p_component, rows=rows, present=present, absent=absent)


def screening_tests(frame: pd.DataFrame, rows: np.ndarray | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The yes/no screening rules of ``baseline_metrics`` as ``decision_curve`` tests: name -> (positive, available).

    ``available`` is where the rule's score could be computed (a site that
    does not record a tool has no test there, it is not a negative screen).
    ``rows`` (e.g. :attr:`ComponentQuestion.rows`) restricts both to the rows
    asked, so they line up with ``y_component``.
    """
    scores = screening.compute_scores(frame)
    mask = np.ones(len(frame), dtype=bool) if rows is None else _bool(rows, "rows", len(frame))
    out = {}
    for name, column, cutoff in _binary_baselines():
        score = scores[column].to_numpy(dtype=np.float64)[mask]
        available = ~np.isnan(score)
        out[name] = (available & (np.nan_to_num(score, nan=-np.inf) >= cutoff), available)
    return out
