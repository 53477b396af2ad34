"""HistGradientBoostingClassifier vs LGBMClassifier: training and explanation cost.

Run:  .venv/bin/python bench/bench_boosters.py [--big] [--threads N]

Data: simulated ``pain_clinic`` cohorts from :func:`painml.simulator.simulate.simulate`
(n = 10,000 and 100,000; ``--big`` adds 1,000,000, fit only). The label is
``pain_type``; the features are every column except ``patient_id``, ``site``,
``pain_type`` and the ``true_*`` truth columns. Boolean/Int64/Float64 columns
become float64 with NaN for missing; string columns are one-hot encoded with
``pd.get_dummies(dummy_na=True)``. Both libraries get the same float matrix (no
native categoricals: HGB's ``categorical_features`` gives wrong TreeSHAP values).
20 % is held out for test (stratified, seed 0).

Both models get the same budget: 3 classes, 300 trees (no early stopping),
learning rate 0.05, 15 leaves, at least 40 samples per leaf, L2 1.0, default
(2) threads.

Each (model, n) runs in a fresh subprocess (the parent simulates once per n
and hands the matrices over as .npy files), which measures:

1. ``fit_s``        fit wall time (one run, ``time.perf_counter``);
2. ``peak_MB``      peak resident memory during the fit minus resident memory just
   before it (data already loaded). Plain ``ru_maxrss`` before/after cannot be
   reset and the imports (shap, lightgbm, sklearn) leave a freed high-water
   mark that hides the fit's own peak (it read 0 MB at n = 100,000), so on
   Linux the peak is reset with ``/proc/self/clear_refs`` and read from
   ``VmHWM``; ``ru_maxrss`` after - before is the fallback;
3. ``test_log_loss`` on the held-out 20 % (the Bayes ceiling from ``true_p_*``
   is printed for reference);
4. ``one_row_ms_*`` p50 of 300 ``predict_proba`` calls on one NumPy row, with
   default threads and inside ``threadpoolctl.threadpool_limits(1)``; for
   LightGBM also with the ``num_threads=1`` predict parameter;
5. ``shap_rows_per_s`` ``shap.TreeExplainer(model).shap_values(X_test[:2000])``
   and ``additivity_err``, the max |sum(SHAP) + expected_value - raw log-odds|
   (HGB ``_raw_predict``, LightGBM ``predict(raw_score=True)``); for LightGBM
   also the native ``predict(pred_contrib=True)`` rows/s and its additivity.

Timings come from a shared 2-core machine: read them as ratios and re-measure
before quoting absolute numbers. Each worker also records the fit's CPU time
and ``cpu_wait_%``: the share of the fit during which some task on the machine
was waiting for a CPU (Linux PSI ``/proc/pressure/cpu``), so runs disturbed by
other load are visible. Both libraries use OpenMP, and with 2 threads on 2
cores while another process keeps one core busy, their fits slow down by two
orders of magnitude (measured here: 30 LightGBM trees on 8,000 rows 0.26 s with
1 thread vs 52 s with 2; HGB 0.74 s vs 88 s): check ``cpu_wait_%`` before
trusting the default-thread numbers, or pass ``--threads 1``, which runs every
worker with ``OMP_NUM_THREADS=1`` and LightGBM ``n_jobs=1``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MODELS = ("HGB", "LightGBM")
N_TREES = 300
PARAMS = dict(learning_rate=0.05, leaves=15, min_leaf=40, l2=1.0)


# --------------------------------------------------------------------------- data
def build_matrix(n: int, seed: int):
    """Simulate ``n`` patients; return (X, y, class_names, true_p) as float64 / int arrays."""
    import pandas as pd

    from painml.simulator.simulate import simulate

    df = simulate("pain_clinic", n, seed)
    drop = {"patient_id", "site", "pain_type"}
    features = [c for c in df.columns if c not in drop and not c.startswith("true_")]
    blocks, names = [], []
    for col in features:
        s = df[col]
        if pd.api.types.is_string_dtype(s.dtype) or s.dtype == object:
            dummies = pd.get_dummies(s, prefix=col, dummy_na=True, dtype=float)
            blocks.append(dummies.to_numpy(dtype=float))
            names.extend(dummies.columns.astype(str))
        else:
            blocks.append(s.astype("Float64").to_numpy(dtype=float, na_value=np.nan)[:, None])
            names.append(col)
    X = np.ascontiguousarray(np.hstack(blocks))
    classes, y = np.unique(df["pain_type"].to_numpy(dtype=str), return_inverse=True)
    true_p = np.column_stack([df[f"true_p_{c}"].to_numpy(dtype=float) for c in classes])
    return X, y.astype(np.int64), list(classes), true_p, names


def prepare(n: int, seed: int, outdir: Path) -> dict:
    from sklearn.metrics import log_loss
    from sklearn.model_selection import train_test_split

    t0 = time.perf_counter()
    X, y, classes, true_p, names = build_matrix(n, seed)
    idx_train, idx_test = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=0)
    for name, arr in (
        ("X_train", X[idx_train]),
        ("y_train", y[idx_train]),
        ("X_test", X[idx_test]),
        ("y_test", y[idx_test]),
    ):
        np.save(outdir / f"{name}.npy", np.ascontiguousarray(arr))
    bayes = log_loss(y[idx_test], true_p[idx_test], labels=range(len(classes)))
    return dict(
        n=n,
        n_features=X.shape[1],
        classes=classes,
        bayes_log_loss=float(bayes),
        prep_s=time.perf_counter() - t0,
    )


# --------------------------------------------------------------------------- worker
def make_model(kind: str, threads: int | None = None):
    if kind == "HGB":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(
            max_iter=N_TREES,
            early_stopping=False,
            learning_rate=PARAMS["learning_rate"],
            max_leaf_nodes=PARAMS["leaves"],
            min_samples_leaf=PARAMS["min_leaf"],
            l2_regularization=PARAMS["l2"],
            random_state=0,
        )
    from lightgbm import LGBMClassifier

    return LGBMClassifier(
        n_estimators=N_TREES,
        learning_rate=PARAMS["learning_rate"],
        num_leaves=PARAMS["leaves"],
        min_child_samples=PARAMS["min_leaf"],
        reg_lambda=PARAMS["l2"],
        n_jobs=threads or 2,
        verbose=-1,
        random_state=0,
    )


def raw_output(kind: str, model, X: np.ndarray) -> np.ndarray:
    if kind == "HGB":
        return np.asarray(model._raw_predict(X))
    return np.asarray(model.predict(X, raw_score=True))


def one_row_p50_ms(fn, X: np.ndarray, calls: int) -> float:
    rows = [X[i : i + 1] for i in range(min(calls, len(X)))]
    for r in rows[:10]:  # warm-up
        fn(r)
    times = []
    for i in range(calls):
        r = rows[i % len(rows)]
        t0 = time.perf_counter()
        fn(r)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def _proc_status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux >= 4.0)
        return True
    except OSError:
        return False


def _cpu_stall_us() -> int | None:
    try:
        some = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        return int(some.rsplit("total=", 1)[1])
    except (OSError, IndexError, ValueError):
        return None


def worker(kind: str, datadir: Path, fit_only: bool, calls: int, shap_rows: int, threads: int | None) -> dict:
    import gc
    import resource

    import lightgbm  # noqa: F401  (imports before the baseline, so they do not count)
    import shap
    import sklearn.ensemble  # noqa: F401
    from sklearn.metrics import log_loss
    from threadpoolctl import threadpool_limits

    X_train = np.load(datadir / "X_train.npy")
    y_train = np.load(datadir / "y_train.npy")
    X_test = np.load(datadir / "X_test.npy")
    y_test = np.load(datadir / "y_test.npy")
    model = make_model(kind, threads)
    gc.collect()

    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    hwm_reset = _reset_peak_rss()
    rss_before = _proc_status_kb("VmRSS")
    stall0, cpu0 = _cpu_stall_us(), time.process_time()
    t0 = time.perf_counter()
    model.fit(X_train, y_train)
    fit_s = time.perf_counter() - t0
    fit_cpu_s = time.process_time() - cpu0
    stall1 = _cpu_stall_us()
    maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    hwm_after = _proc_status_kb("VmHWM")
    if hwm_reset and rss_before is not None and hwm_after is not None:
        peak_kb, peak_method = hwm_after - rss_before, "VmHWM-VmRSS"
    else:
        peak_kb, peak_method = maxrss_after - maxrss_before, "ru_maxrss"
    out = dict(
        model=kind,
        fit_s=fit_s,
        fit_cpu_s=fit_cpu_s,
        cpu_wait_pct=None if stall0 is None else 100 * (stall1 - stall0) / 1e6 / fit_s,
        peak_MB=peak_kb / 1024,
        peak_method=peak_method,
        ru_maxrss_delta_MB=(maxrss_after - maxrss_before) / 1024,
        baseline_MB=(rss_before or maxrss_before) / 1024,
        test_log_loss=float(log_loss(y_test, model.predict_proba(X_test), labels=[0, 1, 2])),
    )
    if fit_only:
        return out

    # one-row latency
    out["one_row_ms_default"] = one_row_p50_ms(model.predict_proba, X_test, calls)
    with threadpool_limits(1):
        out["one_row_ms_1thread"] = one_row_p50_ms(model.predict_proba, X_test, calls)
    if kind == "LightGBM":
        out["one_row_ms_num_threads1"] = one_row_p50_ms(lambda r: model.predict_proba(r, num_threads=1), X_test, calls)

    # TreeSHAP
    Xs = X_test[:shap_rows]
    raw = raw_output(kind, model, Xs)
    t0 = time.perf_counter()
    explainer = shap.TreeExplainer(model)
    out["explainer_init_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    sv = explainer.shap_values(Xs, check_additivity=False)
    shap_s = time.perf_counter() - t0
    sv = np.stack(sv, axis=-1) if isinstance(sv, list) else np.asarray(sv)  # (rows, feats, classes)
    total = sv.sum(axis=1) + np.asarray(explainer.expected_value).reshape(1, -1)
    out["shap_rows"] = len(Xs)
    out["shap_shape"] = list(sv.shape)
    out["shap_rows_per_s"] = len(Xs) / shap_s
    out["additivity_err"] = float(np.max(np.abs(total - raw)))

    if kind == "LightGBM":
        t0 = time.perf_counter()
        contrib = model.predict(Xs, pred_contrib=True)
        contrib_s = time.perf_counter() - t0
        contrib = np.asarray(contrib).reshape(len(Xs), raw.shape[1], -1)  # (rows, classes, feats+1)
        out["contrib_rows_per_s"] = len(Xs) / contrib_s
        out["contrib_additivity_err"] = float(np.max(np.abs(contrib.sum(axis=2) - raw)))
        # native contributions and TreeSHAP should agree value by value
        out["contrib_vs_shap_max_diff"] = float(np.max(np.abs(contrib[:, :, :-1].transpose(0, 2, 1) - sv)))
    return out


def run_worker(kind: str, datadir: Path, fit_only: bool, args) -> dict:
    cmd = (
        [
            sys.executable,
            os.path.abspath(__file__),
            "--worker",
            kind,
            "--datadir",
            str(datadir),
            "--calls",
            str(args.calls),
            "--shap-rows",
            str(args.shap_rows),
        ]
        + (["--fit-only"] if fit_only else [])
        + (["--threads", str(args.threads)] if args.threads else [])
    )
    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"worker {kind} failed (exit {proc.returncode})")
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


# --------------------------------------------------------------------------- report
def fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def print_table(rows: list[dict]) -> None:
    cols = [
        ("model", "<9", "s"),
        ("n", ">9", ","),
        ("fit_s", ">7", ".2f"),
        ("peak_MB", ">8", ".0f"),
        ("test_log_loss", ">13", ".4f"),
        ("one_row_ms_default", ">18", ".3f"),
        ("one_row_ms_1thread", ">18", ".3f"),
        ("shap_rows_per_s", ">15", ".0f"),
        ("additivity_err", ">14", ".1e"),
    ]
    print("  ".join(format(c, a) for c, a, _ in cols))
    for r in rows:
        print("  ".join(format(fmt(r.get(c), f), a) for c, a, f in cols))


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Benchmark HistGradientBoostingClassifier vs LGBMClassifier (fit, one-row predict, TreeSHAP)."
    )
    parser.add_argument("--big", action="store_true", help="also fit on n = 1,000,000 (fit only; slow)")
    parser.add_argument("--calls", type=int, default=300, help="one-row predict calls (p50)")
    parser.add_argument("--shap-rows", type=int, default=2000, help="rows explained with TreeSHAP")
    parser.add_argument("--seed", type=int, default=1, help="simulation seed")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="OpenMP threads for both libraries (default: library defaults, LightGBM n_jobs=2)",
    )
    parser.add_argument("--worker", choices=MODELS, help=argparse.SUPPRESS)
    parser.add_argument("--datadir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--fit-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        res = worker(args.worker, args.datadir, args.fit_only, args.calls, args.shap_rows, args.threads)
        print("RESULT " + json.dumps(res))
        return

    sizes = [(10_000, False), (100_000, False)] + ([(1_000_000, True)] if args.big else [])
    rows, meta = [], []
    t_start = time.perf_counter()
    for n, fit_only in sizes:
        with tempfile.TemporaryDirectory(prefix="bench_boosters_") as tmp:
            info = prepare(n, args.seed, Path(tmp))
            meta.append(info)
            print(
                f"[n={n:,}] {info['n_features']} features, classes {[str(c) for c in info['classes']]}, "
                f"data ready in {info['prep_s']:.1f} s",
                flush=True,
            )
            for kind in MODELS:
                res = run_worker(kind, Path(tmp), fit_only, args)
                res["n"] = n
                rows.append(res)
                print(f"  {kind:<8} done: fit {res['fit_s']:.2f} s", flush=True)

    print()
    print(
        f"HGB vs LightGBM, {N_TREES} trees x 3 classes, lr {PARAMS['learning_rate']}, "
        f"{PARAMS['leaves']} leaves, min leaf {PARAMS['min_leaf']}, l2 {PARAMS['l2']}; "
        f"{os.cpu_count()} CPUs, threads {args.threads or 'default'}; SHAP on {args.shap_rows} test rows; "
        f"one-row p50 of {args.calls} calls"
    )
    print_table(rows)

    print()
    print(
        "Fit diagnostics (fit CPU s, cpu_wait_% = share of the fit with tasks waiting for a CPU, "
        "resident MB before fit, ru_maxrss delta MB, peak method):"
    )
    for r in rows:
        wait = "-" if r["cpu_wait_pct"] is None else f"{r['cpu_wait_pct']:.0f}%"
        print(
            f"  {r['model']:<8} n={r['n']:>9,}  cpu {r['fit_cpu_s']:7.1f} s  wait {wait:>4}  "
            f"base {r['baseline_MB']:5.0f} MB  ru_maxrss delta {r['ru_maxrss_delta_MB']:5.0f} MB  ({r['peak_method']})"
        )
    busy = [r for r in rows if (r["cpu_wait_pct"] or 0) > 20]
    if busy:
        advice = (
            "1-thread timings are stretched by time-sharing, ratios stay usable"
            if args.threads == 1
            else "multi-threaded OpenMP timings collapse under such load: re-run on a quiet machine or with --threads 1"
        )
        print(
            "  WARNING: other load competed for the CPUs during "
            + ", ".join(f"{r['model']} n={r['n']:,}" for r in busy)
            + "; "
            + advice
        )
    load = Path("/proc/loadavg")
    print(f"load average at end: {load.read_text().split()[:3] if load.exists() else '-'}")

    print()
    print(
        "LightGBM extras (n, one_row_ms with predict num_threads=1, native pred_contrib rows/s, "
        "its additivity err, max |pred_contrib - TreeSHAP|, TreeExplainer init s):"
    )
    for r in rows:
        if r["model"] == "LightGBM" and "contrib_rows_per_s" in r:
            print(
                f"  n={r['n']:>9,}  {r['one_row_ms_num_threads1']:.3f} ms  "
                f"{r['contrib_rows_per_s']:.0f} rows/s  {r['contrib_additivity_err']:.1e}  "
                f"{r['contrib_vs_shap_max_diff']:.1e}  {r['explainer_init_s']:.3f} s"
            )
    print(
        "HGB TreeExplainer init s: "
        + ", ".join(
            f"n={r['n']:,}: {r['explainer_init_s']:.3f}"
            for r in rows
            if r["model"] == "HGB" and "explainer_init_s" in r
        )
    )
    print(
        "Bayes-ceiling test log-loss (true_p_*): " + ", ".join(f"n={m['n']:,}: {m['bayes_log_loss']:.4f}" for m in meta)
    )

    print()
    print("Ratios LightGBM vs HGB (>1 means LightGBM is faster):")
    by = {(r["model"], r["n"]): r for r in rows}
    for n, fit_only in sizes:
        h, l = by[("HGB", n)], by[("LightGBM", n)]
        parts = [f"fit {h['fit_s'] / l['fit_s']:.2f}x"]
        if not fit_only:
            parts += [
                f"SHAP {l['shap_rows_per_s'] / h['shap_rows_per_s']:.2f}x",
                f"SHAP (LightGBM native pred_contrib) {l['contrib_rows_per_s'] / h['shap_rows_per_s']:.2f}x",
                f"one-row default {h['one_row_ms_default'] / l['one_row_ms_default']:.2f}x",
                f"one-row 1 thread {h['one_row_ms_1thread'] / l['one_row_ms_1thread']:.2f}x",
            ]
        parts.append(f"log-loss diff (LGBM - HGB) {l['test_log_loss'] - h['test_log_loss']:+.4f}")
        print(f"  n={n:>9,}: " + ", ".join(parts))
    print(f"\ntotal wall time {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
