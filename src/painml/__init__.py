"""painml: classify chronic pain as neuropathic, nociceptive or mixed."""

import os

# LightGBM's OpenMP threads spin while they wait by default; on a two-core machine
# with anything else running that made a fit 20-100x slower (bench/bench_train.py).
# Sleeping waits cost nothing measurable on a quiet machine. Must be set before
# lightgbm is first imported; an explicit setting by the user wins. (Serving a
# compiled model loads no OpenMP runtime at all: painml.model.compiled.trees uses its own threads.)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

DEFAULT_MODEL_NAME = "painml-pain-type"
"""The registered model training writes to and serving reads, unless a config or an option names another."""

# The Python API, each name imported on first use: ``import painml`` stays light, so scoring one
# patient never pays for training, reporting or Spark.
_API = {
    "Predictor": "painml.serving.predictor",
    "SchemaError": "painml.record.problems",
    "load_records": "painml.record.schema",
    "simulate": "painml.simulator.simulate",
    "write_cohort": "painml.simulator.simulate",
    "load_config": "painml.config",
    "run_training": "painml.jobs.train",
    "score_file": "painml.serving.batch",
}

__all__ = ["DEFAULT_MODEL_NAME", "__version__", *_API]


def __getattr__(name: str):
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'painml' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
