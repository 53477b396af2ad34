"""Clinically grounded cohort simulator with an exact posterior.

The generative model (numbers in :mod:`painml.simulator.clinical_tables`): a latent
condition, mechanism and expression ("state", 16 x 3 x 3 = 144 of them) set
every recorded item independently; record keeping hides some items (whole
questionnaire blocks by site, exam items at random, diagnostic tests ordered
more often when a neuropathic cause is suspected); a clinician's label is
drawn from the true mechanism with realistic disagreement.

Because items are independent given the state and every missingness
mechanism is either ignorable (site, exam) or modelled (test ordering), the
posterior of the recorded label given everything recorded is an exact sum
over the 144 states. ``true_p_*`` holds it: the Bayes ceiling for any
classifier trained on this data.
"""

from __future__ import annotations

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
from scipy.stats import binom

from painml.record.columns import (
    BLOCKS,
    BY_NAME,
    COMORBIDITIES,
    INPUT_COLUMNS,
    TEST_RESULTS,
)
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

    ``scope`` is "condition" when the table has one row per condition and
    "state" when it has one row per latent state.
    """

    column: str
    levels: tuple
    scope: str
    table: np.ndarray


def _binary_table(p: np.ndarray) -> np.ndarray:
    return np.stack([1 - p, p], axis=1)


def _build_variables() -> dict[str, Variable]:
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
    add(
        "pain_intensity",
        tuple(np.arange(11.0)),
        "state",
        _discretised_normal(intensity_mean, T.INTENSITY_SD, np.arange(11)),
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
        add(item, (0.0, 1.0), "state", _binary_table(_finding_rates(finding, overrides("findings", item))))
    for item, finding in T.PAINDETECT.items():
        q = _finding_rates(finding, overrides("findings", item))
        k = np.arange(6)
        add(item, tuple(k.astype(float)), "state", binom.pmf(k[None, :], 5, q[:, None]))
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


VARIABLES = _build_variables()
LABEL_NOISE = np.array([T.LABEL_NOISE[(T.MECHANISMS[m], T.EXPRESSIONS[e])] for m, e in zip(_STATE_MECH, _STATE_EXPR)])
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


def _likelihood_tables() -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """log P(level | latent) laid out for one matrix product per chunk.

    Each variable gets one extra all-zero row for "not recorded", so missing
    values index a row that adds nothing and no masking is needed.
    """
    state_vars = [v for v in VARIABLES.values() if v.scope == "state"]
    with np.errstate(divide="ignore"):
        design = np.concatenate([np.r_[np.log(v.table).T, np.zeros((1, N_STATES))] for v in state_vars])
        cond = [
            np.r_[np.log(v.table).T, np.zeros((1, len(CONDITIONS)))]
            for v in VARIABLES.values()
            if v.scope == "condition"
        ]
    design = np.where(np.isfinite(design), design, _LOG_ZERO)
    cond = [np.where(np.isfinite(t), t, _LOG_ZERO) for t in cond]
    offsets = np.cumsum([0] + [len(v.levels) + 1 for v in state_vars])
    return design, offsets, cond


_LOG_ZERO = -1e4  # log(0) stand-in: keeps impossible states finite so a row never becomes NaN


def _posterior_from_codes(codes: dict[str, np.ndarray], n: int, preset: str) -> np.ndarray:
    """P(recorded label | recorded items), chunk by chunk to bound memory."""
    design, offsets, cond_tables = _likelihood_tables()
    state_vars = [v.column for v in VARIABLES.values() if v.scope == "state"]
    cond_vars = [v.column for v in VARIABLES.values() if v.scope == "condition"]
    with np.errstate(divide="ignore"):
        log_prior = np.maximum(np.log(state_prior(preset)), _LOG_ZERO)
    per_condition = N_STATES // len(CONDITIONS)
    out = np.empty((n, LABEL_NOISE.shape[1]))
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        m = stop - start
        rows = np.arange(m)
        onehot = np.zeros((m, offsets[-1]))
        for name, off, nxt in zip(state_vars, offsets[:-1], offsets[1:]):
            c = codes[name][start:stop]
            onehot[rows, np.where(c >= 0, off + c, nxt - 1)] = 1.0
        ll = onehot @ design
        ll += log_prior
        lc = np.zeros((m, len(CONDITIONS)))
        for name, table in zip(cond_vars, cond_tables):
            lc += table[codes[name][start:stop]]  # index -1 is the zero "not recorded" row
        ll.reshape(m, len(CONDITIONS), per_condition).__iadd__(lc[:, :, None])
        ll -= ll.max(axis=1, keepdims=True)
        np.exp(ll, out=ll)
        ll /= ll.sum(axis=1, keepdims=True)
        out[start:stop] = ll @ LABEL_NOISE
    return out


def exact_posterior(frame: pd.DataFrame, preset: str) -> pd.DataFrame:
    """P(recorded label | everything recorded) under the preset's generating model.

    Works on any frame in the record schema (as written by :func:`simulate`
    or as loaded back), so the ceiling can be recomputed from a file.
    """
    codes = {name: _codes(frame, var) for name, var in VARIABLES.items()}
    p = _posterior_from_codes(codes, len(frame), preset)
    return pd.DataFrame(p, columns=[f"true_p_{m}" for m in T.MECHANISMS], index=frame.index)


def simulate(preset: str = "pain_clinic", n: int = 10_000, seed: int = 0) -> pd.DataFrame:
    """Draw a cohort of ``n`` patients; same arguments, same frame."""
    if preset not in T.PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if n < 1:
        raise ValueError("n must be at least 1")
    rng = np.random.default_rng(seed)
    spec = T.PRESETS[preset]
    state = _draw(rng, state_prior(preset), np.zeros(n, dtype=np.int64))
    cond = _STATE_COND[state]
    codes: dict[str, np.ndarray] = {}
    for name, var in VARIABLES.items():
        group = cond if var.scope == "condition" else state
        if len(var.levels) == 2:
            codes[name] = (rng.random(n) < var.table[group, 1]).astype(np.int64)
        else:
            codes[name] = _draw(rng, var.table, group)

    site_names = tuple(spec.sites)
    site = _draw(rng, _normalised({k: v[0] for k, v in spec.sites.items()}, site_names), np.zeros(n, dtype=np.int64))
    instrument = np.array([spec.sites[s][1] for s in site_names])[site]
    uses_dn4 = instrument != "paindetect"
    for item in BLOCKS["dn4_interview"]:
        codes[item] = np.where(uses_dn4, codes[item], -1)
    for item in BLOCKS["paindetect"]:
        codes[item] = np.where(instrument != "dn4", codes[item], -1)
    exam_done = rng.random(n) >= T.EXAM_NOT_DONE
    for item in EXAM:
        rate = (
            np.where(uses_dn4, T.DN4_EXAM_ITEM_NOT_DONE, T.EXAM_ITEM_NOT_DONE)
            if item in DN4_EXAM
            else T.EXAM_ITEM_NOT_DONE
        )
        codes[item] = np.where(exam_done & (rng.random(n) >= rate), codes[item], -1)

    label = _draw(rng, LABEL_NOISE, state)
    posterior = _posterior_from_codes(codes, n, preset)

    frame = pd.DataFrame({"patient_id": np.char.add(f"S{seed}-", np.arange(1, n + 1).astype(str)).astype(object)})
    frame["site"] = np.array(site_names, dtype=object)[site]
    for col in INPUT_COLUMNS:
        if col.name in VARIABLES:
            frame[col.name] = _decode(codes[col.name], VARIABLES[col.name], col.kind)
    diabetic = codes["diabetes"] == 1
    mean = np.where(diabetic, T.HBA1C["diabetic"][0], T.HBA1C["non_diabetic"][0])
    sd = np.where(diabetic, T.HBA1C["diabetic"][1], T.HBA1C["non_diabetic"][1])
    measured = rng.random(n) < np.where(diabetic, T.HBA1C["diabetic"][2], T.HBA1C["non_diabetic"][2])
    hba1c = np.clip(np.round(rng.normal(mean, sd), 1), 3.0, 20.0)
    frame["hba1c"] = pd.array(np.where(measured, hba1c, np.nan), dtype="Float64")
    frame["pain_type"] = np.array(T.MECHANISMS, dtype=object)[label]
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
            pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
