"""The data a config names: class counts checked against the validation before any fitting."""

from __future__ import annotations

from pathlib import Path

import pytest

from painml.config import load_config
from painml.model.dataset import check_class_counts
from painml.record.problems import SchemaError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def cfg():
    return load_config(REPO / "configs" / "small_cohort.yaml")


def test_a_rare_but_usable_class_is_a_warning_with_its_count(cfg):
    warnings = check_class_counts({"nociceptive": 400, "neuropathic": 12}, "cv", cfg)
    assert warnings == [
        "class 'neuropathic' is rare (12 rows): its conformal coverage is reported on its own, and "
        "class-conditional prediction sets need 30 rows of every class"
    ]
    assert check_class_counts({"nociceptive": 400, "neuropathic": 300}, "cv", cfg) == []


@pytest.mark.parametrize(("method", "needed", "way_out"), [("cv", 10, "fewer folds than 5"), ("holdout", 27, "cv")])
def test_a_class_too_small_for_the_validation_is_refused_with_the_ways_out(cfg, method, needed, way_out):
    with pytest.raises(SchemaError) as caught:
        check_class_counts({"nociceptive": 400, "neuropathic": needed - 1}, method, cfg)
    (problem,) = caught.value.problems
    assert f"class 'neuropathic' has {needed - 1:,} rows" in str(problem)
    assert f"needs at least {needed}" in str(problem) and way_out in str(problem)
    assert check_class_counts({"nociceptive": 400, "neuropathic": max(needed, 30)}, method, cfg) == []


def test_a_config_can_choose_how_simulated_labels_are_recorded(cfg):
    from painml.model.dataset import load_dataset

    def mixed_share(label: str) -> float:
        data_cfg = {"source": "simulate", "preset": "orthopaedic", "n": 3000, "seed": 5, "label": label}
        three = type(cfg).model_validate(
            {**cfg.model_dump(), "data": data_cfg, "labels": ["nociceptive", "neuropathic", "mixed"]}
        )
        data = load_dataset(three)
        assert data.lineage["label"] == label
        return float((data.y == "mixed").mean())

    assert mixed_share("routine") < mixed_share("specialist")  # routine practice rarely codes mixed
