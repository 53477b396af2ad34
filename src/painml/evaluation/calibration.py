"""Small-data calibration and polytomous discrimination (Van Calster 2016/2019 hierarchy).

A 15-bin ECE on 60 rows is noise. These numbers hold up at a few hundred
rows (reference notes, section 3):

- weak calibration: calibration-in-the-large intercept and calibration slope
  of each one-vs-rest question, with Wald CIs (:func:`calibration_intercept_slope`,
  :func:`per_class_calibration`); at internal validation the slope matters most;
- moderate calibration: a loess curve of observed against predicted with a
  bootstrap band, summarised by ICI/E50/E90/Emax (Austin & Steyerberg 2019;
  :func:`flexible_calibration_curve`);
- discrimination over all classes at once: the Polytomous Discrimination
  Index (Van Calster et al. 2012; :func:`polytomous_discrimination_index`).

Degenerate inputs (one outcome only, perfect separation, no spread in the
predictions) give NaN with a reason, never an exception or an endless loop:
a small subgroup or a rare class hits them routinely. Numpy and scipy only.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from scipy.stats import norm

from painml.evaluation.metrics import _check_classes, _labels, _proba

__all__ = [
    "CalibrationCurve",
    "CalibrationFit",
    "calibration_intercept_slope",
    "flexible_calibration_curve",
    "pdi_by_class",
    "per_class_calibration",
    "polytomous_discrimination_index",
]

P_CLIP = 1e-12
"""Predictions are clipped to [P_CLIP, 1 - P_CLIP] before the logit (0 and 1 have no logit)."""
MAX_NEWTON_STEPS = 100
LOESS_FRAC = 0.75
"""R ``loess`` default span, used by CalibrationCurves and by Austin & Steyerberg (2019) for the ICI."""
LOESS_DEGREE = 2
"""CalibrationCurves ``val.prob.ci.2`` fits ``loess(y ~ p, degree = 2)``."""
GRID_POINTS = 100
LOESS_CHUNK = 2_000_000
"""Evaluation points x patients handled at once by the loess (bounds memory at large n)."""


@dataclass(frozen=True)
class CalibrationFit:
    """Weak calibration of one binary question (Van Calster 2016).

    ``intercept`` is calibration-in-the-large: a in logit(P(y)) = a + logit(p)
    (slope fixed at 1; 0 is ideal, > 0 means predictions too low on average).
    ``slope`` is b in logit(P(y)) = a' + b logit(p) (1 is ideal, < 1 means
    predictions too extreme, the signature of overfitting); ``slope_model_intercept``
    is that a'. ``*_low``/``*_high`` are Wald limits at ``level`` from the observed
    information. NaN where the quantity does not exist; ``reason`` then says why
    ("" when everything was estimated).
    """

    n: int
    events: int
    intercept: float
    intercept_se: float
    intercept_low: float
    intercept_high: float
    slope: float
    slope_se: float
    slope_low: float
    slope_high: float
    slope_model_intercept: float
    level: float
    reason: str = ""


@dataclass(frozen=True, eq=False)
class CalibrationCurve:
    """A flexible (loess) calibration curve of one binary question with a bootstrap band.

    ``observed`` is the smoothed observed proportion at ``grid`` (predicted
    probabilities spanning the observed range); ``lower``/``upper`` the
    bootstrap percentile band at ``level`` (NaN where no bootstrap sample
    covered that grid point, or when ``boot == 0``). ``p`` are the patients'
    predictions and ``observed_at_p`` the curve at each of them, from which
    ``ici`` (mean |observed - p|), ``e50`` (median), ``e90`` (90th percentile)
    and ``emax`` (maximum) are taken (Austin & Steyerberg 2019). The curve is
    not clipped to [0, 1] (the published definitions use the raw loess fit);
    plots clip it.
    """

    grid: np.ndarray
    observed: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    p: np.ndarray
    observed_at_p: np.ndarray
    ici: float
    e50: float
    e90: float
    emax: float
    n: int
    events: int
    frac: float
    degree: int
    boot: int
    level: float


def _binary(y: object, p: object) -> tuple[np.ndarray, np.ndarray]:
    """Outcome as bool and prediction as float, same length, p finite in [0, 1]."""
    yy = np.asarray(y).ravel()
    if yy.dtype != bool:
        if not np.isin(yy, (0, 1)).all():
            raise ValueError("y must be boolean or 0/1")
        yy = yy.astype(bool)
    pp = np.asarray(p, dtype=np.float64).ravel()
    if len(yy) != len(pp):
        raise ValueError(f"y has {len(yy)} rows but p has {len(pp)}")
    if not np.isfinite(pp).all() or (pp < 0).any() or (pp > 1).any():
        raise ValueError("p must be finite probabilities in [0, 1]")
    return yy, pp


def _z(level: float) -> float:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    return float(norm.ppf(0.5 + level / 2))


def _loglik(x: np.ndarray, y: np.ndarray, offset: np.ndarray, beta: np.ndarray) -> float:
    eta = x @ beta + offset
    return float(np.sum(y * eta - np.logaddexp(0.0, eta)))


def _logistic_fit(
    x: np.ndarray, y: np.ndarray, offset: np.ndarray, start: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """Newton-Raphson with step halving; (coefficients, covariance = inverse observed information) or None.

    Callers rule out non-existence of the MLE (one outcome, separation)
    beforehand, so on valid input this converges in a handful of steps; the
    step cap and the None return guard against anything else.
    """
    yf = y.astype(np.float64)
    beta = start.astype(np.float64).copy()
    ll = _loglik(x, yf, offset, beta)
    for _ in range(MAX_NEWTON_STEPS):
        mu = expit(x @ beta + offset)
        info = x.T @ (x * (mu * (1 - mu))[:, None])
        try:
            step = np.linalg.solve(info, x.T @ (yf - mu))
        except np.linalg.LinAlgError:
            return None
        t = 1.0
        while True:
            candidate = beta + t * step
            ll_new = _loglik(x, yf, offset, candidate)
            if ll_new >= ll - 1e-12 or t < 1e-10:
                break
            t /= 2
        beta, ll = candidate, ll_new
        if np.max(np.abs(t * step)) < 1e-10:
            mu = expit(x @ beta + offset)
            info = x.T @ (x * (mu * (1 - mu))[:, None])
            try:
                cov = np.linalg.inv(info)
            except np.linalg.LinAlgError:
                return None
            if not (np.isfinite(beta).all() and np.isfinite(cov).all()):
                return None
            return beta, cov
    return None


def calibration_intercept_slope(y: object, p: object, *, level: float = 0.95) -> CalibrationFit:
    """Calibration-in-the-large intercept and calibration slope with Wald CIs, for one binary question.

    Two logistic regressions on lp = logit(p) (p clipped to [1e-12, 1 - 1e-12]),
    fitted by Newton-Raphson: logit P(y) = a + offset(lp) for the intercept,
    logit P(y) = a' + b lp for the slope (as ``lrm.fit(offset=)`` and
    ``lrm.fit(lp)`` in CalibrationCurves ``val.prob.ci.2``). The intercept
    exists whenever both outcomes occur; the slope in addition needs spread in
    p and no separation (all events on one side of all non-events in lp), in
    which case the MLE is infinite and NaN is returned with a reason.
    """
    z = _z(level)
    yy, pp = _binary(y, p)
    n, events = len(yy), int(yy.sum())
    nan = math.nan
    out = dict.fromkeys(("intercept", "intercept_se", "slope", "slope_se", "slope_model_intercept"), nan)
    reasons: list[str] = []
    lp = logit(np.clip(pp, P_CLIP, 1 - P_CLIP))
    if n == 0:
        reasons.append("no rows")
    elif events in (0, n):
        reasons.append("only one outcome: intercept and slope undefined")
    else:
        fit = _logistic_fit(np.ones((n, 1)), yy, lp, np.zeros(1))
        if fit is None:
            reasons.append("intercept: fit did not converge")
        else:
            out["intercept"], out["intercept_se"] = float(fit[0][0]), float(math.sqrt(fit[1][0, 0]))
        pos, neg = lp[yy], lp[~yy]
        if np.ptp(lp) == 0:
            reasons.append("slope: predictions have no spread")
        elif pos.min() >= neg.max() or pos.max() <= neg.min():
            reasons.append("slope: perfect separation of outcomes by the prediction (slope infinite)")
        else:
            fit = _logistic_fit(np.column_stack([np.ones(n), lp]), yy, np.zeros(n), np.array([0.0, 1.0]))
            if fit is None:
                reasons.append("slope: fit did not converge")
            else:
                out["slope_model_intercept"], out["slope"] = float(fit[0][0]), float(fit[0][1])
                out["slope_se"] = float(math.sqrt(fit[1][1, 1]))
    return CalibrationFit(
        n=n,
        events=events,
        intercept=out["intercept"],
        intercept_se=out["intercept_se"],
        intercept_low=out["intercept"] - z * out["intercept_se"],
        intercept_high=out["intercept"] + z * out["intercept_se"],
        slope=out["slope"],
        slope_se=out["slope_se"],
        slope_low=out["slope"] - z * out["slope_se"],
        slope_high=out["slope"] + z * out["slope_se"],
        slope_model_intercept=out["slope_model_intercept"],
        level=level,
        reason="; ".join(reasons),
    )


def per_class_calibration(
    y_true: Sequence[str] | np.ndarray | pd.Series,
    proba: np.ndarray | pd.DataFrame,
    classes: Sequence[str],
    *,
    level: float = 0.95,
) -> pd.DataFrame:
    """One-vs-rest intercept and slope per class, one row per class in ``classes`` order.

    Columns: class, n, events, intercept, intercept_low, intercept_high,
    slope, slope_low, slope_high, reason (see :func:`calibration_intercept_slope`).
    """
    classes = _check_classes(classes)
    y = _labels(y_true, classes)
    p = _proba(proba, classes, len(y))
    rows = []
    for k, c in enumerate(classes):
        fit = calibration_intercept_slope(y == c, p[:, k], level=level)
        rows.append({
            "class": c,
            "n": fit.n,
            "events": fit.events,
            "intercept": fit.intercept,
            "intercept_low": fit.intercept_low,
            "intercept_high": fit.intercept_high,
            "slope": fit.slope,
            "slope_low": fit.slope_low,
            "slope_high": fit.slope_high,
            "reason": fit.reason,
        })  # fmt: skip
    return pd.DataFrame(rows)


def _loess(x: np.ndarray, y: np.ndarray, at: np.ndarray, frac: float, degree: int) -> np.ndarray:
    """Local polynomial regression of y on x evaluated at ``at`` (Cleveland 1979; R ``loess`` family gaussian).

    Each point uses its q = max(floor(frac * n), degree + 1) nearest x, with
    tricube weights (1 - (d/h)^3)^3, h the distance to the q-th nearest, and a
    weighted least-squares polynomial of ``degree`` in (x - x0)/h; the fit at
    x0 is its constant term. Direct evaluation at every point (R's default
    interpolates on a kd-tree, so values differ in the last digits). Where the
    neighbourhood holds too few distinct x for ``degree`` (ties in p), the
    degree drops locally, down to a weighted mean; where every tricube weight
    is 0 (the q nearest all at distance h) the q nearest get weight 1.
    """
    n = len(x)
    q = min(n, max(int(math.floor(frac * n)), degree + 1))
    chunk = max(1, LOESS_CHUNK // max(n, 1))
    fitted = np.full(len(at), np.nan)
    for first in range(0, len(at), chunk):
        x0 = at[first : first + chunk]
        u = x[None, :] - x0[:, None]
        d = np.abs(u)
        h = np.partition(d, q - 1, axis=1)[:, q - 1]
        h_safe = np.where(h > 0, h, 1.0)[:, None]
        u /= h_safe
        w = np.divide(d, h_safe, out=d)  # in place: the distances are not needed any more
        np.power(w, 3, out=w)
        np.subtract(1, w, out=w)
        np.clip(w, 0, None, out=w)
        np.power(w, 3, out=w)
        exact = h <= 0  # q or more patients share x0's value: average them
        w[exact] = x[None, :] == x0[exact, None]
        empty = w.sum(axis=1) <= 0
        w[empty] = np.abs(x[None, :] - x0[empty, None]) <= h[empty, None]
        s = np.empty((len(x0), 2 * degree + 1))  # sum w u^m
        t = np.empty((len(x0), degree + 1))  # sum w y u^m
        wu = w.copy()
        for m in range(2 * degree + 1):
            if m:
                wu *= u
            s[:, m] = wu.sum(axis=1)
            if m <= degree:
                t[:, m] = wu @ y
        todo = np.ones(len(x0), dtype=bool)
        for deg in range(degree, -1, -1):
            idx = np.flatnonzero(todo)
            if idx.size == 0:
                break
            m = np.stack([s[idx, a : a + deg + 1] for a in range(deg + 1)], axis=1)  # (g, deg+1, deg+1)
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                ok = np.linalg.cond(m) < 1e10
            if ok.any():
                sol = np.linalg.solve(m[ok], t[idx[ok], : deg + 1][..., None])[..., 0]
                fitted[first + idx[ok]] = sol[:, 0]
                todo[idx[ok]] = False
    return fitted


def flexible_calibration_curve(
    y: object,
    p: object,
    *,
    grid: np.ndarray | None = None,
    frac: float = LOESS_FRAC,
    degree: int = LOESS_DEGREE,
    boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> CalibrationCurve:
    """Loess calibration curve (observed proportion vs predicted) with a bootstrap band and ICI/E50/E90/Emax.

    Smoothing follows CalibrationCurves ``val.prob.ci.2`` and Austin &
    Steyerberg (2019): loess of the 0/1 outcome on p itself (not on logit p),
    span ``frac`` = 0.75, local quadratic (``degree`` 2), tricube weights, no
    robustness iterations (see :func:`_loess`). ``grid`` defaults to 100 points
    from min(p) to max(p): outside the observed range a loess is extrapolation.
    The band re-draws the patients ``boot`` times (seeded) and takes
    percentiles of the refitted curves at each grid point, using only
    resamples whose range of p covers that point. Meant for OOF predictions;
    below roughly 100 events the curve is itself unreliable (Van Calster 2016).
    """
    if not 0 < frac <= 1:
        raise ValueError(f"frac must be in (0, 1], got {frac}")
    if degree not in (0, 1, 2):
        raise ValueError(f"degree must be 0, 1 or 2, got {degree}")
    if boot < 0:
        raise ValueError(f"boot must be >= 0, got {boot}")
    _z(level)
    alpha = 1 - level
    yy, pp = _binary(y, p)
    n = len(yy)
    if n == 0:
        raise ValueError("no rows to evaluate")
    yf = yy.astype(np.float64)
    grid_arr = (
        np.linspace(pp.min(), pp.max(), GRID_POINTS) if grid is None else np.asarray(grid, dtype=np.float64).ravel()
    )
    fitted = _loess(pp, yf, np.concatenate([grid_arr, pp]), frac, degree)
    observed, at_p = fitted[: len(grid_arr)], fitted[len(grid_arr) :]
    err = np.abs(at_p - pp)
    lower = np.full(len(grid_arr), np.nan)
    upper = np.full(len(grid_arr), np.nan)
    if boot > 0:
        rng = np.random.default_rng(seed)
        curves = np.full((boot, len(grid_arr)), np.nan)
        for b in range(boot):
            idx = rng.integers(0, n, n)
            xb = pp[idx]
            inside = (grid_arr >= xb.min()) & (grid_arr <= xb.max())
            if inside.any():
                curves[b, inside] = _loess(xb, yf[idx], grid_arr[inside], frac, degree)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns stay NaN
            lower, upper = np.nanpercentile(curves, [100 * alpha / 2, 100 * (1 - alpha / 2)], axis=0)
    return CalibrationCurve(
        grid=grid_arr,
        observed=observed,
        lower=lower,
        upper=upper,
        p=pp,
        observed_at_p=at_p,
        ici=float(err.mean()),
        e50=float(np.median(err)),
        e90=float(np.quantile(err, 0.9)),
        emax=float(err.max()),
        n=n,
        events=int(yy.sum()),
        frac=frac,
        degree=degree,
        boot=boot,
        level=level,
    )


def _pdi_inputs(y_index: object, proba: object) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"proba must be (n, K) with K >= 2, got shape {p.shape}")
    y = np.asarray(y_index).ravel()
    if len(y) != p.shape[0]:
        raise ValueError(f"y_index has {len(y)} rows but proba has {p.shape[0]}")
    if not np.issubdtype(y.dtype, np.integer) or ((y < 0) | (y >= p.shape[1])).any():
        raise ValueError(f"y_index must hold integer class indices in 0..{p.shape[1] - 1}")
    if not np.isfinite(p).all():
        raise ValueError("proba holds NaN or infinite values")
    return y.astype(np.int64), p


def pdi_by_class(y_index: object, proba: object) -> np.ndarray:
    """Class-specific PDI_k (Van Calster et al. 2012, Stat Med 31:2610), k in column order.

    PDI_k = P(in a set of one random patient per class, the class-k patient
    has the highest p_k). Ties at the top share the credit: a set where the
    class-k patient ties with m others for the highest p_k scores 1/(1 + m),
    the estimator of Dover, Savu & Engel (2021) used by ``mcca::pdi_var`` (1/2
    for a single tie, so K = 2 gives the AUROC with ties counted 1/2).
    ``mcca::pdi`` itself counts only strict wins for K >= 3; both agree without
    ties. For a class-k patient with value v, let l_j and e_j be the numbers of
    class-j patients with p_k below and equal to v; the patient's credit is
    sum over tie subsets T of prod_{j in T} e_j prod_{j not in T} l_j / (1 + |T|)
    = integral_0^1 prod_j (l_j + e_j t) dt, computed from the polynomial's
    coefficients after sorting: O(n log n) per class. NaN for every class when
    some class has no patient (no complete set exists).
    """
    y, p = _pdi_inputs(y_index, proba)
    k_classes = p.shape[1]
    counts = np.bincount(y, minlength=k_classes)
    if (counts == 0).any():
        return np.full(k_classes, np.nan)
    total_sets = float(np.prod(counts.astype(np.float64)))
    out = np.empty(k_classes)
    for k in range(k_classes):
        v = p[y == k, k]
        poly = np.ones((len(v), 1))
        for j in range(k_classes):
            if j == k:
                continue
            s = np.sort(p[y == j, k])
            below = np.searchsorted(s, v, side="left").astype(np.float64)
            equal = np.searchsorted(s, v, side="right") - below
            grown = np.zeros((len(v), poly.shape[1] + 1))
            grown[:, :-1] += poly * below[:, None]
            grown[:, 1:] += poly * equal[:, None]
            poly = grown
        credit = poly @ (1.0 / np.arange(1, poly.shape[1] + 1))
        out[k] = credit.sum() / total_sets
    return out


def polytomous_discrimination_index(y_index: object, proba: object) -> float:
    """PDI = mean of :func:`pdi_by_class`: chance of picking out a random class's patient from one-per-class sets.

    ``y_index`` holds class indices into the columns of ``proba``. 1/K for a
    useless model, 1 for perfect discrimination; for K = 2 it equals the
    AUROC. NaN when some class has no patient.
    """
    return float(np.mean(pdi_by_class(y_index, proba)))
