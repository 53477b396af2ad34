"""painml.model.compiled.trees against LightGBM on the project's own model: margins, one-row latency, SHAP, build cost.

Run: .venv/bin/python bench/bench_trees.py [--rows 50000] [--shap-rows 10000] [--repeat 5]
         [--model-uri models:/NAME@ALIAS] [--tracking-uri sqlite:///mlflow.db] [--no-compile]

Model: ``--model-uri`` (default: the predictor's default, the registered
champion) in ``--tracking-uri`` (default ./mlflow.db) when it loads, else the
default config's boosted model fitted here on its simulated cohort (as
bench/bench_explain.py does; about 30 s).
Rows: a fresh simulated ``pain_clinic`` cohort (seed 11) encoded by the model's
own fitted ColumnTransformer, i.e. exactly what the booster sees in serving.

Measured (best of ``--repeat`` runs; one-row figures are medians over rows):

- raw margins of ``--rows`` rows, 1 and 2 threads, vs ``Booster.predict(raw_score=True)``
  with ``num_threads`` 1 and 2 (checked bit-identical);
- one row: ``raw_scores`` vs LightGBM's ``LGBM_BoosterPredictForMatSingleRowFast``
  (what painml's single-record path used), and vs ``Booster.predict``;
- SHAP values of each row's predicted class for ``--shap-rows`` rows vs
  ``pred_contrib`` on per-class boosters (:func:`painml.explain.shap.class_boosters`,
  the rows of each class through its own booster), and one row of it vs the
  single-row fast path on the class booster (checked to 1e-10);
- the build: ``from_booster``, ``from_arrays``, the SHAP tables (built on first
  use) and their memory; and, in fresh interpreters with an empty numba cache
  and then a warm one, import + build + first calls (compile vs cached load).

The machine has 2 cores and may be shared with other work: read figures as
ratios, and rerun when the load average printed at the start and end differs.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CONTRIB, RAW_SCORE = 3, 1  # LightGBM's C_API_PREDICT_* codes


def best(repeat: int, fn: Callable[[], Any]) -> float:
    """Fastest of ``repeat`` runs, seconds: the least disturbed by other work on the machine."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def per_row_median(rows: int, fn: Callable[[int], Any]) -> float:
    """Median seconds of fn(i) over rows i, after one warm-up call."""
    fn(0)
    times = np.empty(rows)
    for i in range(rows):
        start = time.perf_counter()
        fn(i)
        times[i] = time.perf_counter() - start
    return float(np.median(times))


class SingleRow:
    """LightGBM's one-row C entry point for one booster and prediction kind (one thread)."""

    def __init__(self, booster: Any, kind: int, n_features: int) -> None:
        from lightgbm.basic import _LIB, _c_str, _safe_call

        self._booster, self._lib, self._check = booster, _LIB, _safe_call
        n_out = booster.num_model_per_iteration() * ((n_features + 1) if kind == CONTRIB else 1)
        self.out = np.empty(n_out)
        self.n_out = ctypes.c_int64()
        self.handle = ctypes.c_void_p()
        iterations = booster.best_iteration if booster.best_iteration > 0 else -1
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(kind),
                ctypes.c_int(0),
                ctypes.c_int(iterations),
                ctypes.c_int(1),
                ctypes.c_int32(n_features),
                _c_str("num_threads=1"),
                ctypes.byref(self.handle),
            )
        )
        self._out_ptr = self.out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        weakref.finalize(self, _LIB.LGBM_FastConfigFree, self.handle)

    def predict(self, row: np.ndarray) -> np.ndarray:
        row = np.ascontiguousarray(row, dtype=np.float64)
        self._check(
            self._lib.LGBM_BoosterPredictForMatSingleRowFast(
                self.handle, row.ctypes.data_as(ctypes.c_void_p), ctypes.byref(self.n_out), self._out_ptr
            )
        )
        return self.out[: self.n_out.value].copy()


def load_model(uri: str | None, tracking_uri: str) -> tuple[Any, Any, str]:
    """(features transformer, booster, description): the champion, else the default config's gbm fitted here."""
    from painml.serving.predictor import ModelNotFound, Predictor

    try:
        predictor = Predictor.from_uri(uri, tracking_uri)
        pipeline = predictor.bundle.pipeline
        return (
            pipeline.named_steps["features"],
            pipeline.named_steps["model"].booster_,
            f"registered champion {predictor.name} v{predictor.version}",
        )
    except (ModelNotFound, KeyError, AttributeError) as error:
        print(f"no registered champion ({error}); fitting the default config's boosted model")
    from painml.config import load_config
    from painml.model.dataset import load_dataset, split_rows
    from painml.model.fit import fit_family

    cfg = load_config(REPO / "configs" / "default.yaml")
    data = load_dataset(cfg)
    rows = split_rows(data.y, cfg)
    model_cfg = next(m for m in cfg.models if m.family == "gbm")
    estimator, _ = fit_family(model_cfg, cfg, data.X, data.y, rows)
    pipeline = getattr(estimator, "calibrated_classifiers_", [None])[0]
    pipeline = estimator if pipeline is None else pipeline.estimator
    pipeline = getattr(pipeline, "estimator", pipeline)
    return pipeline.named_steps["features"], pipeline.named_steps["model"].booster_, "default config, fitted here"


def compile_and_load_times(model_path: Path, x_path: Path) -> tuple[float, float]:
    """Seconds for import + from_arrays + first raw_scores and contributions, cold numba cache then warm."""
    code = (
        "import numpy as np\n"
        "from painml.model.compiled.trees import TreeEnsemble\n"
        f"e = TreeEnsemble.from_arrays(np.load({str(model_path)!r}))\n"
        f"X = np.load({str(x_path)!r})\n"
        "e.raw_scores(X); e.raw_scores(X[:1]); e.contributions(X, np.zeros(len(X), int))\n"
    )
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        times = []
        for _ in range(2):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, env=env)
            times.append(time.perf_counter() - start)
    return times[0], times[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=50_000, help="rows for batch margins")
    parser.add_argument("--shap-rows", type=int, default=10_000, help="rows for batch SHAP values")
    parser.add_argument("--one-row", type=int, default=2_000, help="rows timed one at a time")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--model-uri", default=None, help="model to load (default: the predictor's default URI)")
    parser.add_argument("--tracking-uri", default=f"sqlite:///{REPO / 'mlflow.db'}")
    parser.add_argument("--no-compile", action="store_true", help="skip the fresh-interpreter compile timing")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")

    from painml.explain.shap import class_boosters
    from painml.model.compiled.trees import TreeEnsemble
    from painml.record.schema import load_records
    from painml.simulator.simulate import simulate

    features, booster, description = load_model(args.model_uri, args.tracking_uri)
    n = max(args.rows, args.shap_rows, args.one_row)
    records = load_records(simulate("pain_clinic", n, seed=11))
    X = np.ascontiguousarray(features.transform(records.features), dtype=np.float64)
    k, m = booster.num_model_per_iteration(), X.shape[1]
    print(
        f"model: {description}; {booster.num_trees()} trees ({booster.current_iteration()} iterations x {k}"
        f" classes), {m} features; rows: {len(X):,} simulated, {np.isnan(X).mean():.0%} of values NaN\n"
    )

    def line(what: str, ours: float, theirs: float | None = None, unit: str = "us/row") -> None:
        ratio = f"   {theirs / ours:5.1f}x faster" if theirs else ""
        print(f"  {what:52s} {ours * 1e6:9.2f} {unit}{ratio}")

    # -- build
    start = time.perf_counter()
    ens = TreeEnsemble.from_booster(booster)
    built = time.perf_counter() - start
    arrays = ens.arrays()
    stored = sum(a.nbytes for a in arrays.values())
    loaded = best(args.repeat, lambda: TreeEnsemble.from_arrays(arrays))
    shap_build = best(args.repeat, lambda: TreeEnsemble.from_arrays(arrays).table_info())
    info = ens.table_info()
    print("build")
    print(f"  {'from_booster (model_to_string, parse, layout)':52s} {built * 1e3:9.2f} ms")
    print(f"  {f'from_arrays ({stored / 1e6:.2f} MB of arrays)':52s} {loaded * 1e3:9.2f} ms")
    print(f"  {'from_arrays + SHAP tables (first contributions)':52s} {shap_build * 1e3:9.2f} ms")
    print(
        f"  SHAP tables: {info['table_bytes'] / 1e6:.2f} MB, {info['tabulated_leaves']:,} of {info['leaves']:,}"
        f" leaves tabulated (budget {ens.table_budget / 2**20:.0f} MiB)\n"
    )

    # -- raw margins, batch
    Xb = X[: args.rows]
    reference = booster.predict(Xb, raw_score=True, num_threads=1)
    assert np.array_equal(ens.raw_scores(Xb), reference), "margins differ from LightGBM"
    assert np.array_equal(ens.raw_scores(Xb, threads=2), reference), "margins differ with 2 threads"
    lgb1 = best(args.repeat, lambda: booster.predict(Xb, raw_score=True, num_threads=1)) / len(Xb)
    lgb2 = best(args.repeat, lambda: booster.predict(Xb, raw_score=True, num_threads=2)) / len(Xb)
    ours1 = best(args.repeat, lambda: ens.raw_scores(Xb)) / len(Xb)
    ours2 = best(args.repeat, lambda: ens.raw_scores(Xb, threads=2)) / len(Xb)
    print(f"raw margins, {len(Xb):,} rows (bit-identical to Booster.predict)")
    line("LightGBM Booster.predict, 1 thread", lgb1)
    line("LightGBM Booster.predict, 2 threads", lgb2)
    line("trees.raw_scores, 1 thread", ours1, lgb1)
    line("trees.raw_scores, 2 threads", ours2, lgb2)

    # -- one row
    fast = SingleRow(booster, RAW_SCORE, m)
    rows = args.one_row
    for i in range(100):
        assert np.array_equal(ens.raw_scores(X[i : i + 1])[0], fast.predict(X[i]))
    lgb_one = per_row_median(rows, lambda i: fast.predict(X[i]))
    lgb_predict_one = per_row_median(
        min(rows, 500), lambda i: booster.predict(X[i : i + 1], raw_score=True, num_threads=1)
    )
    ours_one = per_row_median(rows, lambda i: ens.raw_scores(X[i : i + 1]))
    print("\none row, raw margins (median over rows, Python call included)")
    line("LightGBM Booster.predict", lgb_predict_one, unit="us")
    line("LightGBM ...SingleRowFast (ctypes)", lgb_one, unit="us")
    line("trees.raw_scores", ours_one, lgb_one, unit="us")

    # -- SHAP of the predicted class
    Xs = X[: args.shap_rows]
    targets = ens.raw_scores(Xs).argmax(axis=1)
    per_class = class_boosters(booster)

    def lightgbm_contrib(threads: int) -> np.ndarray:
        out = np.empty((len(Xs), m))
        for c in range(k):
            idx = np.flatnonzero(targets == c)
            if len(idx):
                out[idx] = per_class[c].predict(Xs[idx], pred_contrib=True, num_threads=threads)[:, :m]
        return out

    expected = lightgbm_contrib(1)
    ours = ens.contributions(Xs, targets)
    error = float(np.abs(ours - expected).max())
    assert error <= 1e-10 * max(1.0, float(np.abs(expected).max())), error
    assert np.array_equal(ens.contributions(Xs, targets, threads=2), ours)
    shap_rows = min(len(Xs), 2_000)
    lgb_c1 = best(max(1, args.repeat // 2), lambda: lightgbm_contrib(1)) / len(Xs)
    lgb_all = best(1, lambda: booster.predict(Xs[:shap_rows], pred_contrib=True, num_threads=1)) / shap_rows
    ours_c1 = best(args.repeat, lambda: ens.contributions(Xs, targets)) / len(Xs)
    ours_c2 = best(args.repeat, lambda: ens.contributions(Xs, targets, threads=2)) / len(Xs)
    print(f"\nSHAP values of the predicted class, {len(Xs):,} rows (max |difference| {error:.1e})")
    line("LightGBM pred_contrib, every class, 1 thread", lgb_all)
    line("LightGBM pred_contrib, per-class boosters, 1 thread", lgb_c1)
    line("trees.contributions, 1 thread", ours_c1, lgb_c1)
    line("trees.contributions, 2 threads", ours_c2, lgb_c1)

    fast_contrib = [SingleRow(b, CONTRIB, m) for b in per_class]
    lgb_c_one = per_row_median(rows, lambda i: fast_contrib[targets[i]].predict(Xs[i]))
    ours_c_one = per_row_median(rows, lambda i: ens.contributions(Xs[i : i + 1], targets[i : i + 1]))
    print("\none row, SHAP values of the predicted class (median over rows)")
    line("LightGBM ...SingleRowFast, class booster", lgb_c_one, unit="us")
    line("trees.contributions", ours_c_one, lgb_c_one, unit="us")

    if not args.no_compile:
        with tempfile.TemporaryDirectory() as folder:
            model_path, x_path = Path(folder) / "trees.npz", Path(folder) / "X.npy"
            np.savez(model_path, **arrays)
            np.save(x_path, X[:100])
            cold, warm = compile_and_load_times(model_path, x_path)
        print("\nfresh interpreter: import, from_arrays, first raw_scores (100 rows, 1 row) and contributions")
        print(f"  {'empty numba cache (compiles every kernel)':52s} {cold:9.2f} s")
        print(f"  {'warm numba cache (loads the compiled kernels)':52s} {warm:9.2f} s")
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
