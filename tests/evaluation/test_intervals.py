"""Bootstrap intervals: the point estimates are the metrics themselves, the intervals hold them."""

from __future__ import annotations

import numpy as np
import pytest

from painml.evaluation.intervals import METRICS, bootstrap_intervals
from painml.evaluation.metrics import classification_metrics

CLASSES = ["nociceptive", "neuropathic", "mixed"]


def _proba(seed: int, y: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.ones(3), len(y))
    proba[np.arange(len(y)), y] += 0.5
    return proba / proba.sum(axis=1, keepdims=True)


def test_estimates_are_the_metrics_and_inside_their_intervals():
    y = np.random.default_rng(0).integers(0, 3, 400)
    proba = _proba(1, y)
    ci = bootstrap_intervals(y, proba, reps=300).set_index("metric")
    reference = classification_metrics(np.array(CLASSES)[y], proba, CLASSES, prefix="")
    for metric in METRICS:
        assert ci.loc[metric, "estimate"] == pytest.approx(reference[metric], rel=1e-9), metric
        assert ci.loc[metric, "low"] < ci.loc[metric, "estimate"] < ci.loc[metric, "high"], metric


def test_repeats_are_averaged():
    y = np.random.default_rng(0).integers(0, 3, 300)
    first, second = _proba(1, y), _proba(2, y)
    both = bootstrap_intervals(y, [first, second], reps=200).set_index("metric")
    one = bootstrap_intervals(y, first, reps=200).set_index("metric")
    two = bootstrap_intervals(y, second, reps=200).set_index("metric")
    for metric in METRICS:
        mean = (one.loc[metric, "estimate"] + two.loc[metric, "estimate"]) / 2
        assert both.loc[metric, "estimate"] == pytest.approx(mean, rel=1e-12), metric
