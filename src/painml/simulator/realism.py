"""Does a simulated cohort look like the clinics in the literature?

Each target of ``shared/reference/clinical-figures.md`` section 4 is computed
on a drawn cohort with a 95% interval and compared with its published band.
Definitions used throughout:

* **case-control subsample**: clear cases as in validation studies: the true
  mechanism is purely neuropathic or purely nociceptive, not borderline, and
  the clinician's label agrees with it.
* **consecutive patients**: everyone with the score recorded, scored against
  the clinician's label; mixed counts as "neuropathic component present".
* **chronic low back pain subgroup**: axial low back pain and lumbar
  radiculopathy together, as in Freynhagen 2006's 8,000 back pain patients.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from rich.table import Table
from scipy.stats import norm

from painml.features import screening
from painml.simulator.clinical_tables import MECHANISMS

Z = norm.ppf(0.975)


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float
    n: int


@dataclass(frozen=True)
class Target:
    number: int
    name: str
    band: tuple[float, float]
    compute: Callable[[pd.DataFrame, pd.DataFrame], Estimate]


@dataclass(frozen=True)
class Result:
    target: Target
    estimate: Estimate

    @property
    def inside(self) -> bool:
        return self.target.band[0] <= self.estimate.value <= self.target.band[1]

    @property
    def compatible(self) -> bool:
        """The interval overlaps the band: the check for small cohorts."""
        return self.estimate.high >= self.target.band[0] and self.estimate.low <= self.target.band[1]


def wilson(successes: float, n: int) -> Estimate:
    """Proportion with its Wilson 95% interval."""
    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    p = successes / n
    denom = 1 + Z**2 / n
    centre = (p + Z**2 / (2 * n)) / denom
    half = Z * np.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2)) / denom
    return Estimate(p, centre - half, centre + half, n)


def _case_control(df: pd.DataFrame) -> pd.Series:
    return (df.true_pain_type != "mixed") & (df.true_severity != "borderline") & (df.pain_type == df.true_pain_type)


def _rate(score: str, cut: float, mask: Callable[[pd.DataFrame], pd.Series], positive: bool | None) -> Callable:
    """Share scoring >= cut; among labelled neuropathic-component (True), nociceptive (False) or all (None)."""

    def compute(df: pd.DataFrame, scores: pd.DataFrame) -> Estimate:
        keep = mask(df) & scores[score].notna()
        component = df.pain_type != "nociceptive"
        if positive is not None:
            keep &= component == positive
        hit = scores.loc[keep, score] >= cut
        if positive is False:
            hit = ~hit
        return wilson(int(hit.sum()), int(keep.sum()))

    return compute


def _share(label: str) -> Callable:
    return lambda df, _: wilson(int((df.pain_type == label).sum()), len(df))


def _agreement(df: pd.DataFrame, _: pd.DataFrame) -> Estimate:
    return wilson(int((df.pain_type == df.true_pain_type).sum()), len(df))


def _confusion(df: pd.DataFrame) -> np.ndarray:
    return pd.crosstab(
        pd.Categorical(df.pain_type, MECHANISMS), pd.Categorical(df.true_pain_type, MECHANISMS), dropna=False
    ).to_numpy(dtype=float)


def _kappa_of(table: np.ndarray) -> np.ndarray:
    """Cohen's kappa of one or many 3x3 tables (last two axes)."""
    total = table.sum(axis=(-2, -1))
    observed = np.trace(table, axis1=-2, axis2=-1) / total
    expected = (table.sum(axis=-1) * table.sum(axis=-2)).sum(axis=-1) / total**2
    return (observed - expected) / (1 - expected)


def _kappa(df: pd.DataFrame, _: pd.DataFrame) -> Estimate:
    table = _confusion(df)
    n = int(table.sum())
    rng = np.random.default_rng(0)
    boot = rng.multinomial(n, (table / n).ravel(), size=400).reshape(-1, 3, 3)
    low, high = np.percentile(_kappa_of(boot), [2.5, 97.5])
    return Estimate(float(_kappa_of(table)), float(low), float(high), n)


def _disagreement_share(df: pd.DataFrame, _: pd.DataFrame) -> Estimate:
    """Share of label disagreements that fall on mixed or borderline patients."""
    wrong = df.pain_type != df.true_pain_type
    hard = (df.true_pain_type == "mixed") | (df.true_severity == "borderline")
    return wilson(int((wrong & hard).sum()), int(wrong.sum()))


def _bayes_accuracy(df: pd.DataFrame, _: pd.DataFrame) -> Estimate:
    posterior = df[[f"true_p_{m}" for m in MECHANISMS]].to_numpy()
    predicted = np.asarray(MECHANISMS)[posterior.argmax(axis=1)]
    return wilson(int((predicted == df.pain_type.to_numpy()).sum()), len(df))


_ALL = lambda df: pd.Series(True, index=df.index)
_CLBP = lambda df: df.true_condition.isin(["chronic_low_back_pain", "lumbar_radiculopathy"])
_KNEE = lambda df: df.true_condition == "knee_osteoarthritis"
_PD = screening.PAINDETECT_POSITIVE

TARGETS: tuple[Target, ...] = (
    Target(1, "DN4 >= 4, case-control: sensitivity", (0.76, 0.90), _rate("dn4", 4, _case_control, True)),
    Target(1, "DN4 >= 4, case-control: specificity", (0.83, 0.97), _rate("dn4", 4, _case_control, False)),
    Target(2, "DN4 >= 4, consecutive: sensitivity", (0.70, 0.85), _rate("dn4", 4, _ALL, True)),
    Target(2, "DN4 >= 4, consecutive: specificity", (0.70, 0.85), _rate("dn4", 4, _ALL, False)),
    Target(3, "painDETECT >= 19 in chronic low back pain", (0.29, 0.45), _rate("paindetect", _PD, _CLBP, None)),
    Target(3, "painDETECT >= 13 in knee osteoarthritis", (0.30, 0.50), _rate("paindetect", 13, _KNEE, None)),
    Target(3, "painDETECT >= 19 in knee osteoarthritis", (0.12, 0.28), _rate("paindetect", _PD, _KNEE, None)),
    Target(
        4, "painDETECT >= 19, case-control: sensitivity", (0.50, 0.85), _rate("paindetect", _PD, _case_control, True)
    ),
    Target(
        4, "painDETECT >= 19, case-control: specificity", (0.80, 1.00), _rate("paindetect", _PD, _case_control, False)
    ),
    Target(5, "LANSS >= 12, case-control: sensitivity", (0.75, 0.90), _rate("lanss", 12, _case_control, True)),
    Target(5, "LANSS >= 12, case-control: specificity", (0.75, 0.90), _rate("lanss", 12, _case_control, False)),
    Target(6, "share labelled neuropathic", (0.35, 0.51), _share("neuropathic")),
    Target(6, "share labelled nociceptive", (0.21, 0.37), _share("nociceptive")),
    Target(6, "share labelled mixed", (0.20, 0.36), _share("mixed")),
    Target(7, "label agrees with true mechanism", (0.75, 0.85), _agreement),
    Target(7, "kappa, label vs true mechanism", (0.60, 0.75), _kappa),
    Target(7, "disagreements in mixed or borderline patients", (0.60, 1.00), _disagreement_share),
    Target(8, "exact-posterior (Bayes) accuracy on the label", (0.70, 0.88), _bayes_accuracy),
)


def evaluate_realism(cohort: pd.DataFrame) -> list[Result]:
    """Every target on a simulated cohort (it must carry the ``true_*`` columns)."""
    scores = screening.compute_scores(cohort)
    return [Result(t, t.compute(cohort, scores)) for t in TARGETS]


def realism_table(results: list[Result], title: str):
    """A rich table of the results, one row per target."""
    table = Table(title=title)
    for name, justify in (
        ("#", "right"),
        ("target", "left"),
        ("simulated", "right"),
        ("95% interval", "right"),
        ("published band", "right"),
        ("n", "right"),
        ("inside", "center"),
    ):
        table.add_column(name, justify=justify)
    for r in results:
        e, (lo, hi) = r.estimate, r.target.band
        table.add_row(
            str(r.target.number),
            r.target.name,
            f"{e.value:.3f}",
            f"{e.low:.3f}-{e.high:.3f}",
            f"{lo:.2f}-{hi:.2f}",
            f"{e.n:,}",
            "[green]yes[/]" if r.inside else "[red]NO[/]",
        )
    return table
