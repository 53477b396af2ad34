"""Minimum sample size for developing a prediction model, and what a given cohort can support.

Why: a model fitted to too few patients overfits, and its predicted probabilities come out too extreme.
Whether that will happen can be said *before* fitting, from the number of candidate parameters, the class
shares and an anticipated discrimination. TRIPOD+AI asks for exactly this calculation.

- Binary outcome: Riley et al., Stat Med 2019;38:1276 (doi 10.1002/sim.7992), and BMJ 2020;368:m441.
  (i) expected uniform shrinkage >= S, i.e. ``n = P / ((S-1) ln(1 - R2cs/S))``; (ii) small optimism
  (<= 0.05) in Nagelkerke R2, i.e. the same formula with ``S = R2cs / (R2cs + 0.05 maxR2cs)``;
  (iii) overall risk to +-0.05, i.e. ``n = (1.96/0.05)^2 phi (1-phi)``.
- C statistic to Cox-Snell R2: Riley, Van Calster & Collins, Stat Med 2021;40:859 (simulate the linear
  predictor under a binormal model and fit a calibration logistic regression).
- Multinomial outcome: Pate et al., Stat Methods Med Res 2023 (doi 10.1177/09622802231151220).
  (i) applied to every pairwise logistic submodel; (ii) on the overall Nagelkerke R2 with (K-1)P
  parameters; (iii) every class share to +-0.05, Bonferroni-adjusted.

Re-implemented from the published formulas (the Python ``pmsampsize`` is GPL-3 and has no multinomial
type). Sample sizes are rounded up, as in the papers; inversions (parameters supported, expected
shrinkage) are left unrounded.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import combinations
from typing import Literal

import numpy as np
from scipy import optimize, special, stats

from painml.evaluation.metrics import TRUE_P_PREFIX, auroc
from painml.record.labels import resolve
from painml.simulator.simulate import simulate

__all__ = [
    "CRITERIA",
    "DEFAULT_NAGELKERKE",
    "DEFAULT_SEED",
    "SIMULATED_N",
    "BinarySampleSize",
    "Criterion",
    "MultinomialSampleSize",
    "PairwiseSubmodel",
    "SampleSizeAssessment",
    "assess",
    "c_to_r2cs",
    "expected_shrinkage",
    "max_r2cs",
    "max_r2cs_multinomial",
    "n_for_shrinkage",
    "nagelkerke_to_r2cs",
    "parameters_supported",
    "pate_multinomial",
    "riley_binary",
]

Criterion = Literal["i", "ii", "iii"]
CRITERIA: dict[Criterion, str] = {
    "i": "expected shrinkage of predictor effects",
    "ii": "optimism in Nagelkerke R2",
    "iii": "precision of the outcome proportions",
}
"""What each criterion protects, for messages."""

Pair = tuple[str, str]
ConversionMethod = Literal["simulate", "exact"]

SIMULATED_N = 1_000_000
"""Simulated patients per C -> R2cs conversion, as in R ``pmsampsize::cstat2rsq``."""
DEFAULT_SEED = 123456
"""The seed ``cstat2rsq`` uses. numpy's generator differs from R's, so results agree only to Monte Carlo error."""
DEFAULT_NAGELKERKE = 0.15
"""Overall Nagelkerke R2 assumed for Pate criterion (ii) when the caller knows only pairwise C statistics.

0.15 is the value of Pate et al.'s worked example (``multsampsize`` README). It is a modest value, and the
assumption matters little: criterion (ii) needs more patients the lower the R2, but assuming 0.15 rather
than the worst case (Nagelkerke near 0) understates it by under 10%, and criterion (i) usually
binds by a wide margin (ovarian example: 1,477 vs 13,136). Pass ``nagelkerke`` when a better value is known.
"""
_Z95 = 1.96
_ALPHA = 0.05


# --------------------------------------------------------------------------------------------- validation


def _check_fraction(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {value!r}")
    return value


def _check_parameters(parameters: float) -> float:
    parameters = float(parameters)
    if not parameters >= 1.0:
        raise ValueError(f"parameters must be at least 1 (candidate predictor parameters), got {parameters!r}")
    return parameters


def _check_n(n: float) -> float:
    n = float(n)
    if not n > 0.0 or not math.isfinite(n):
        raise ValueError(f"n must be a positive number of patients, got {n!r}")
    return n


def _check_r2cs(r2cs: float, ceiling: float, shrinkage: float, what: str = "r2cs") -> float:
    r2cs = float(r2cs)
    if not r2cs > 0.0:
        raise ValueError(f"{what} must be positive, got {r2cs!r}")
    if r2cs >= ceiling:
        raise ValueError(
            f"{what} = {r2cs:.4g} is not below the maximum Cox-Snell R2 of {ceiling:.4g} for these outcome "
            "proportions; a Nagelkerke R2 would be r2cs / max"
        )
    if r2cs >= shrinkage:
        raise ValueError(f"{what} = {r2cs:.4g} must be below the target shrinkage {shrinkage:.4g}")
    return r2cs


def _ceil(x: float) -> int:
    """Round a required n up, ignoring float noise just above an integer (350.0000000001 -> 350)."""
    return math.ceil(x - 1e-9 * max(1.0, abs(x)))


# ------------------------------------------------------------------------------------------ R2 and C


def max_r2cs(prevalence: float) -> float:
    """Largest Cox-Snell R2 a binary model can reach, 1 - exp(2[phi ln phi + (1-phi) ln(1-phi)]).

    Why: Cox-Snell R2 cannot reach 1 for a binary outcome, so an anticipated R2cs only means something
    relative to this ceiling (their ratio is Nagelkerke's R2).
    """
    phi = _check_fraction("prevalence", prevalence)
    return float(-math.expm1(2.0 * (phi * math.log(phi) + (1.0 - phi) * math.log1p(-phi))))


def max_r2cs_multinomial(proportions: Mapping[str, float] | list[float] | tuple[float, ...]) -> float:
    """Largest Cox-Snell R2 of a multinomial model, 1 - (prod p_k^p_k)^2 (Pate et al. 2023)."""
    shares = _shares(proportions)
    return float(-math.expm1(2.0 * sum(p * math.log(p) for p in shares)))


def nagelkerke_to_r2cs(nagelkerke: float, prevalence: float) -> float:
    """Cox-Snell R2 that corresponds to a Nagelkerke R2 at this prevalence (R2cs = R2N * maxR2cs)."""
    return _check_fraction("nagelkerke", nagelkerke) * max_r2cs(prevalence)


def c_to_r2cs(
    c: float,
    prevalence: float,
    *,
    n: int = SIMULATED_N,
    seed: int = DEFAULT_SEED,
    method: ConversionMethod = "simulate",
) -> float:
    """Approximate the Cox-Snell R2 of a model with C statistic ``c`` (Riley, Van Calster & Collins 2021).

    Why: published models report C far more often than R2, and the sample-size formulas need R2cs.
    The linear predictor is N(sqrt(2) Phi^-1(C), 1) in events and N(0, 1) in non-events, which gives
    exactly this C; a logistic calibration model is then fitted by maximum likelihood and
    R2cs = 1 - exp(-2 (l_model - l_null) / n).

    ``method="simulate"`` does this on ``n`` simulated patients with a fixed ``seed`` (deterministic,
    about 0.1 s, Monte Carlo SD about 0.0005 at n = 10^6). ``method="exact"`` computes the n -> infinity
    limit by quadrature (the binormal model makes the logistic model exact, with slope sqrt(2) Phi^-1(C)),
    which removes the Monte Carlo error and takes under a millisecond. Results are cached.
    """
    c = float(c)
    if not 0.5 < c < 1.0:
        raise ValueError(f"C statistic must lie strictly between 0.5 and 1, got {c!r}")
    phi = _check_fraction("prevalence", prevalence)
    if method not in ("simulate", "exact"):
        raise ValueError(f"method must be 'simulate' or 'exact', got {method!r}")
    if method == "exact":
        return _r2cs_exact(c, phi)
    n = int(n)
    if n < 1000:
        raise ValueError(f"simulate at least 1,000 patients, got n={n}")
    events = round(phi * n)
    if not 0 < events < n:
        raise ValueError(f"prevalence {phi!r} leaves no events or no non-events among n={n} simulated patients")
    return _r2cs_simulated(c, phi, n, int(seed))


@lru_cache(maxsize=256)
def _r2cs_simulated(c: float, phi: float, n: int, seed: int) -> float:
    mu = math.sqrt(2.0) * float(stats.norm.ppf(c))
    events = round(phi * n)
    x = np.random.default_rng(seed).standard_normal(n)
    x[:events] += mu
    a, b = _fit_calibration(x, events, start=(math.log(phi / (1.0 - phi)) - mu * mu / 2.0, mu))
    loglik = _loglik(a + b * x, events)
    share = events / n
    null = events * math.log(share) + (n - events) * math.log1p(-share)
    return float(-math.expm1(-2.0 * (loglik - null) / n))


def _loglik(eta: np.ndarray, events: int) -> float:
    """Bernoulli log-likelihood with y = 1 for the first ``events`` rows."""
    return float(eta[:events].sum() - np.logaddexp(0.0, eta).sum())


def _fit_calibration(x: np.ndarray, events: int, start: tuple[float, float]) -> tuple[float, float]:
    """Maximum likelihood for logit P(y=1) = a + b x by Newton-Raphson with step halving.

    Two parameters, so the 2x2 Hessian is formed directly; from the binormal starting values it
    converges in two or three steps.
    """
    y = np.zeros(x.size)
    y[:events] = 1.0
    beta = np.array(start, dtype=float)
    current = _loglik(beta[0] + beta[1] * x, events)
    for _ in range(50):
        p = special.expit(beta[0] + beta[1] * x)
        w = p * (1.0 - p)
        r = y - p
        wx = w * x
        grad = np.array([r.sum(), (r * x).sum()])
        hess = np.array([[w.sum(), wx.sum()], [wx.sum(), (wx * x).sum()]])
        step = np.linalg.solve(hess, grad)
        for _ in range(30):
            candidate = beta + step
            value = _loglik(candidate[0] + candidate[1] * x, events)
            if value >= current - 1e-9 * abs(current):
                break
            step = step / 2.0
        beta, current = candidate, value
        if np.max(np.abs(step)) < 1e-10:
            break
    return float(beta[0]), float(beta[1])


@lru_cache(maxsize=1)
def _hermite_nodes() -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Hermite rule for E[f(Z)], Z ~ N(0, 1): nodes sqrt(2) t, weights w / sqrt(pi)."""
    t, w = np.polynomial.hermite.hermgauss(160)
    return math.sqrt(2.0) * t, w / math.sqrt(math.pi)


@lru_cache(maxsize=256)
def _r2cs_exact(c: float, phi: float) -> float:
    """Population R2cs under the binormal model; the log-likelihood terms are smooth, so Gauss-Hermite
    quadrature with 160 nodes matches adaptive quadrature to about 1e-9."""
    mu = math.sqrt(2.0) * float(stats.norm.ppf(c))
    a = math.log(phi / (1.0 - phi)) - mu * mu / 2.0
    z, weight = _hermite_nodes()
    ll_events = -float(weight @ np.logaddexp(0.0, -(a + mu * (mu + z))))
    ll_non_events = -float(weight @ np.logaddexp(0.0, a + mu * z))
    per_patient = phi * ll_events + (1.0 - phi) * ll_non_events
    null = phi * math.log(phi) + (1.0 - phi) * math.log1p(-phi)
    return float(-math.expm1(-2.0 * (per_patient - null)))


# --------------------------------------------------------------------- criterion (i) and its inverses


def _per_patient(shrinkage: float, r2cs: float) -> float:
    """(S-1) ln(1 - R2cs/S): parameters supported per patient at shrinkage S."""
    return (shrinkage - 1.0) * math.log1p(-r2cs / shrinkage)


def n_for_shrinkage(parameters: float, r2cs: float, *, shrinkage: float = 0.9) -> float:
    """Riley criterion (i), unrounded: n = P / ((S-1) ln(1 - R2cs/S)) gives expected shrinkage S."""
    parameters = _check_parameters(parameters)
    shrinkage = _check_fraction("shrinkage", shrinkage)
    r2cs = _check_r2cs(r2cs, 1.0, shrinkage)
    return parameters / _per_patient(shrinkage, r2cs)


def parameters_supported(n: float, r2cs: float, *, shrinkage: float = 0.9) -> float:
    """Candidate parameters ``n`` patients support at expected shrinkage S: P = n (S-1) ln(1 - R2cs/S).

    Why: with a fixed cohort the useful question is how big a model it can carry, not how many more
    patients to recruit.
    """
    n = _check_n(n)
    shrinkage = _check_fraction("shrinkage", shrinkage)
    r2cs = _check_r2cs(r2cs, 1.0, shrinkage)
    return n * _per_patient(shrinkage, r2cs)


def expected_shrinkage(n: float, parameters: float, r2cs: float) -> float:
    """Expected uniform shrinkage S of a model with ``parameters`` fitted to ``n`` patients.

    Solves n = P / ((S-1) ln(1 - R2cs/S)) for S in (R2cs, 1). Why: S is the calibration slope to expect
    on new patients; S = 0.55 means predicted log-odds are about twice too spread out.
    """
    n = _check_n(n)
    parameters = _check_parameters(parameters)
    r2cs = _check_r2cs(r2cs, 1.0, 1.0)
    target = parameters / n
    low = r2cs * (1.0 + 1e-12)
    if _per_patient(low, r2cs) <= target:
        return low
    return float(optimize.brentq(lambda s: _per_patient(s, r2cs) - target, low, 1.0, xtol=1e-14, rtol=1e-12))


# ------------------------------------------------------------------------------------- binary (Riley)


@dataclass(frozen=True)
class BinarySampleSize:
    """Riley et al.'s three criteria for a binary outcome; ``n_required`` is the largest."""

    parameters: float
    r2cs: float
    prevalence: float
    max_r2cs: float
    shrinkage: float
    """Target expected shrinkage of criterion (i)."""
    optimism_shrinkage: float
    """The shrinkage that criterion (ii) implies, R2cs / (R2cs + 0.05 maxR2cs)."""
    margin: float
    """Tolerated absolute error in the overall risk (criterion (iii))."""
    n_shrinkage: int
    n_optimism: int
    n_risk: int
    n_required: int
    binding: Criterion

    @property
    def nagelkerke(self) -> float:
        return self.r2cs / self.max_r2cs

    def risk_margin(self, n: float) -> float:
        """95% margin of error of the overall risk with ``n`` patients, 1.96 sqrt(phi (1-phi) / n)."""
        return _Z95 * math.sqrt(self.prevalence * (1.0 - self.prevalence) / _check_n(n))

    @property
    def final_shrinkage(self) -> float:
        """Shrinkage targeted by the binding of (i) and (ii), as pmsampsize reports it."""
        return max(self.shrinkage, self.optimism_shrinkage)

    @property
    def events(self) -> float:
        return self.n_required * self.prevalence

    @property
    def events_per_parameter(self) -> float:
        return self.events / self.parameters

    def parameters_supported(self, n: float) -> float:
        """Parameters ``n`` patients support under criteria (i) and (ii) together."""
        return parameters_supported(n, self.r2cs, shrinkage=self.final_shrinkage)

    def expected_shrinkage(self, n: float, parameters: float | None = None) -> float:
        """Expected shrinkage at ``n`` patients, for this model's parameters unless others are given."""
        return expected_shrinkage(n, self.parameters if parameters is None else parameters, self.r2cs)


def riley_binary(
    parameters: float,
    r2cs: float,
    prevalence: float,
    *,
    shrinkage: float = 0.9,
    optimism: float = 0.05,
    margin: float = 0.05,
) -> BinarySampleSize:
    """Minimum n to develop a binary logistic model with ``parameters`` candidate parameters (Riley et al.).

    ``r2cs`` is the anticipated (optimism-adjusted) Cox-Snell R2; use :func:`c_to_r2cs` when only a C
    statistic is known. ``optimism`` is the tolerated gap between apparent and adjusted Nagelkerke R2 and
    ``margin`` the tolerated absolute error in the overall risk.
    """
    parameters = _check_parameters(parameters)
    phi = _check_fraction("prevalence", prevalence)
    shrinkage = _check_fraction("shrinkage", shrinkage)
    optimism = _check_fraction("optimism", optimism)
    margin = _check_fraction("margin", margin)
    ceiling = max_r2cs(phi)
    r2cs = _check_r2cs(r2cs, ceiling, shrinkage)
    s_optimism = r2cs / (r2cs + optimism * ceiling)
    sizes: dict[Criterion, int] = {
        "i": _ceil(parameters / _per_patient(shrinkage, r2cs)),
        "ii": _ceil(parameters / _per_patient(s_optimism, r2cs)),
        "iii": _ceil((_Z95 / margin) ** 2 * phi * (1.0 - phi)),
    }
    binding = max(sizes, key=lambda k: sizes[k])
    return BinarySampleSize(
        parameters=parameters,
        r2cs=r2cs,
        prevalence=phi,
        max_r2cs=ceiling,
        shrinkage=shrinkage,
        optimism_shrinkage=s_optimism,
        margin=margin,
        n_shrinkage=sizes["i"],
        n_optimism=sizes["ii"],
        n_risk=sizes["iii"],
        n_required=sizes[binding],
        binding=binding,
    )


# --------------------------------------------------------------------------------- multinomial (Pate)


def _shares(proportions: Mapping[str, float] | list[float] | tuple[float, ...]) -> tuple[float, ...]:
    values = list(proportions.values()) if isinstance(proportions, Mapping) else list(proportions)
    if len(values) < 2:
        raise ValueError(f"need at least 2 classes, got {len(values)}")
    arr = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0.0):
        raise ValueError(f"class counts or proportions must all be positive, got {values!r}")
    return tuple(float(v) for v in arr / arr.sum())


def _pair_lookup(values: Mapping[Pair, float], classes: tuple[str, ...], what: str) -> dict[Pair, float]:
    """One value per unordered pair of classes, keyed in class order; either orientation is accepted."""
    known = set(classes)
    out: dict[Pair, float] = {}
    for key, value in values.items():
        if len(key) != 2 or key[0] == key[1] or not set(key) <= known:
            raise ValueError(f"{what}: {key!r} is not a pair of two different classes from {classes!r}")
        pair = key if classes.index(key[0]) < classes.index(key[1]) else (key[1], key[0])
        if pair in out:
            raise ValueError(f"{what}: pair {pair!r} given twice")
        out[pair] = float(value)
    missing = [pair for pair in combinations(classes, 2) if pair not in out]
    if missing:
        raise ValueError(f"{what}: missing class pairs {missing!r}")
    return out


@dataclass(frozen=True)
class PairwiseSubmodel:
    """One pairwise logistic submodel of Pate criterion (i): class ``pair[1]`` against ``pair[0]``."""

    pair: Pair
    share: float
    """p_k + p_r: the fraction of all patients this submodel is fitted on."""
    phi: float
    """p_r / (p_k + p_r)."""
    r2cs: float
    max_r2cs: float
    m: int
    """Patients in the two classes needed for shrinkage S (criterion (i), rounded up)."""
    n: float
    """Total patients needed, m / share (unrounded)."""

    @property
    def nagelkerke(self) -> float:
        return self.r2cs / self.max_r2cs


@dataclass(frozen=True)
class MultinomialSampleSize:
    """Pate et al.'s three criteria for a multinomial outcome; ``n_required`` is the largest."""

    parameters: float
    """Candidate parameters per class contrast (the model has (K-1) times as many)."""
    classes: tuple[str, ...]
    proportions: tuple[float, ...]
    pairs: tuple[PairwiseSubmodel, ...]
    shrinkage: float
    r2cs_overall: float
    max_r2cs_overall: float
    optimism_shrinkage: float
    """Shrinkage implied by criterion (ii) for the overall model."""
    margin: float
    """Tolerated absolute error in each class share (criterion (iii))."""
    bonferroni: int
    n_shrinkage: int
    n_optimism: int
    n_risk: int
    n_required: int
    binding: Criterion
    binding_pair: Pair
    """The pairwise submodel that sets criterion (i)."""

    @property
    def nagelkerke_overall(self) -> float:
        return self.r2cs_overall / self.max_r2cs_overall

    def __iter__(self) -> Iterator[PairwiseSubmodel]:
        return iter(self.pairs)

    def risk_margin(self, n: float) -> float:
        """Bonferroni-adjusted 95% margin of error of the least precise class share with ``n`` patients."""
        chi2 = float(stats.chi2.ppf(1.0 - _ALPHA / self.bonferroni, 1))
        return max(math.sqrt(chi2 * p * (1.0 - p) / _check_n(n)) for p in self.proportions)

    def pairwise_parameters_supported(self, n: float) -> dict[Pair, float]:
        """Parameters per contrast each pairwise submodel supports at shrinkage S with ``n`` patients in all."""
        _check_n(n)
        return {sub.pair: parameters_supported(n * sub.share, sub.r2cs, shrinkage=self.shrinkage) for sub in self}

    def parameters_supported(self, n: float) -> float:
        """Parameters per contrast that meet criterion (i) for every pair and criterion (ii) at ``n``."""
        overall = n * _per_patient(self.optimism_shrinkage, self.r2cs_overall) / (len(self.classes) - 1)
        return min(min(self.pairwise_parameters_supported(n).values()), overall)

    def pairwise_expected_shrinkage(self, n: float, parameters: float | None = None) -> dict[Pair, float]:
        """Expected shrinkage of each pairwise submodel at ``n`` patients (solved, not Pate's approximation)."""
        _check_n(n)
        p = self.parameters if parameters is None else parameters
        return {sub.pair: expected_shrinkage(n * sub.share, p, sub.r2cs) for sub in self}


def pate_multinomial(
    parameters: float,
    proportions: Mapping[str, float],
    pairwise_r2cs: Mapping[Pair, float],
    *,
    nagelkerke: float | None = None,
    r2cs_overall: float | None = None,
    shrinkage: float = 0.9,
    optimism: float = 0.05,
    margin: float = 0.05,
    bonferroni: int | None = None,
) -> MultinomialSampleSize:
    """Minimum n to develop a multinomial logistic model (Pate et al. 2023).

    ``proportions`` maps class -> share or count (only ratios matter). ``pairwise_r2cs`` maps each
    unordered class pair -> anticipated Cox-Snell R2 of the logistic model for that pair alone (from a
    pairwise C via :func:`c_to_r2cs` with prevalence p_r / (p_k + p_r)). Criterion (ii) needs the
    overall model's R2: give ``nagelkerke`` (scaled by maxR2 = 1 - (prod p_k^p_k)^2) or ``r2cs_overall``;
    with neither, :data:`DEFAULT_NAGELKERKE` is assumed. ``bonferroni`` is the number of proportions
    criterion (iii) splits alpha = 0.05 over: K by default (``multsampsize`` hard-codes 5).

    As in Pate's code, each pair's m is rounded up before dividing by p_k + p_r.
    """
    parameters = _check_parameters(parameters)
    shrinkage = _check_fraction("shrinkage", shrinkage)
    optimism = _check_fraction("optimism", optimism)
    margin = _check_fraction("margin", margin)
    classes = tuple(str(k) for k in proportions)
    if len(set(classes)) != len(classes):
        raise ValueError(f"class names must be distinct, got {classes!r}")
    shares = _shares(proportions)
    k_classes = len(classes)
    r2_by_pair = _pair_lookup(pairwise_r2cs, classes, "pairwise_r2cs")

    pairs = []
    for (i, first), (j, second) in combinations(enumerate(classes), 2):
        share = shares[i] + shares[j]
        phi = shares[j] / share
        ceiling = max_r2cs(phi)
        r2 = _check_r2cs(r2_by_pair[(first, second)], ceiling, shrinkage, what=f"R2cs of pair {(first, second)!r}")
        m = _ceil(parameters / _per_patient(shrinkage, r2))
        pairs.append(PairwiseSubmodel((first, second), share, phi, r2, ceiling, m, m / share))
    worst = max(pairs, key=lambda sub: sub.n)

    ceiling_overall = max_r2cs_multinomial(shares)
    if nagelkerke is not None and r2cs_overall is not None:
        raise ValueError("give nagelkerke or r2cs_overall, not both")
    if r2cs_overall is None:
        r2cs_overall = _check_fraction("nagelkerke", DEFAULT_NAGELKERKE if nagelkerke is None else nagelkerke)
        r2cs_overall *= ceiling_overall
    r2_overall = _check_r2cs(r2cs_overall, ceiling_overall, 1.0, what="overall R2cs")
    if r2_overall + optimism * ceiling_overall >= 1.0:
        raise ValueError("overall R2cs plus the tolerated optimism must stay below 1")
    s_optimism = r2_overall / (r2_overall + optimism * ceiling_overall)

    tests = k_classes if bonferroni is None else int(bonferroni)
    if tests < 1:
        raise ValueError(f"bonferroni must be a positive number of tests, got {bonferroni!r}")
    chi2 = float(stats.chi2.ppf(1.0 - _ALPHA / tests, 1))
    sizes: dict[Criterion, int] = {
        "i": _ceil(worst.n),
        "ii": _ceil((k_classes - 1) * parameters / _per_patient(s_optimism, r2_overall)),
        "iii": _ceil(max(chi2 * p * (1.0 - p) for p in shares) / margin**2),
    }
    binding = max(sizes, key=lambda k: sizes[k])
    return MultinomialSampleSize(
        parameters=parameters,
        classes=classes,
        proportions=shares,
        pairs=tuple(pairs),
        shrinkage=shrinkage,
        r2cs_overall=r2_overall,
        max_r2cs_overall=ceiling_overall,
        optimism_shrinkage=s_optimism,
        margin=margin,
        bonferroni=tests,
        n_shrinkage=sizes["i"],
        n_optimism=sizes["ii"],
        n_risk=sizes["iii"],
        n_required=sizes[binding],
        binding=binding,
        binding_pair=worst.pair,
    )


# ----------------------------------------------------------------------------------------- assessment


@dataclass(frozen=True)
class SampleSizeAssessment:
    """Whether ``n`` patients can support the planned model, with the numbers a report needs."""

    n: int
    parameters: float
    """Candidate parameters per class contrast."""
    classes: tuple[str, ...]
    model: Literal["binary", "multinomial"]
    n_required: int
    binding: Criterion
    binding_pair: Pair
    adequate: bool
    parameters_supported: float
    """Parameters per contrast that meet criteria (i) and (ii) at n (unrounded)."""
    expected_shrinkage: float
    """Worst expected shrinkage over the pairwise submodels at n."""
    worst_pair: Pair
    """The pair with the worst expected shrinkage at n."""
    risk_margin: float
    """95% margin of error at n of the overall risk (binary) or of the least precise class share (Bonferroni)."""
    r2cs_by_pair: Mapping[Pair, float] = field(repr=False)
    """Cox-Snell R2 converted from each pair's C statistic."""
    parameters_supported_by_pair: Mapping[Pair, float] = field(repr=False)
    """Parameters per contrast each pairwise submodel supports under criterion (i) alone."""
    expected_shrinkage_by_pair: Mapping[Pair, float] = field(repr=False)
    verdict: str
    """One line for a report: "adequate: ..." or "needs about N patients; ...: consequences"."""
    detail: BinarySampleSize | MultinomialSampleSize = field(repr=False)


def assess(
    n: int,
    class_counts: Mapping[str, int],
    parameters: float,
    pairwise_c: Mapping[Pair, float] | float,
    *,
    nagelkerke: float | None = None,
    shrinkage: float = 0.9,
    c_method: ConversionMethod = "simulate",
) -> SampleSizeAssessment:
    """Say before fitting whether ``n`` patients support a model with ``parameters`` per class contrast.

    ``class_counts`` gives the class shares (counts from the cohort, or any positive weights);
    ``pairwise_c`` the anticipated C statistic of each class pair, or one C for all pairs. Two classes use
    Riley et al.; three or more use Pate et al., with ``nagelkerke`` (overall Nagelkerke R2) defaulting
    to :data:`DEFAULT_NAGELKERKE`. Take the C statistics from a comparable published model or, for the
    simulator, from its exact posterior, and be conservative: an optimistic C understates the n needed.
    """
    n_int = int(n)
    if n_int != n or n_int < 1:
        raise ValueError(f"n must be a positive whole number of patients, got {n!r}")
    parameters = _check_parameters(parameters)
    classes = tuple(str(k) for k in class_counts)
    counts = list(class_counts.values())
    if len(classes) < 2:
        raise ValueError(f"need at least 2 classes, got {classes!r}")
    for name, count in zip(classes, counts):
        if not count > 0:
            raise ValueError(f"class {name!r} has count {count!r}; every class needs at least one patient")
    shares = _shares(counts)
    pairs = list(combinations(classes, 2))
    if isinstance(pairwise_c, Mapping):
        c_by_pair = _pair_lookup(pairwise_c, classes, "pairwise_c")
    else:
        c_by_pair = {pair: float(pairwise_c) for pair in pairs}
    index = {name: i for i, name in enumerate(classes)}
    r2_by_pair = {
        (a, b): c_to_r2cs(c_by_pair[(a, b)], shares[index[b]] / (shares[index[a]] + shares[index[b]]), method=c_method)
        for a, b in pairs
    }

    if len(classes) == 2:
        (pair,) = pairs
        detail: BinarySampleSize | MultinomialSampleSize = riley_binary(
            parameters, r2_by_pair[pair], shares[1], shrinkage=shrinkage
        )
        supported_by_pair = {pair: parameters_supported(n_int, detail.r2cs, shrinkage=shrinkage)}
        supported = detail.parameters_supported(n_int)
        shrink_by_pair = {pair: detail.expected_shrinkage(n_int)}
        binding_pair = pair
        model: Literal["binary", "multinomial"] = "binary"
    else:
        detail = pate_multinomial(
            parameters, dict(zip(classes, shares)), r2_by_pair, nagelkerke=nagelkerke, shrinkage=shrinkage
        )
        supported_by_pair = detail.pairwise_parameters_supported(n_int)
        supported = detail.parameters_supported(n_int)
        shrink_by_pair = detail.pairwise_expected_shrinkage(n_int)
        binding_pair = detail.binding_pair
        model = "multinomial"

    worst_pair = min(shrink_by_pair, key=lambda p: shrink_by_pair[p])
    adequate = n_int >= detail.n_required
    risk_margin = detail.risk_margin(n_int)
    verdict = _verdict(n_int, detail, supported, shrink_by_pair[worst_pair], worst_pair, risk_margin, adequate)
    return SampleSizeAssessment(
        n=n_int,
        parameters=parameters,
        classes=classes,
        model=model,
        n_required=detail.n_required,
        binding=detail.binding,
        binding_pair=binding_pair,
        adequate=adequate,
        parameters_supported=supported,
        expected_shrinkage=shrink_by_pair[worst_pair],
        worst_pair=worst_pair,
        risk_margin=risk_margin,
        r2cs_by_pair=r2_by_pair,
        parameters_supported_by_pair=supported_by_pair,
        expected_shrinkage_by_pair=shrink_by_pair,
        verdict=verdict,
        detail=detail,
    )


def _about(x: float) -> str:
    """Two significant figures with thousands separators: 2,661 -> '2,700'; 550 -> '550'."""
    if x < 100:
        return f"{math.ceil(x):,}"
    digits = len(str(int(x))) - 2
    return f"{round(x, -digits):,.0f}"


def _verdict(
    n: int,
    detail: BinarySampleSize | MultinomialSampleSize,
    supported: float,
    shrinkage_at_n: float,
    worst_pair: Pair,
    risk_margin: float,
    adequate: bool,
) -> str:
    multinomial = isinstance(detail, MultinomialSampleSize)
    where = f" ({worst_pair[0]} vs {worst_pair[1]})" if multinomial else ""
    if adequate:
        return (
            f"adequate: {n:,} patients meet the {detail.n_required:,} required; "
            f"expected shrinkage {shrinkage_at_n:.2f}{where}"
        )
    if supported < 1:
        count = "fewer than 1 parameter"
    else:
        whole = math.floor(supported)
        count = f"about {whole:,} parameter{'s' if whole != 1 else ''}"
    per = " per class contrast" if multinomial else ""
    text = (
        f"needs about {_about(detail.n_required)} patients (criterion {detail.binding}: {CRITERIA[detail.binding]}); "
        f"{n:,} support {count}{per}, expected shrinkage {shrinkage_at_n:.2f}{where}"
    )
    problems = []
    if shrinkage_at_n < detail.shrinkage:
        problems.append("predictions will be too extreme")
    if n < detail.n_risk:
        what = "class shares" if multinomial else "overall risk"
        problems.append(f"{what} known only to +-{risk_margin:.3f}, not +-{detail.margin:g}")
    if not problems:
        problems.append("apparent performance will be optimistic")
    return f"{text}: {'; '.join(problems)}"


def simulated_pairwise_c(
    preset: str,
    classes: Sequence[str],
    mapping: Mapping[str, str] | None = None,
    drop: Sequence[str] = (),
    *,
    n: int = 20_000,
    seed: int = 0,
) -> dict[Pair, float]:
    """Each class pair's C statistic under the simulator's exact posterior for ``preset``, after the label map.

    The exact posterior is the best any model can do on simulated patients of that clinic, so a sample size
    computed from it is a lower bound. A recorded label is mapped as training maps it; a pair's C is the
    AUROC of p_a / (p_a + p_b) among the patients labelled a or b.
    """
    cohort = simulate(preset, n, seed)
    mapping = {k.lower(): v for k, v in (mapping or {}).items()}
    dropped = {d.lower() for d in drop}
    originals = [c[len(TRUE_P_PREFIX) :] for c in cohort.columns if c.startswith(TRUE_P_PREFIX)]
    target = {v: resolve(v, mapping) for v in originals}
    posterior = {c: sum(cohort[f"{TRUE_P_PREFIX}{v}"].to_numpy() for v in originals if target[v] == c) for c in classes}
    labels = np.array([resolve(str(v).lower(), mapping) for v in cohort["pain_type"]], dtype=object)
    out: dict[Pair, float] = {}
    for a, b in combinations(classes, 2):
        rows = np.isin(labels, [a, b]) & ~np.isin(labels, list(dropped))
        pa, pb = np.asarray(posterior[a])[rows], np.asarray(posterior[b])[rows]
        out[(a, b)] = auroc(labels[rows] == a, pa / np.maximum(pa + pb, 1e-300))
    return out
