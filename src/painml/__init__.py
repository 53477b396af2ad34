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
