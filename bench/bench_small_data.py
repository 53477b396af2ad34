"""Validate the validation: painml's small-data estimates against the truth, on simulated clinics.

Run: .venv/bin/python bench/bench_small_data.py [--part validation|learning|speed|all] [--quick]
         [--cohorts 50] [--sizes 300 1000] [--gbm] [--budget-min 40]
         [--learning-sizes 100 300 1000 3000 10000 20000] [--learning-cohorts 3] [--save cohorts.csv]

The question is the one a clinic asks of ``configs/small_cohort.yaml``: with a
few hundred labelled patients, two classes (nociceptive; neuropathic, mixed
mapped to it) and questionnaire-only inputs (demographics, pain history,
painDETECT, the screening scores computable from them), can the numbers painml
reports be trusted? Every cohort uses that config's labels, features, families
and its 5-fold x 10 cross-validation; only ``data`` is replaced by a simulated
source (``cfg.model_copy(update=...)``) with a seed of its own.

Preset: ``pain_clinic`` by default (``--preset``). ``data/sample_cohort.csv``,
the file small_cohort.yaml ships with, is a pain_clinic draw, and it is the
simulator's default: three sites, one recording DN4 only, so about 40% of rows
carry no painDETECT item, as in a real multi-site export. ``orthopaedic``
(painDETECT everywhere) is the kinder alternative.

1. ``validation``: for each size (default 300 and 1,000) draw ``--cohorts``
   cohorts (default 50), train each family (screening and logistic, ``C: auto``;
   ``--gbm`` adds the config's small-data gbm) exactly as painml does
   (:func:`painml.evaluation.resampling.resampled_family`), and compare what it
   reports with the truth of the model it registers (fitted on all rows):
   that bundle's ``predict_proba`` scored on one fresh cohort of
   ``--truth-rows`` (100,000) patients, same preset and label map, a seed no
   training cohort uses. Compared: log-loss (estimate: out-of-fold, averaged
   over repeats, 95% patient-bootstrap interval), AUROC of neuropathic vs the
   rest (averaged over repeats; interval from the first repeat), calibration
   slope of neuropathic vs the rest (first repeat's out-of-fold probabilities,
   Wald interval; truth from :func:`painml.evaluation.calibration.per_class_calibration`
   on the fresh cohort), and the conformal coverage (estimate only, nominal 90%).
   Per size, family and metric: bias = mean(estimate - truth) with its Monte
   Carlo standard error, mean absolute error, the correlation of estimate and
   truth across cohorts, the mean interval width, and coverage = share of
   cohorts whose [ci_low, ci_high] holds the truth (misses split into truth
   below / above the interval), next to the range a correct 95% interval would
   give with that many cohorts (central 95% of Binomial(cohorts, 0.95)).
   Targets: log-loss within 0.02 on average (|bias|), and
   intervals covering close to their nominal level.

   What the estimate targets, honestly: cross-validation estimates the expected
   performance of the *procedure* at this sample size (and of models fitted on
   4/5 of the rows), not the performance of the one model fitted on this
   cohort; the interval resamples this cohort's patients with the fold models
   held fixed, so it carries neither the refitting noise nor the between-cohort
   variation of the truth. Undercoverage of the per-model truth is therefore
   expected to some degree; the column "covers mean truth" shows coverage of
   the average truth over all cohorts of that size (the procedure's expected
   performance, up to Monte Carlo error), which is what the interval can claim
   at best. A positive log-loss bias is the usual pessimism of training on 4/5.

   Cohorts run sequentially (painml's cross-validation already uses both
   cores), interleaved across sizes (round i trains cohort i at every size), so
   a run cut short by ``--budget-min`` leaves equal counts at every size; a
   round is not started when the mean round time so far would overrun the
   budget. One progress line per cohort, with elapsed time and CPU pressure.

2. ``learning``: each family's true log-loss (same fresh cohort) minus the
   exact posterior's, at n = 100, 300, 1,000, 3,000, 10,000 and 20,000
   (``--learning-cohorts`` cohorts each, default 3; validation ``auto`` as
   painml would choose it: 5 x 10 cross-validation below 5,000 rows, holdout
   with its calibration split at and above). Two ceilings: the posterior given
   only the questionnaire-only inputs the model sees (``exact_posterior`` on
   those columns, the rest marginalised; site is independent of the state, so
   the missing painDETECT block is uninformative) -- the gap a better model
   could close -- and the simulator's posterior given the full record, whose
   extra gap is the cost of leaving out the examination, DN4 and tests. The
   posterior of "neuropathic" is the sum of the neuropathic and mixed columns,
   as the label map has it. All three families, each with the settings
   run_training would give it: under resampling a family goes through
   ``painml.model.families.for_small_data`` when this painml has it (the gbm's
   small-data defaults for whatever the config leaves unset), under holdout
   the config's own; the settings used are printed.

3. ``speed``: :func:`painml.jobs.train.run_training` on ``--speed-rows`` (750)
   simulated questionnaire-only rows, three families, 5 x 10 cross-validation,
   MLflow in a temporary SQLite store, no model logging, no SHAP, in a fresh
   subprocess with a temporary working directory (target: under 2 minutes on 2
   cores). Printed: run_training's wall time, each family's fit time, and the
   whole process including imports.

Timings come from a shared 2-core machine: the load average and CPU pressure
(Linux PSI ``/proc/pressure/cpu``, avg10: share of time some task waited for a
CPU) are printed with every cohort and around each part, so disturbed runs are
visible. Seeds: training cohorts ``n * 10,000 + i`` (validation),
``500,000,000 + n * 10,000 + i`` (learning), ``900,000,000 + rows`` (speed); the
truth cohort ``2**31 - 1``; painml's own seed stays the config's (42). The
working tree is shared: a digest of painml's source and the config is printed at
start and end, so a run that straddled someone's edit is visible.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "small_cohort.yaml"
POSITIVE = "neuropathic"
NOMINAL = 0.95
TRUTH_SEED = 2**31 - 1
LEARNING_SEED = 500_000_000
SPEED_SEED = 900_000_000
TARGET_BIAS = 0.02
TARGET_SPEED_S = 120.0
METRICS = (
    # (name, estimate key, interval keys or None)
    ("log_loss", "test_log_loss", ("test_log_loss_ci_low", "test_log_loss_ci_high")),
    (
        f"auroc_{POSITIVE}",
        f"test_auroc_{POSITIVE}",
        (f"test_auroc_{POSITIVE}_ci_low", f"test_auroc_{POSITIVE}_ci_high"),
    ),
    (
        f"calibration_slope_{POSITIVE}",
        f"test_calibration_slope_{POSITIVE}",
        (f"test_calibration_slope_{POSITIVE}_ci_low", f"test_calibration_slope_{POSITIVE}_ci_high"),
    ),
    ("conformal_coverage", "test_conformal_coverage", None),
)


# ---------------------------------------------------------------- machine load


def pressure() -> str:
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        return line.split()[1].replace("avg10=", "") + "%"
    except (OSError, IndexError):
        return "n/a"


def load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def machine() -> str:
    return f"load average {load()}, CPU pressure {pressure()}"


def clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}"


def say(text: str = "") -> None:
    print(text, flush=True)


def md_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------- config and data


def base_config(preset: str, families: tuple[str, ...], method: str = "cv"):
    """small_cohort.yaml with only ``families``, ``method`` validation (5 x 10), a simulated source."""
    from painml.config import SimulatedData, load_config

    cfg = load_config(CONFIG)
    models = tuple(m for m in cfg.models if m.family in families)
    missing = set(families) - {m.family for m in models}
    if missing:
        raise SystemExit(f"{CONFIG.name} has no model of family {sorted(missing)}")
    return cfg.model_copy(
        update={
            "models": models,
            "validation": cfg.validation.model_copy(update={"method": method}),
            "data": SimulatedData(source="simulate", preset=preset, n=1_000, seed=0),
        }
    )


def with_data(cfg, n: int, seed: int):
    """The config drawing ``n`` patients with ``seed``. SimulatedData refuses n < 200 (a holdout floor);
    the learning curve's n = 100 is cross-validated, so that check is bypassed with model_construct."""
    from painml.config import SimulatedData

    preset = cfg.data.preset
    if n >= 200:
        data = SimulatedData(source="simulate", preset=preset, n=n, seed=seed)
    else:
        data = SimulatedData.model_construct(source="simulate", preset=preset, n=n, seed=seed)
    return cfg.model_copy(update={"data": data})


@dataclass
class Fresh:
    """The truth cohort: inputs, labels, and the two exact posteriors over the configured classes."""

    X: pd.DataFrame
    y: np.ndarray
    y_index: np.ndarray
    ceiling_inputs: dict[str, float]
    """Metrics of the posterior given only the model's inputs (the ceiling for these features)."""
    ceiling_full: dict[str, float]
    """Metrics of the simulator's posterior given the whole record."""


def mapped_posterior(p: pd.DataFrame, cfg) -> np.ndarray:
    """The simulator's three-class posterior mapped onto the configured classes by the label map."""
    from painml.record.labels import resolve

    out = np.zeros((len(p), len(cfg.classes)))
    for column in p.columns:
        recorded = column.removeprefix("true_p_")
        target = resolve(recorded, cfg.labels.map)
        if target in cfg.classes:
            out[:, cfg.classes.index(target)] += p[column].to_numpy(dtype=float)
        elif target not in cfg.labels.drop:
            raise ValueError(f"{recorded!r} maps to {target!r}, outside the classes")
    return out / out.sum(axis=1, keepdims=True)  # renormalise in case some recorded label is dropped


def fresh_cohort(cfg, rows: int) -> Fresh:
    from painml.evaluation.metrics import classification_metrics
    from painml.features.encoding import record_columns
    from painml.model.dataset import load_dataset
    from painml.simulator.simulate import exact_posterior

    data = load_dataset(with_data(cfg, rows, TRUTH_SEED))
    classes = list(cfg.classes)
    frame = data.records.frame
    seen = [c for c in record_columns(cfg.features.groups) if c in frame.columns]
    p_inputs = mapped_posterior(exact_posterior(frame[seen], cfg.data.preset), cfg)
    truth = data.records.truth
    p_full = mapped_posterior(truth[[c for c in truth.columns if c.startswith("true_p_")]], cfg)
    y = data.y
    return Fresh(
        data.X,
        y,
        np.array([classes.index(v) for v in y]),
        classification_metrics(y, p_inputs, classes, prefix=""),
        classification_metrics(y, p_full, classes, prefix=""),
    )


def true_performance(bundle, fresh: Fresh, classes: list[str]) -> dict[str, float]:
    """The registered model on the fresh cohort: the truth each reported estimate is compared with."""
    from painml.evaluation.calibration import per_class_calibration
    from painml.evaluation.metrics import classification_metrics
    from painml.model.conformal import prediction_sets

    p = bundle.predict_proba(fresh.X)
    m = classification_metrics(fresh.y, p, classes, prefix="")
    slopes = per_class_calibration(fresh.y, p, classes).set_index("class")["slope"]
    out = {
        "log_loss": m["log_loss"],
        f"auroc_{POSITIVE}": m[f"auroc_{POSITIVE}"],
        f"calibration_slope_{POSITIVE}": float(slopes[POSITIVE]),
    }
    thresholds = bundle.metadata.thresholds
    if thresholds is not None:
        sets = prediction_sets(p, thresholds)
        out["conformal_coverage"] = float(sets[np.arange(len(p)), fresh.y_index].mean())
    return out


def small_data_settings(model_cfg):
    """What run_training does to a family's settings under resampling: painml.model.families.for_small_data
    where this painml has it (the gbm's small-data defaults for every setting the config leaves unset)."""
    from painml.model import families

    resolve = getattr(families, "for_small_data", None)
    return resolve(model_cfg) if resolve is not None else model_cfg


def tree_digest() -> str:
    """Short hash of painml's source and the config, printed at start and end: other people edit this working
    tree, and a change during a run shows up as two different digests."""
    digest = hashlib.sha256()
    for path in sorted([*(REPO / "src" / "painml").rglob("*.py"), CONFIG]):
        digest.update(str(path.relative_to(REPO)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def train(model_cfg, cfg, data) -> tuple[object, dict[str, float], str]:
    """Train one family as painml would for this many rows: (bundle, reported metrics, method)."""
    from painml.evaluation.resampling import resampled_family
    from painml.model.dataset import split_rows
    from painml.model.fit import build_bundle, fit_family

    method = cfg.validation.resolve(len(data.y))
    if method != "holdout":
        model_cfg = small_data_settings(model_cfg)
    if method == "cv":
        bundle, metrics, *_ = resampled_family(model_cfg, cfg, data)
        return bundle, metrics, method
    if method != "holdout":
        raise ValueError(f"validation {method!r} is not benchmarked here")
    rows = split_rows(data.y, cfg)
    estimator, chosen = fit_family(model_cfg, cfg, data.X, data.y, rows)
    return build_bundle(estimator, model_cfg.family, cfg, data, rows, chosen.model_dump()), {}, method


# ---------------------------------------------------------------- part 1: validation


def run_validation(args, fresh: Fresh, cfg) -> pd.DataFrame:
    from painml.model.dataset import load_dataset

    classes = list(cfg.classes)
    families = [m.family for m in cfg.models]
    say(f"\n## 1. Reported estimates vs the truth ({', '.join(families)}; sizes {args.sizes}; {args.cohorts} cohorts)")
    say(f"\nstart: {machine()}")
    records = []
    start = time.perf_counter()
    round_times: list[float] = []
    done = 0
    for i in range(args.cohorts):
        elapsed = time.perf_counter() - start
        if args.budget_min and round_times and elapsed + np.mean(round_times) > args.budget_min * 60:
            say(
                f"budget: stopping after {i} rounds ({clock(elapsed)} spent, a round takes about "
                f"{np.mean(round_times):.0f} s, budget {args.budget_min:g} min)"
            )
            break
        round_start = time.perf_counter()
        for n in args.sizes:
            seed = n * 10_000 + i
            t0 = time.perf_counter()
            try:
                data = load_dataset(with_data(cfg, n, seed))
                parts = []
                for model_cfg in cfg.models:
                    bundle, reported, method = train(model_cfg, cfg, data)
                    truth = true_performance(bundle, fresh, classes)
                    row = {"n": n, "cohort": i, "seed": seed, "family": model_cfg.family, "method": method}
                    for name, key, interval in METRICS:
                        row[f"{name}_est"] = reported.get(key, np.nan)
                        row[f"{name}_true"] = truth.get(name, np.nan)
                        for side, key in zip(("low", "high"), interval or (None, None)):
                            row[f"{name}_{side}"] = reported.get(key, np.nan) if key else np.nan
                    records.append(row)
                    parts.append(
                        f"{model_cfg.family} log-loss {row['log_loss_est']:.3f} "
                        f"[{row['log_loss_low']:.3f}, {row['log_loss_high']:.3f}] true {row['log_loss_true']:.3f}"
                    )
                say(
                    f"[{clock(time.perf_counter() - start)}] n={n:,} cohort {i + 1}/{args.cohorts} seed {seed}: "
                    + "; ".join(parts)
                    + f" ({time.perf_counter() - t0:.0f} s, PSI {pressure()})"
                )
            except Exception as error:  # a failed cohort is reported, not fatal
                say(f"[{clock(time.perf_counter() - start)}] n={n:,} cohort {i + 1} seed {seed}: FAILED {error!r}")
        round_times.append(time.perf_counter() - round_start)
        done = i + 1
    frame = pd.DataFrame(records)
    if args.save and len(frame):
        frame.to_csv(args.save, index=False)
        say(f"per-cohort results written to {args.save}")
    say(f"\nend: {machine()}; {done} rounds in {clock(time.perf_counter() - start)}")
    if len(frame):
        validation_tables(frame, fresh)
    return frame


def summarise(group: pd.DataFrame, name: str) -> dict[str, float]:
    est, true = group[f"{name}_est"].to_numpy(float), group[f"{name}_true"].to_numpy(float)
    low, high = group[f"{name}_low"].to_numpy(float), group[f"{name}_high"].to_numpy(float)
    ok = np.isfinite(est) & np.isfinite(true)
    est, true, low, high = est[ok], true[ok], low[ok], high[ok]
    k = len(est)
    d = est - true
    out = {
        "k": k,
        "est": est.mean() if k else np.nan,
        "true": true.mean() if k else np.nan,
        "sd_true": true.std(ddof=1) if k > 1 else np.nan,
        "bias": d.mean() if k else np.nan,
        "se": d.std(ddof=1) / math.sqrt(k) if k > 1 else np.nan,
        "mae": np.abs(d).mean() if k else np.nan,
        "corr": np.corrcoef(est, true)[0, 1] if k > 2 and est.std() > 0 and true.std() > 0 else np.nan,
    }
    has = np.isfinite(low) & np.isfinite(high)
    if has.any():
        lo, hi, t = low[has], high[has], true[has]
        out |= {
            "k_ci": int(has.sum()),
            "width": (hi - lo).mean(),
            "cover": ((lo <= t) & (t <= hi)).mean(),
            "below": int((t < lo).sum()),
            "above": int((t > hi).sum()),
            "cover_mean": ((lo <= true.mean()) & (true.mean() <= hi)).mean(),
        }
    return out


def nominal_range(k: int) -> str:
    from scipy.stats import binom

    lo, hi = binom.interval(0.95, k, NOMINAL)
    return f"{lo / k:.0%}-{hi / k:.0%}"


def validation_tables(frame: pd.DataFrame, fresh: Fresh) -> None:
    say(
        f"\nTruth: the registered model (fitted on all rows) on {len(fresh.y):,} fresh patients. Ceilings there: "
        f"log-loss {fresh.ceiling_inputs['log_loss']:.4f} given the model's inputs, "
        f"{fresh.ceiling_full['log_loss']:.4f} given the full record; AUROC {POSITIVE} "
        f"{fresh.ceiling_inputs[f'auroc_{POSITIVE}']:.3f} / {fresh.ceiling_full[f'auroc_{POSITIVE}']:.3f}."
    )
    say(
        "bias = mean(estimate - truth) (Monte Carlo SE); MAE = mean |estimate - truth|; corr = correlation of "
        "estimate and truth across cohorts; coverage = cohorts whose 95% interval holds their model's truth "
        "(misses: truth below / above the interval); covers mean truth = intervals holding the average truth "
        "over cohorts of that size."
    )
    headers = [
        "family",
        "metric",
        "cohorts",
        "mean estimate",
        "mean truth (sd)",
        "bias (SE)",
        "MAE",
        "corr",
        "mean CI width",
        "coverage",
        "misses below/above",
        "covers mean truth",
    ]
    for n, by_n in frame.groupby("n", sort=True):
        rows = []
        verdicts = []
        for family, group in by_n.groupby("family", sort=False):
            for name, _, interval in METRICS:
                s = summarise(group, name)
                if not s["k"]:
                    continue
                row = [
                    family,
                    name,
                    str(s["k"]),
                    f"{s['est']:.4f}",
                    f"{s['true']:.4f} ({s['sd_true']:.4f})",
                    f"{s['bias']:+.4f} ({s['se']:.4f})",
                    f"{s['mae']:.4f}",
                    f"{s['corr']:+.2f}" if np.isfinite(s["corr"]) else "n/a (no spread)",
                ]
                if interval and "cover" in s:
                    row += [
                        f"{s['width']:.4f}",
                        f"{s['cover']:.0%} (nominal 95%: {nominal_range(s['k_ci'])})",
                        f"{s['below']}/{s['above']}",
                        f"{s['cover_mean']:.0%}",
                    ]
                else:
                    row += ["-", "- (nominal 90% sets)" if name == "conformal_coverage" else "-", "-", "-"]
                rows.append(row)
                if name == "log_loss":
                    met = abs(s["bias"]) <= TARGET_BIAS
                    verdicts.append(
                        f"{family}: log-loss bias {s['bias']:+.4f} (target |bias| <= {TARGET_BIAS}: "
                        f"{'met' if met else 'missed'}), coverage {s.get('cover', np.nan):.0%}"
                    )
        say(f"\n### n = {n:,}\n")
        say(md_table(headers, rows))
        say("\n" + "\n".join(f"- {v}" for v in verdicts))


# ---------------------------------------------------------------- part 2: learning curve


def run_learning(args, fresh: Fresh, preset: str) -> pd.DataFrame:
    from painml.model.dataset import load_dataset

    families = ("screening", "logistic", "gbm")
    cfg = base_config(preset, families, method="auto")
    classes = list(cfg.classes)
    say(
        f"\n## 2. Learning curve: true log-loss minus the exact posterior's ({', '.join(families)}; "
        f"{args.learning_cohorts} cohorts per size)"
    )
    for model_cfg in cfg.models:
        resampled = small_data_settings(model_cfg).model_dump(exclude={"family"})
        holdout = model_cfg.model_dump(exclude={"family"})
        say(f"- {model_cfg.family} under resampling: {resampled}; under holdout: {holdout}")
    say(f"\nstart: {machine()}")
    start = time.perf_counter()
    records = []
    for n in args.learning_sizes:
        for i in range(args.learning_cohorts):
            seed = LEARNING_SEED + n * 10_000 + i
            t0 = time.perf_counter()
            try:
                data = load_dataset(with_data(cfg, n, seed))
                parts = []
                for model_cfg in cfg.models:
                    t1 = time.perf_counter()
                    bundle, _, method = train(model_cfg, cfg, data)
                    seconds = time.perf_counter() - t1
                    truth = true_performance(bundle, fresh, classes)
                    records.append({
                        "n": n,
                        "cohort": i,
                        "family": model_cfg.family,
                        "method": method,
                        "seconds": seconds,
                        "log_loss": truth["log_loss"],
                        "gap_inputs": truth["log_loss"] - fresh.ceiling_inputs["log_loss"],
                        "gap_full": truth["log_loss"] - fresh.ceiling_full["log_loss"],
                        "auroc": truth[f"auroc_{POSITIVE}"],
                        "slope": truth[f"calibration_slope_{POSITIVE}"],
                    })  # fmt: skip
                    parts.append(f"{model_cfg.family} {records[-1]['gap_inputs']:+.4f}")
                say(
                    f"[{clock(time.perf_counter() - start)}] n={n:,} cohort {i + 1}/{args.learning_cohorts} "
                    f"({method}): gap to the inputs' posterior "
                    + ", ".join(parts)
                    + f" ({time.perf_counter() - t0:.0f} s, PSI {pressure()})"
                )
            except Exception as error:
                say(f"[{clock(time.perf_counter() - start)}] n={n:,} cohort {i + 1} seed {seed}: FAILED {error!r}")
    say(f"\nend: {machine()}; {clock(time.perf_counter() - start)}")
    frame = pd.DataFrame(records)
    if not len(frame):
        return frame
    say(
        f"\nCeilings on the {len(fresh.y):,}-patient truth cohort: log-loss {fresh.ceiling_inputs['log_loss']:.4f} "
        f"(posterior given the questionnaire-only inputs), {fresh.ceiling_full['log_loss']:.4f} (given the full "
        "record). Cells: mean (sd over cohorts) of the registered model's true log-loss minus the ceiling."
    )
    for ceiling, column in (("the inputs' posterior", "gap_inputs"), ("the full record's posterior", "gap_full")):
        rows = []
        for n, by_n in frame.groupby("n", sort=True):
            means = by_n.groupby("family", sort=False)[column].mean()
            cells = []
            for family in families:
                g = by_n.loc[by_n.family == family, column]
                cells.append(f"{g.mean():.4f} ({g.std(ddof=1):.4f})" if len(g) > 1 else f"{g.mean():.4f}")
            rows.append([f"{n:,}", by_n["method"].iloc[0], str(by_n["cohort"].nunique()), *cells, means.idxmin()])
        say(f"\n### Gap to {ceiling}\n")
        say(md_table(["n", "validation", "cohorts", *families, "lowest"], rows))
    rows = []
    for (n, family), g in frame.groupby(["n", "family"], sort=False):
        rows.append([
            f"{n:,}", family, f"{g.log_loss.mean():.4f}", f"{g.auroc.mean():.3f}", f"{g.slope.mean():.3f}",
            f"{g.seconds.mean():.1f}",
        ])  # fmt: skip
    say("\n### True performance of the registered model (means over cohorts)\n")
    say(md_table(["n", "family", "log-loss", f"AUROC {POSITIVE}", f"calibration slope {POSITIVE}", "train s"], rows))
    return frame


# ---------------------------------------------------------------- part 3: speed


def speed_child(rows: int, preset: str) -> dict:
    """Runs in a fresh subprocess whose working directory is a temporary folder (MLflow writes there)."""
    from rich.console import Console

    from painml.jobs.train import run_training

    cfg = with_data(base_config(preset, ("screening", "logistic", "gbm"), method="cv"), rows, SPEED_SEED + rows)
    db = Path.cwd() / "mlflow.db"
    start = time.perf_counter()
    result = run_training(
        cfg, tracking_uri=f"sqlite:///{db}", log_models=False, explain=False, console=Console(file=sys.stderr)
    )
    return {
        "seconds": time.perf_counter() - start,
        "families": {f: r.fit_seconds for f, r in result.families.items()},
        "winner": result.winner,
        "validation": result.validation,
    }


def run_speed(args, preset: str) -> None:
    say(
        f"\n## 3. Speed: run_training on {args.speed_rows:,} simulated questionnaire-only rows, "
        "screening + logistic + gbm, 5 x 10 cross-validation"
    )
    rows = []
    for r in range(args.speed_repeats):
        before = machine()
        with tempfile.TemporaryDirectory(prefix="bench_small_data_") as tmp:
            start = time.perf_counter()
            out = subprocess.run(
                [sys.executable, __file__, "--speed-child", str(args.speed_rows), preset],
                cwd=tmp,
                capture_output=True,
                text=True,
                env={k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"},
            )
            total = time.perf_counter() - start
        if out.returncode != 0:
            say(f"speed run {r + 1} failed:\n{out.stderr[-3000:]}")
            continue
        result = json.loads(out.stdout.strip().splitlines()[-1])
        fams = ", ".join(f"{f} {s:.1f}" for f, s in result["families"].items())
        met = "met" if result["seconds"] < TARGET_SPEED_S else "missed"
        rows.append([
            str(r + 1), f"{result['seconds']:.1f}", f"{total:.1f}", fams, result["winner"], f"{met}",
            before, machine(),
        ])  # fmt: skip
    say("")
    say(
        md_table(
            [
                "run",
                "run_training s",
                "process s (imports incl.)",
                "per family s",
                "winner",
                f"< {TARGET_SPEED_S:.0f} s",
                "before",
                "after",
            ],
            rows,
        )
    )


# ---------------------------------------------------------------- main


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--speed-child":
        print(json.dumps(speed_child(int(sys.argv[2]), sys.argv[3])))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("validation", "learning", "speed", "all"), default="all")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 cohorts at 300, small learning curve")
    parser.add_argument("--preset", default="pain_clinic", help="simulator preset (default pain_clinic)")
    parser.add_argument("--cohorts", type=int, help="cohorts per size for validation (default 50; quick 3)")
    parser.add_argument("--sizes", type=int, nargs="+", help="validation sizes (default 300 1000; quick 300)")
    parser.add_argument("--gbm", action="store_true", help="validation: add the gbm family (slower)")
    parser.add_argument("--budget-min", type=float, help="validation: stop starting rounds past this many minutes")
    parser.add_argument("--truth-rows", type=int, help="fresh cohort for the truth (default 100000; quick 20000)")
    parser.add_argument("--learning-sizes", type=int, nargs="+", help="default 100 300 1000 3000 10000 20000")
    parser.add_argument("--learning-cohorts", type=int, help="cohorts per learning-curve size (default 3; quick 1)")
    parser.add_argument("--speed-rows", type=int, default=750)
    parser.add_argument("--speed-repeats", type=int, default=1)
    parser.add_argument("--save", type=Path, help="write the validation part's per-cohort rows to this CSV")
    args = parser.parse_args()
    quick = args.quick
    args.cohorts = args.cohorts or (3 if quick else 50)
    args.sizes = args.sizes or ([300] if quick else [300, 1_000])
    args.truth_rows = args.truth_rows or (20_000 if quick else 100_000)
    args.learning_sizes = args.learning_sizes or ([100, 300] if quick else [100, 300, 1_000, 3_000, 10_000, 20_000])
    args.learning_cohorts = args.learning_cohorts or (1 if quick else 3)

    families = ("screening", "logistic", "gbm") if args.gbm else ("screening", "logistic")
    cfg = base_config(args.preset, families, method="cv")
    say(f"# painml small-data validation benchmark ({time.strftime('%Y-%m-%d %H:%M')})\n")
    say(
        f"config {CONFIG.relative_to(REPO)} (labels {list(cfg.classes)}, map {dict(cfg.labels.map)}, features "
        f"{list(cfg.features.groups)}), simulated preset {args.preset}, "
        f"{cfg.validation.folds}-fold x {cfg.validation.repeats} cross-validation, painml seed {cfg.seed}; "
        f"{os.cpu_count()} CPUs; {machine()}; source digest {tree_digest()}"
    )
    start = time.perf_counter()
    fresh = None
    if args.part in ("validation", "learning", "all"):
        t0 = time.perf_counter()
        fresh = fresh_cohort(cfg, args.truth_rows)
        say(
            f"truth cohort: {len(fresh.y):,} patients, seed {TRUTH_SEED}, {np.mean(fresh.y == POSITIVE):.1%} "
            f"{POSITIVE}; posterior log-loss {fresh.ceiling_inputs['log_loss']:.4f} (model's inputs) / "
            f"{fresh.ceiling_full['log_loss']:.4f} (full record) ({time.perf_counter() - t0:.1f} s)"
        )
    if args.part in ("validation", "all"):
        run_validation(args, fresh, cfg)
    if args.part in ("learning", "all"):
        run_learning(args, fresh, args.preset)
    if args.part in ("speed", "all"):
        run_speed(args, args.preset)
    say(f"\ntotal wall time {clock(time.perf_counter() - start)}; {machine()}; source digest {tree_digest()}")


if __name__ == "__main__":
    main()
