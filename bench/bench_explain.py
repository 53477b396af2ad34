"""Cost of explanations: 10,000 rows explained by the boosted and the logistic model.

Run: .venv/bin/python bench/bench_explain.py [--n 20000] [--rows 10000] [--repeat 3]

Trains both families on the default config's cohort (``--n`` patients,
20,000 by default: the model a reviewer actually gets), then explains
``--rows`` fresh simulated patients (features already validated) with:

- boosted: ``shap.TreeExplainer`` on the encoded matrix (all classes);
  LightGBM's native ``pred_contrib`` (all classes, :func:`painml.explain.shap.shap_values`);
  :func:`painml.explain.shap.top_reasons` (the serving path: only the predicted
  class's trees, folded, labelled, 3 reasons per row);
- logistic: ``shap.LinearExplainer`` (all classes), the coefficient form
  (:func:`painml.explain.shap.shap_values`) and :func:`painml.explain.shap.top_reasons`;
- one row through ``top_reasons`` (p50 of 50 calls), what one HTTP request pays.

Every timing includes the feature pipeline (the ColumnTransformer) except
the shap explainers, which get the encoded matrix. The best of ``--repeat``
runs is reported; figures depend on the machine, so read them as ratios.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def best_of(repeat: int, fn) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="training cohort (default config size)")
    parser.add_argument("--rows", type=int, default=10_000, help="rows to explain")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import shap

    from painml.config import load_config
    from painml.explain import shap as explain
    from painml.model.dataset import load_dataset, split_rows
    from painml.model.fit import build_bundle, fit_family
    from painml.record.schema import load_records
    from painml.simulator.simulate import simulate

    cfg = load_config(REPO / "configs" / "default.yaml")
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"n": args.n})})
    data = load_dataset(cfg)
    rows = split_rows(data.y, cfg)
    bundles = {}
    for model_cfg in cfg.models:
        start = time.perf_counter()
        estimator, _ = fit_family(model_cfg, cfg, data.X, data.y, rows)
        bundles[model_cfg.family] = build_bundle(estimator, model_cfg.family, cfg, data, rows)
        print(f"fitted {model_cfg.family} on {len(rows['train']):,} rows in {time.perf_counter() - start:.1f} s")
    records = load_records(simulate(cfg.data.preset, args.rows, seed=cfg.data.seed + 1))
    X, frame = records.features, records.frame

    results: list[tuple[str, str, float]] = []

    def record(family: str, method: str, seconds: float, n: int = args.rows) -> None:
        results.append((family, method, seconds))
        print(f"  {family:9s} {method:58s} {seconds:8.2f} s  {n / seconds:10,.0f} rows/s", flush=True)

    gbm = bundles["gbm"]
    model = gbm.pipeline.named_steps["model"]
    encoded = gbm.pipeline.named_steps["features"].transform(X)
    print(
        f"boosted model: {model.booster_.current_iteration()} iterations x {model.booster_.num_model_per_iteration()}"
        f" classes = {model.booster_.num_trees()} trees, {encoded.shape[1]} encoded features"
    )
    explainer = shap.TreeExplainer(model)
    seconds, tree_values = best_of(args.repeat, lambda: np.asarray(explainer.shap_values(encoded)))
    record("gbm", "shap.TreeExplainer, all classes (encoded matrix)", seconds)
    seconds, raw = best_of(args.repeat, lambda: explain.shap_values(gbm, X))
    record("gbm", "native pred_contrib, all classes (explain.shap_values)", seconds)
    order = [list(model.classes_).index(c) for c in gbm.classes]
    diff = np.abs(tree_values[:, :, order] * gbm.temperature_factor - raw.values).max()
    print(f"  TreeExplainer vs pred_contrib: max |difference| {diff:.1e} log-odds")
    seconds, _ = best_of(args.repeat, lambda: explain.top_reasons(gbm, X, frame, k=3))
    record("gbm", "top_reasons, predicted class, 3 reasons (serving path)", seconds)

    logistic = bundles["logistic"]
    lr = logistic.pipeline.named_steps["model"]
    lr_encoded = logistic.pipeline.named_steps["features"].transform(X)
    background = logistic.pipeline.named_steps["features"].transform(data.X.iloc[rows["train"][:1000]])
    linear = shap.LinearExplainer(lr, background)
    seconds, _ = best_of(args.repeat, lambda: linear.shap_values(lr_encoded))
    record("logistic", "shap.LinearExplainer, all classes (encoded matrix)", seconds)
    seconds, _ = best_of(args.repeat, lambda: explain.shap_values(logistic, X))
    record("logistic", "coefficients, all classes (explain.shap_values)", seconds)
    seconds, _ = best_of(args.repeat, lambda: explain.top_reasons(logistic, X, frame, k=3))
    record("logistic", "top_reasons, predicted class, 3 reasons", seconds)

    for family, bundle in bundles.items():
        times = []
        for i in range(50):
            start = time.perf_counter()
            explain.top_reasons(bundle, X.iloc[i : i + 1], frame.iloc[i : i + 1], k=3)
            times.append(time.perf_counter() - start)
        print(
            f"  {family:9s} one row through top_reasons: p50 {np.median(times) * 1000:.1f} ms, "
            f"p90 {np.quantile(times, 0.9) * 1000:.1f} ms"
        )


if __name__ == "__main__":
    main()
