"""Training cost and quality against the exact posterior.

Run: .venv/bin/python bench/bench_train.py [--sizes 10000 100000 1000000] [--quality-rows 20000]

1. For each size and family: wall time to fit (features, model, early
   stopping, calibration) and the peak memory of a fresh process doing it.
2. Quality at ``--quality-rows`` training rows: each family's test log-loss
   and macro-F1 against the exact posterior's on the same 10,000 test rows
   (targets: log-loss within 2% of the ceiling, macro-F1 within 0.02).
3. The default config end to end (``painml train``, MLflow included) in a
   temporary store (target: under 2 minutes).

Each measurement runs in its own subprocess so peaks and thread pools do not
mix; figures depend on the machine, so read them as ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def fit_once(family: str, n_train: int, test_rows: int) -> dict:
    """Runs inside a subprocess: fit one family on n_train rows, score the test rows."""
    from painml.config import load_config
    from painml.evaluation.metrics import classification_metrics, oracle_metrics
    from painml.model.dataset import load_dataset, split_rows
    from painml.model.fit import build_bundle, fit_family
    from painml.serving.predictor import Predictor

    cfg = load_config(REPO / "configs" / "default.yaml")
    split = cfg.split
    n = int(round(n_train / (1 - split.test_size - split.calibration_size)))
    test_size = min(0.5, max(split.test_size, test_rows / n)) if test_rows else split.test_size
    n = int(round(n_train / (1 - test_size - split.calibration_size)))
    cfg = cfg.model_copy(
        update={
            "data": cfg.data.model_copy(update={"n": n}),
            "split": split.model_copy(update={"test_size": test_size}),
            "models": tuple(m for m in cfg.models if m.family == family),
        }
    )
    data = load_dataset(cfg)
    rows = split_rows(data.y, cfg)
    start = time.perf_counter()
    estimator, _ = fit_family(cfg.models[0], cfg, data.X, data.y, rows)
    bundle = build_bundle(estimator, family, cfg, data, rows)
    fit_s = time.perf_counter() - start
    test = rows["test"]
    proba = Predictor(bundle).predict_proba(data.X.iloc[test])
    metrics = classification_metrics(data.y[test], proba, list(cfg.classes))
    oracle = oracle_metrics(data.records.truth.iloc[test], data.y[test], list(cfg.classes))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "family": family,
        "train_rows": len(rows["train"]),
        "test_rows": len(test),
        "fit_s": fit_s,
        "peak_mb": peak_mb,
        "log_loss": metrics["test_log_loss"],
        "macro_f1": metrics["test_macro_f1"],
        "oracle_log_loss": oracle["oracle_log_loss"],
        "oracle_macro_f1": oracle["oracle_macro_f1"],
    }


def in_subprocess(family: str, n_train: int, test_rows: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", family, str(n_train), str(test_rows)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def end_to_end() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, str(REPO / "train.py"), "--config", str(REPO / "configs" / "default.yaml")],
            cwd=tmp,
            check=True,
            capture_output=True,
            env=os.environ | {"MLFLOW_TRACKING_URI": ""},
        )
        return time.perf_counter() - start


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(fit_once(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--quality-rows", type=int, default=20_000)
    parser.add_argument("--skip-end-to-end", action="store_true")
    args = parser.parse_args()

    print(f"{'family':9} {'train rows':>11} {'fit s':>8} {'peak MB':>8} {'log-loss':>9} {'macro-F1':>9}")
    for n in args.sizes:
        for family in ("gbm", "logistic"):
            r = in_subprocess(family, n, 0)
            print(
                f"{family:9} {r['train_rows']:>11,} {r['fit_s']:>8.1f} {r['peak_mb']:>8.0f} "
                f"{r['log_loss']:>9.4f} {r['macro_f1']:>9.4f}"
            )
    print(f"\nquality at {args.quality_rows:,} training rows, 10,000 test rows, against the exact posterior")
    for family in ("gbm", "logistic"):
        r = in_subprocess(family, args.quality_rows, 10_000)
        gap = r["log_loss"] / r["oracle_log_loss"] - 1
        f1_gap = r["oracle_macro_f1"] - r["macro_f1"]
        print(
            f"{family:9} log-loss {r['log_loss']:.4f} vs ceiling {r['oracle_log_loss']:.4f} (+{gap:.1%}; "
            f"target < 2%: {'met' if gap < 0.02 else 'missed'}); macro-F1 {r['macro_f1']:.4f} vs "
            f"{r['oracle_macro_f1']:.4f} ({-f1_gap:+.4f}; target within 0.02: {'met' if f1_gap <= 0.02 else 'missed'})"
        )
    if not args.skip_end_to_end:
        seconds = end_to_end()
        print(
            f"\ndefault config end to end (train.py, MLflow included): {seconds:.1f} s "
            f"(target < 120 s: {'met' if seconds < 120 else 'missed'})"
        )


if __name__ == "__main__":
    main()
