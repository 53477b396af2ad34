"""The updating ladder against the truth: a model trained on one simulated clinic, adapted to another.

Run: .venv/bin/python bench/bench_adapt.py [--source-n 20000] [--sizes 50 100 300 1000] [--seeds 1] [--first-seed 0]
         [--truth-rows 100000] [--folds 5] [--repeats 2] [--family gbm]

Source: the config's family (gbm by default, its default settings with early stopping on a slice) trained
on ``--source-n`` pain_clinic patients (specialist labels), temperature-calibrated on 10% more.
Site: orthopaedic patients (another case mix, painDETECT everywhere, routine-practice labels: another
label definition). For each site size, ``--seeds`` site cohorts; on each, ``painml adapt``'s ladder
(:func:`painml.jobs.adapt.ladder_rungs`, the same rungs, 2,000 pain_clinic rows as the pooled step's
source-like rows, ``--folds`` x ``--repeats`` cross-validation) chooses a step; then every step is fitted
on all the site's rows and scored on one fresh orthopaedic cohort of ``--truth-rows`` patients: true
log-loss (on the recorded labels) and macro one-vs-rest AUROC, beside the site's exact posterior (the
ceiling). ``as-is`` is the source as it is, ``d`` the site-only refit.

Target: at n_site = 100 the chosen model beats both as-is and d on true log-loss.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from painml.config import GbmConfig, LogisticConfig, SimulatedData, TrainConfig
from painml.jobs.adapt import ladder_rungs
from painml.model import calibration
from painml.model.fit import fit_pipeline
from painml.model.updating import Source, run_ladder
from painml.record.schema import load_records
from painml.simulator.simulate import simulate

SITE, SOURCE = "orthopaedic", "pain_clinic"


def say(text: str = "") -> None:
    print(text, flush=True)


def train_source(family: str, n: int, seed: int):
    model = GbmConfig(family="gbm") if family == "gbm" else LogisticConfig(family="logistic")
    cfg = TrainConfig(
        name="bench-source", seed=seed, data=SimulatedData(source="simulate", preset=SOURCE, n=n), models=[model]
    )
    records = load_records(simulate(SOURCE, int(n * 1.1), seed=seed))
    X, y = records.features, records.label.to_numpy(object)
    pipeline, _ = fit_pipeline(model, cfg, X, y, np.arange(n))
    held = np.arange(n, len(y))
    return calibration.calibrate(pipeline, "temperature", X.iloc[held], y[held]), cfg


def true_scores(proba: np.ndarray, y_index: np.ndarray) -> tuple[float, float]:
    p = np.clip(proba[np.arange(len(y_index)), y_index], 1e-15, 1)
    auroc = np.mean([roc_auc_score(y_index == k, proba[:, k]) for k in range(proba.shape[1])])
    return float(-np.log(p).mean()), float(auroc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source-n", type=int, default=20_000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 300, 1000])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--first-seed", type=int, default=0, help="site cohorts use seeds from this one on")
    parser.add_argument("--truth-rows", type=int, default=100_000)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--family", choices=["gbm", "logistic"], default="gbm")
    parser.add_argument("--save", default=None, help="CSV of every (size, seed, step) row")
    args = parser.parse_args()
    start = time.perf_counter()
    estimator, source_cfg = train_source(args.family, args.source_n, seed=3)
    say(f"source: {args.family} on {args.source_n:,} {SOURCE} patients ({time.perf_counter() - start:.0f} s)")
    fresh = load_records(simulate(SITE, args.truth_rows, seed=999_999))
    classes = sorted(source_cfg.classes)
    y_fresh = np.array([classes.index(v) for v in fresh.label])
    ceiling = true_scores(fresh.truth[[f"true_p_{c}" for c in classes]].to_numpy(), y_fresh)
    say(
        f"fresh {SITE} cohort: {args.truth_rows:,} patients; exact posterior: "
        f"log-loss {ceiling[0]:.4f}, AUROC {ceiling[1]:.4f}"
    )
    like = load_records(simulate(SOURCE, 2_000, seed=4242))
    rows = []
    for n in args.sizes:
        for s in range(args.first_seed, args.first_seed + args.seeds):
            t = time.perf_counter()
            site = load_records(simulate(SITE, n, seed=1000 * n + s))
            cfg = source_cfg.model_copy(update={"seed": s})
            source = Source.of(estimator, cfg.classes)
            y_index = np.array([classes.index(v) for v in site.label])
            rungs = ladder_rungs(source, cfg, source_rows=(like.features, like.label.to_numpy(object)), seed=s)
            n_features = len(source.pipeline.named_steps["features"].get_feature_names_out())
            with threadpool_limits(limits=1, user_api="blas"):
                ladder = run_ladder(
                    rungs, site.features, y_index, n_features=n_features, folds=args.folds, repeats=args.repeats, seed=s
                )
                for rung in rungs:
                    cv = ladder.table.set_index("rung").loc[rung.key]
                    try:
                        fitted = ladder.fitted if rung.key == ladder.chosen else rung.fit(site.features, y_index)
                    except ValueError as error:
                        say(f"  n={n} seed={s} {rung.key}: {error}")
                        continue
                    loss, auroc = true_scores(fitted.proba(fresh.features), y_fresh)
                    rows.append(
                        {"n_site": n, "seed": s, "step": rung.key, "cv_log_loss": cv["log_loss"],
                         "true_log_loss": loss, "true_auroc": auroc, "chosen": rung.key == ladder.chosen}
                    )  # fmt: skip
            say(f"n_site={n} seed={s}: chose {ladder.chosen} ({ladder.reason}) in {time.perf_counter() - t:.0f} s")
    frame = pd.DataFrame(rows)
    if args.save:
        frame.to_csv(args.save, index=False)
    say()
    say(f"True log-loss on {args.truth_rows:,} fresh {SITE} patients (exact posterior {ceiling[0]:.4f}); * = chosen")
    steps = list(dict.fromkeys(frame["step"]))
    say("| n_site | " + " | ".join(steps) + " | chosen | chosen - best |")
    say("|" + "---|" * (len(steps) + 3))
    for (n, s), group in frame.groupby(["n_site", "seed"]):
        g = group.set_index("step")
        cells = [
            f"{g.loc[k, 'true_log_loss']:.4f}{'*' if g.loc[k, 'chosen'] else ''}" if k in g.index else "" for k in steps
        ]
        chosen = g[g["chosen"]].index[0]
        gap = g.loc[chosen, "true_log_loss"] - g["true_log_loss"].min()
        say(f"| {n} (seed {s}) | " + " | ".join(cells) + f" | {chosen} | {gap:+.4f} |")
    say()
    say(f"True macro AUROC (exact posterior {ceiling[1]:.4f})")
    say("| n_site | " + " | ".join(steps) + " |")
    say("|" + "---|" * (len(steps) + 1))
    for (n, s), group in frame.groupby(["n_site", "seed"]):
        g = group.set_index("step")
        say(
            f"| {n} (seed {s}) | "
            + " | ".join(f"{g.loc[k, 'true_auroc']:.4f}" if k in g.index else "" for k in steps)
            + " |"
        )
    at100 = frame[frame["n_site"] == 100]
    if not at100.empty:
        verdicts = []
        for _, g in at100.groupby("seed"):
            g = g.set_index("step")
            chosen = g[g["chosen"]].index[0]
            c = g.loc[chosen, "true_log_loss"]
            verdicts.append(c < g.loc["as-is", "true_log_loss"] and c < g.loc["d", "true_log_loss"])
        say(
            "\ntarget (n_site=100: chosen beats as-is and site-only on true log-loss): "
            f"{sum(verdicts)}/{len(verdicts)} seeds"
        )
    say(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
