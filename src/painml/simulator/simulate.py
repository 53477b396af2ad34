"""Clinically grounded cohort simulator with an exact posterior.

The generative model (numbers in :mod:`painml.simulator.clinical_tables`): a latent
condition, mechanism and expression ("state", 16 x 3 x 3 = 144 of them) and a
shared symptom-amplification level (K of them) set every recorded item
independently; record keeping hides some items (whole
questionnaire blocks by site, exam items at random, diagnostic tests ordered
more often when a neuropathic cause is suspected); a clinician's label is
drawn from the true mechanism with realistic disagreement.

Because items are independent given the state and every missingness
mechanism is either ignorable (site, exam) or modelled (test ordering), the
posterior of the recorded label given everything recorded is an exact sum
over the 144 x K states. ``true_p_*`` holds it: the Bayes ceiling for any
classifier trained on this data. Amplification touches only the
self-reported symptoms, so it is summed out of their likelihood first
(a log-sum-exp over K on the few distinct symptom profiles), which keeps the
posterior one matrix product per chunk.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from scipy.special import expit, logit, ndtr

from painml.record.columns import (
    BLOCKS,
    BY_NAME,
    COMORBIDITIES,
    INPUT_COLUMNS,
    TEST_RESULTS,
)
from painml.record.files import PARQUET_ROW_GROUP_ROWS
from painml.simulator import clinical_tables as T

CONDITIONS = tuple(T.CONDITIONS)
N_STATES = len(CONDITIONS) * len(T.MECHANISMS) * len(T.EXPRESSIONS)
PRESETS = tuple(T.PRESETS)
TRUTH_COLUMNS = (
    "true_condition",
    "true_pain_type",
    "true_severity",
    "true_p_nociceptive",
    "true_p_neuropathic",
    "true_p_mixed",
)
_CHUNK = 100_000
_EPS = 1e-4

# State index s = (condition * 3 + mechanism) * 3 + expression.
_STATE_COND = np.repeat(np.arange(len(CONDITIONS)), len(T.MECHANISMS) * len(T.EXPRESSIONS))
_STATE_MECH = np.tile(np.repeat(np.arange(len(T.MECHANISMS)), len(T.EXPRESSIONS)), len(CONDITIONS))
_STATE_EXPR = np.tile(np.arange(len(T.EXPRESSIONS)), len(CONDITIONS) * len(T.MECHANISMS))
_SCALE = np.array([T.EXPRESSION_SCALE[e] for e in T.EXPRESSIONS])[_STATE_EXPR]
_NEURO_SHARE = np.array([0.0, 1.0, T.MIXED_NEURO_SHARE])[_STATE_MECH]
# Symptom index t = state * K + amplification level.
K = T.AMPLIFICATION_LEVELS
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(K)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()
_SYM_STATE = np.repeat(np.arange(N_STATES), K)
_SYM_AMP = np.tile(np.arange(K), N_STATES)


def _solve_offset(target: np.ndarray, mean_of: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """The per-state logit offset whose mean response over the amplification levels is ``target``.

    ``mean_of`` is increasing in the offset, so bisection converges for every state at once.
    """
    lo, hi = np.full(target.shape, -30.0), np.full(target.shape, 30.0)
    for _ in range(70):
        mid = (lo + hi) / 2
        low = mean_of(mid) < target
        lo, hi = np.where(low, mid, lo), np.where(low, hi, mid)
    return (lo + hi) / 2


def _amplified_binary(p: np.ndarray, loading: float, response_level: float = 0.0) -> np.ndarray:
    """P(symptom | state, level): shifted by the amplification, mean over levels kept at ``p``.

    ``response_level`` then shifts every logit (a population that reports more or less), on purpose moving
    the mean away from the table.
    """
    shift = loading * _NODES

    def mean_of(offset: np.ndarray) -> np.ndarray:
        return expit(offset[:, None] + shift[None, :]) @ _WEIGHTS

    offset = _solve_offset(np.clip(p, _EPS, 1 - _EPS), mean_of) + response_level
    return expit(offset[_SYM_STATE] + shift[_SYM_AMP])


def _graded_items(q: np.ndarray, loading: float, response_level: float = 0.0) -> np.ndarray:
    """P(score 0..5 | state, level) of a cumulative-logit item whose mean score over levels is 5 q."""
    tau = np.asarray(T.PAINDETECT_THRESHOLDS)
    shift = loading * _NODES

    def mean_of(eta: np.ndarray) -> np.ndarray:
        return expit(eta[:, None, None] + shift[None, :, None] - tau[None, None, :]).sum(axis=2) @ _WEIGHTS

    eta = _solve_offset(5 * np.clip(q, _EPS, 1 - _EPS), mean_of) + response_level
    at_least = expit((eta[_SYM_STATE] + shift[_SYM_AMP])[:, None] - tau[None, :])
    cum = np.c_[np.ones(len(at_least)), at_least, np.zeros(len(at_least))]
    return cum[:, :-1] - cum[:, 1:]


def _finding_rates(base: T.Finding, overrides: dict[str, tuple[float, float, float]]) -> np.ndarray:
    """P(finding | state): the mechanism's rate, moved by expression relative to the mixed rate."""
    rates = np.tile([base.noc, base.neu, base.mixed], (len(CONDITIONS), 1))
    for c, name in enumerate(CONDITIONS):
        if name in overrides:
            noc, mixed, neu = overrides[name]
            rates[c] = (noc, neu, mixed)
    lg = logit(np.clip(rates, _EPS, 1 - _EPS))[_STATE_COND]
    own = lg[np.arange(N_STATES), _STATE_MECH]
    mixed = lg[:, 2]
    return expit(np.where(_STATE_MECH == 2, mixed, mixed + _SCALE * (own - mixed)))


def _discretised_normal(mean: np.ndarray, sd: float | np.ndarray, values: np.ndarray) -> np.ndarray:
    """P(value) for integer-valued draws of a normal, truncated to ``values``."""
    z_hi = (values[None, :] + 0.5 - np.asarray(mean)[:, None]) / np.asarray(sd).reshape(-1, 1)
    z_lo = (values[None, :] - 0.5 - np.asarray(mean)[:, None]) / np.asarray(sd).reshape(-1, 1)
    p = ndtr(z_hi) - ndtr(z_lo)
    return p / p.sum(axis=1, keepdims=True)


def _normalised(weights: dict[str, float], levels: tuple[str, ...]) -> np.ndarray:
    p = np.array([weights.get(level, 0.0) for level in levels])
    return p / p.sum()


def _by_condition(fn: Callable[[T.Condition], np.ndarray]) -> np.ndarray:
    return np.stack([fn(T.CONDITIONS[c]) for c in CONDITIONS])


@dataclass(frozen=True)
class Variable:
    """One recorded column: its levels and P(level | latent) as a table.

    ``scope`` is "condition" when the table has one row per condition,
    "state" when it has one row per latent state and "symptom" when it has one
    row per (state, amplification level).
    """

    column: str
    levels: tuple
    scope: str
    table: np.ndarray


def _binary_table(p: np.ndarray) -> np.ndarray:
    return np.stack([1 - p, p], axis=1)


@functools.cache
def _build_variables(response_level: float = 0.0) -> dict[str, Variable]:
    out: dict[str, Variable] = {}

    def add(column: str, levels: tuple, scope: str, table: np.ndarray) -> None:
        assert np.allclose(table.sum(axis=1), 1.0), column
        out[column] = Variable(column, levels, scope, table)

    ages = np.arange(T.AGE_RANGE[0], T.AGE_RANGE[1] + 1)
    add(
        "age",
        tuple(ages.astype(float)),
        "condition",
        _discretised_normal(
            _by_condition(lambda c: np.array(c.age[0])), _by_condition(lambda c: np.array(c.age[1])), ages
        ),
    )
    add("sex", ("female", "male"), "condition", _by_condition(lambda c: np.array([c.female, 1 - c.female])))
    months = np.arange(T.DURATION_RANGE_MONTHS[0], T.DURATION_RANGE_MONTHS[1] + 1)
    dur = np.stack(
        [
            np.diff(
                ndtr(
                    (np.log(np.r_[months - 0.5, months[-1] + 0.5]) - np.log(T.CONDITIONS[c].duration_months))
                    / T.DURATION_SPREAD
                )
            )
            for c in CONDITIONS
        ]
    )
    add("pain_duration_months", tuple(months.astype(float)), "condition", dur / dur.sum(axis=1, keepdims=True))
    intensity_mean = np.array([T.INTENSITY_MEAN[T.EXPRESSIONS[e]] for e in _STATE_EXPR]) + (
        T.INTENSITY_NEUROPATHIC_SHIFT * _NEURO_SHARE
    )
    gamma = T.AMPLIFICATION_LOADING["intensity"]
    add(
        "pain_intensity",
        tuple(np.arange(11.0)),
        "symptom",
        _discretised_normal(
            intensity_mean[_SYM_STATE] + gamma * _NODES[_SYM_AMP], np.sqrt(T.INTENSITY_SD**2 - gamma**2), np.arange(11)
        ),
    )
    regions = BY_NAME["pain_region"].allowed
    add("pain_region", regions, "condition", _by_condition(lambda c: _normalised(c.region, regions)))
    dists = BY_NAME["pain_distribution"].allowed
    neuro = _by_condition(lambda c: _normalised(c.neuro_distribution, dists))[_STATE_COND]
    noci = _by_condition(lambda c: _normalised(c.noci_distribution, dists))[_STATE_COND]
    w = _NEURO_SHARE[:, None]
    add("pain_distribution", dists, "state", w * neuro + (1 - w) * noci)
    courses = BY_NAME["pain_course"].allowed
    add(
        "pain_course",
        courses,
        "state",
        w * _normalised(T.COURSE["neuropathic"], courses) + (1 - w) * _normalised(T.COURSE["nociceptive"], courses),
    )

    def overrides(attr: str, item: str) -> dict[str, tuple[float, float, float]]:
        return {name: getattr(c, attr)[item] for name, c in T.CONDITIONS.items() if item in getattr(c, attr)}

    for item, finding in T.FINDINGS.items():
        p = _finding_rates(finding, overrides("findings", item))
        if item in T.AMPLIFIED_SYMPTOMS:
            add(
                item,
                (0.0, 1.0),
                "symptom",
                _binary_table(_amplified_binary(p, T.AMPLIFICATION_LOADING["symptom"], response_level)),
            )
        else:
            add(item, (0.0, 1.0), "state", _binary_table(p))
    for item, finding in T.PAINDETECT.items():
        q = _finding_rates(finding, overrides("findings", item))
        add(
            item,
            tuple(np.arange(6.0)),
            "symptom",
            _graded_items(q, T.AMPLIFICATION_LOADING["paindetect"], response_level),
        )
    for test in T.TEST_ORDER:
        order = _finding_rates(T.TEST_ORDER[test], overrides("test_order", test))
        abn = _finding_rates(T.TEST_ABNORMAL[test], overrides("test_abnormal", test))
        # level 0 "not done" is observed (an empty cell) and informative: it is part of the likelihood
        add(test, (None, *TEST_RESULTS), "state", np.stack([1 - order, order * (1 - abn), order * abn], axis=1))
    for col in COMORBIDITIES:
        if col.kind != "binary":
            continue
        rate = _by_condition(lambda c, n=col.name: np.array(c.comorbidities.get(n, T.COMORBIDITY_BASE[n])))
        add(col.name, (0.0, 1.0), "condition", _binary_table(rate))
    return out


VARIABLES = _build_variables()  # at response level 0; a preset's own level builds its own tables
LABEL_NOISE = np.array([T.LABEL_NOISE[(T.MECHANISMS[m], T.EXPRESSIONS[e])] for m, e in zip(_STATE_MECH, _STATE_EXPR)])
_ROUTINE = np.array([T.ROUTINE_LABEL[c] for c in CONDITIONS])[_STATE_COND]


def label_model(label: str) -> np.ndarray:
    """P(recorded label | state) for a label definition ("specialist" or "routine")."""
    if label == "specialist":
        return LABEL_NOISE
    if label == "routine":
        w = T.ROUTINE_DIAGNOSIS_WEIGHT
        return w * _ROUTINE + (1 - w) * LABEL_NOISE
    raise ValueError(f"unknown label definition {label!r}; choose one of {', '.join(T.LABEL_DEFINITIONS)}")


@dataclass(frozen=True)
class _Setting:
    """What the generating model takes from a preset, after any override."""

    preset: str
    label: str
    response_level: float


def _setting(preset: str, label: str | None, response_level: float | None) -> _Setting:
    if preset not in T.PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    spec = T.PRESETS[preset]
    label = spec.label if label is None else label
    label_model(label)  # validates
    level = spec.response_level if response_level is None else float(response_level)
    return _Setting(preset, label, level)


TESTS = tuple(c.name for c in INPUT_COLUMNS if c.block == "tests")
EXAM = BLOCKS["examination"]
DN4_EXAM = ("hypoesthesia_touch", "hypoesthesia_pinprick", "brush_allodynia")


def state_prior(preset: str) -> np.ndarray:
    """P(state) for a preset: case mix x P(mechanism | condition) x P(expression)."""
    mix = _normalised(T.PRESETS[preset].case_mix, CONDITIONS)
    mech = _by_condition(lambda c: np.array(c.mechanism) / sum(c.mechanism))
    expr = _normalised(T.EXPRESSION_SHARE, T.EXPRESSIONS)
    return mix[_STATE_COND] * mech[_STATE_COND, _STATE_MECH] * expr[_STATE_EXPR]


def _draw(rng: np.random.Generator, table: np.ndarray, group: np.ndarray | None = None) -> np.ndarray:
    """One categorical draw per row from ``table[group]`` without materialising it per row.

    Each group's cumulative distribution is shifted by the group index so a
    single ``searchsorted`` over the flattened tables finds every draw.
    """
    table = np.atleast_2d(table)
    if group is None:
        group = np.zeros(1, dtype=np.int64)
    n_levels = table.shape[1]
    cum = np.cumsum(table / table.sum(axis=1, keepdims=True), axis=1)
    cum[:, -1] = 1.0
    flat = (cum + np.arange(len(table))[:, None]).ravel()
    u = rng.random(len(group))
    idx = np.searchsorted(flat, u + group, side="right") - group * n_levels
    return np.minimum(idx, n_levels - 1).astype(np.int64)


def _codes(frame: pd.DataFrame, var: Variable) -> np.ndarray:
    """Level index of each row for a variable, -1 where not recorded (tests: 0 = not done)."""
    if var.column not in frame:
        return np.full(len(frame), -1, dtype=np.int64)
    values = frame[var.column]
    if var.column in TESTS:
        codes = pd.Categorical(values.astype(object), categories=list(TEST_RESULTS)).codes.astype(np.int64)
        return codes + 1  # NaN (-1) becomes 0: "not done"
    if isinstance(var.levels[0], str):
        return pd.Categorical(values.astype(object), categories=list(var.levels)).codes.astype(np.int64)
    x = pd.to_numeric(values, errors="coerce").astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    lo = var.levels[0]
    idx = np.where(np.isnan(x), -1, np.rint(x) - lo).astype(np.int64)
    return np.where((idx >= 0) & (idx < len(var.levels)), idx, -1)


@dataclass(frozen=True)
class _Likelihood:
    """log P(level | latent) laid out for one matrix product per chunk.

    Each variable gets one extra all-zero row for "not recorded", so missing
    values index a row that adds nothing and no masking is needed. Symptom
    variables keep only the distinct per-state blocks of K columns
    (``profile`` maps each state to its block): conditions that share a
    questionnaire profile share them.
    """

    state_vars: tuple[str, ...]
    state_design: np.ndarray  # (levels, N_STATES)
    state_offsets: np.ndarray
    symptom_vars: tuple[str, ...]
    symptom_design: np.ndarray  # (levels, K * profiles)
    symptom_offsets: np.ndarray
    profile: np.ndarray  # (N_STATES,) index of each state's symptom profile
    cond_vars: tuple[str, ...]
    cond_tables: tuple[np.ndarray, ...]


def _log_table(table: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        out = np.r_[np.log(table).T, np.zeros((1, len(table)))]
    return np.where(np.isfinite(out), out, _LOG_ZERO)


@functools.cache
def _likelihood(response_level: float = 0.0) -> _Likelihood:
    variables = _build_variables(response_level)

    def scoped(scope: str) -> list[Variable]:
        return [v for v in variables.values() if v.scope == scope]

    def offsets(variables: list[Variable]) -> np.ndarray:
        return np.cumsum([0] + [len(v.levels) + 1 for v in variables])

    state_vars, symptom_vars, cond_vars = scoped("state"), scoped("symptom"), scoped("condition")
    full = np.concatenate([_log_table(v.table) for v in symptom_vars])  # (levels, N_STATES * K)
    blocks = full.reshape(len(full), N_STATES, K).transpose(1, 0, 2).reshape(N_STATES, -1)
    unique, profile = np.unique(blocks, axis=0, return_inverse=True)
    # columns ordered (level, profile) so the sum over levels runs over contiguous slices
    symptom_design = unique.reshape(len(unique), len(full), K).transpose(1, 2, 0).reshape(len(full), -1)
    return _Likelihood(
        tuple(v.column for v in state_vars),
        np.concatenate([_log_table(v.table) for v in state_vars]),
        offsets(state_vars),
        tuple(v.column for v in symptom_vars),
        np.ascontiguousarray(symptom_design),
        offsets(symptom_vars),
        profile.ravel(),
        tuple(v.column for v in cond_vars),
        tuple(_log_table(v.table) for v in cond_vars),
    )


_LOG_ZERO = -1e4  # log(0) stand-in: keeps impossible states finite so a row never becomes NaN


def _onehot(codes: dict[str, np.ndarray], names: tuple[str, ...], offsets: np.ndarray, sl: slice, m: int) -> np.ndarray:
    onehot = np.zeros((m, offsets[-1]))
    rows = np.arange(m)
    for name, off, nxt in zip(names, offsets[:-1], offsets[1:]):
        c = codes[name][sl]
        onehot[rows, np.where(c >= 0, off + c, nxt - 1)] = 1.0
    return onehot


def _posterior_from_codes(codes: dict[str, np.ndarray], n: int, setting: _Setting) -> np.ndarray:
    """P(recorded label | recorded items), chunk by chunk to bound memory.

    The symptom likelihood is summed over the amplification levels first
    (log-sum-exp per distinct profile), then added to the state likelihood.
    """
    lk = _likelihood(setting.response_level)
    noise = label_model(setting.label)
    with np.errstate(divide="ignore"):
        log_prior = np.maximum(np.log(state_prior(setting.preset)), _LOG_ZERO)
    log_w = np.log(_WEIGHTS)
    per_condition = N_STATES // len(CONDITIONS)
    out = np.empty((n, LABEL_NOISE.shape[1]))
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        m = stop - start
        sl = slice(start, stop)
        sym = (_onehot(codes, lk.symptom_vars, lk.symptom_offsets, sl, m) @ lk.symptom_design).reshape(m, K, -1)
        sym += log_w[None, :, None]
        top = sym[:, 0].copy()  # explicit loops over the K slices: numpy reduces a short middle axis slowly
        for k in range(1, K):
            np.maximum(top, sym[:, k], out=top)
        sym -= top[:, None, :]
        np.exp(sym, out=sym)
        total = sym[:, 0].copy()
        for k in range(1, K):
            total += sym[:, k]
        lse = np.log(total, out=total)
        lse += top
        ll = _onehot(codes, lk.state_vars, lk.state_offsets, sl, m) @ lk.state_design
        ll += log_prior
        ll += np.take(lse, lk.profile, axis=1)
        lc = np.zeros((m, len(CONDITIONS)))
        for name, table in zip(lk.cond_vars, lk.cond_tables):
            lc += table[codes[name][sl]]  # index -1 is the zero "not recorded" row
        ll.reshape(m, len(CONDITIONS), per_condition).__iadd__(lc[:, :, None])
        ll -= ll.max(axis=1, keepdims=True)
        np.exp(ll, out=ll)
        ll /= ll.sum(axis=1, keepdims=True)
        out[start:stop] = ll @ noise
    return out


def exact_posterior(
    frame: pd.DataFrame, preset: str, *, label: str | None = None, response_level: float | None = None
) -> pd.DataFrame:
    """P(recorded label | everything recorded) under the preset's generating model.

    Works on any frame in the record schema (as written by :func:`simulate`
    or as loaded back), so the ceiling can be recomputed from a file. Pass
    the same ``label`` / ``response_level`` overrides the cohort was drawn with.
    """
    setting = _setting(preset, label, response_level)
    codes = {name: _codes(frame, var) for name, var in VARIABLES.items()}
    p = _posterior_from_codes(codes, len(frame), setting)
    return pd.DataFrame(p, columns=[f"true_p_{m}" for m in T.MECHANISMS], index=frame.index)


def _instruments(rng: np.random.Generator, spec: T.Preset, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Each record's site and what it carries (``T.INSTRUMENTS``): its site's questionnaires, sometimes one of two.

    Sites are drawn independently of the patient, so the questionnaires a record lacks are missing at random.
    """
    site_names = tuple(spec.sites)
    site = _draw(rng, _normalised({k: v[0] for k, v in spec.sites.items()}, site_names), np.zeros(n, dtype=np.int64))
    instrument = np.array([spec.sites[s][1] for s in site_names], dtype=object)[site]
    pd_alone, dn4_alone = T.SINGLE_QUESTIONNAIRE
    u = rng.random(n)
    both = instrument == "both"
    instrument[both & (u < pd_alone)] = "paindetect"
    instrument[both & (u >= 1 - dn4_alone)] = "dn4"
    return instrument, np.array(site_names, dtype=object)[site]


def simulate(
    preset: str = "pain_clinic",
    n: int = 10_000,
    seed: int = 0,
    *,
    label: str | None = None,
    response_level: float | None = None,
) -> pd.DataFrame:
    """Draw a cohort of ``n`` patients; same arguments, same frame.

    ``label`` ("specialist" or "routine") and ``response_level`` override the
    preset's own (for a config that knows its clinic better).
    """
    setting = _setting(preset, label, response_level)
    variables = _build_variables(setting.response_level)
    if n < 1:
        raise ValueError("n must be at least 1")
    rng = np.random.default_rng(seed)
    spec = T.PRESETS[preset]
    state = _draw(rng, state_prior(preset), np.zeros(n, dtype=np.int64))
    cond = _STATE_COND[state]
    symptom = state * K + _draw(rng, _WEIGHTS, np.zeros(n, dtype=np.int64))
    groups = {"condition": cond, "state": state, "symptom": symptom}
    codes: dict[str, np.ndarray] = {}
    for name, var in variables.items():
        group = groups[var.scope]
        if len(var.levels) == 2:
            codes[name] = (rng.random(n) < var.table[group, 1]).astype(np.int64)
        else:
            codes[name] = _draw(rng, var.table, group)

    instrument, site = _instruments(rng, spec, n)
    for item in BLOCKS["dn4_interview"]:
        codes[item] = np.where(instrument != "paindetect", codes[item], -1)
    for item in BLOCKS["paindetect"]:
        codes[item] = np.where((instrument == "paindetect") | (instrument == "both"), codes[item], -1)
    dn4_exam = (instrument == "dn4") | (instrument == "both")
    exam_done = rng.random(n) >= T.EXAM_NOT_DONE
    for item in EXAM:
        rate = (
            np.where(dn4_exam, T.DN4_EXAM_ITEM_NOT_DONE, T.EXAM_ITEM_NOT_DONE)
            if item in DN4_EXAM
            else T.EXAM_ITEM_NOT_DONE
        )
        codes[item] = np.where(exam_done & (rng.random(n) >= rate), codes[item], -1)

    recorded = _draw(rng, label_model(setting.label), state)
    posterior = _posterior_from_codes(codes, n, setting)

    frame = pd.DataFrame({"patient_id": np.char.add(f"S{seed}-", np.arange(1, n + 1).astype(str)).astype(object)})
    frame["site"] = site
    for col in INPUT_COLUMNS:
        if col.name in VARIABLES:
            frame[col.name] = _decode(codes[col.name], VARIABLES[col.name], col.kind)
    diabetic = codes["diabetes"] == 1
    mean = np.where(diabetic, T.HBA1C["diabetic"][0], T.HBA1C["non_diabetic"][0])
    sd = np.where(diabetic, T.HBA1C["diabetic"][1], T.HBA1C["non_diabetic"][1])
    measured = rng.random(n) < np.where(diabetic, T.HBA1C["diabetic"][2], T.HBA1C["non_diabetic"][2])
    hba1c = np.clip(np.round(rng.normal(mean, sd), 1), 3.0, 20.0)
    frame["hba1c"] = pd.array(np.where(measured, hba1c, np.nan), dtype="Float64")
    frame["pain_type"] = np.array(T.MECHANISMS, dtype=object)[recorded]
    frame["true_condition"] = np.array(CONDITIONS, dtype=object)[cond]
    frame["true_pain_type"] = np.array(T.MECHANISMS, dtype=object)[_STATE_MECH[state]]
    frame["true_severity"] = np.array(T.EXPRESSIONS, dtype=object)[_STATE_EXPR[state]]
    for k, m in enumerate(T.MECHANISMS):
        frame[f"true_p_{m}"] = posterior[:, k]
    column_order = [c.name for c in INPUT_COLUMNS] + ["pain_type", *TRUTH_COLUMNS]
    return frame[column_order]


def _decode(codes: np.ndarray, var: Variable, kind: str) -> pd.api.extensions.ExtensionArray | np.ndarray:
    if var.column in TESTS:
        labels = np.array([None, *TEST_RESULTS], dtype=object)
        return labels[codes]
    if kind == "category":
        out = np.array(var.levels, dtype=object)[np.maximum(codes, 0)]
        out[codes < 0] = None
        return out
    values = np.asarray(var.levels, dtype=float)[np.maximum(codes, 0)]
    mask = codes < 0
    if kind == "binary":
        return pd.arrays.BooleanArray(values.astype(bool), mask)
    if kind == "integer":
        return pd.arrays.IntegerArray(values.astype(np.int64), mask)
    return pd.array(np.where(mask, np.nan, values), dtype="Float64")


def write_cohort(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write CSV or Parquet by extension, atomically (no half-written file on failure).

    pyarrow writes booleans as true/false and missing values as empty cells,
    as the record contract asks (simulated values never need quoting), and is
    an order of magnitude faster than
    ``DataFrame.to_csv`` on a million rows.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ValueError(f"{path}: the output must end in .csv or .parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if suffix == ".csv":
            with pa.OSFile(tmp, "wb") as sink:
                sink.write((",".join(frame.columns) + "\n").encode())
                pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=False, quoting_style="none"))
        else:
            pq.write_table(table, tmp, row_group_size=PARQUET_ROW_GROUP_ROWS)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
