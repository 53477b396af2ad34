"""The train-to-serve contract: metadata.json as a typed, frozen record, and models saved before the package split."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError

import pytest

from painml.model.bundle import TRUSTED_TYPES
from painml.model.metadata import BundleMetadata, TrainingProfile

# metadata.json as training wrote it before the record was typed (same keys, plain JSON values)
SAVED = {
    "classes": ["nociceptive", "neuropathic", "mixed"],
    "family": "gbm",
    "registered_model": "painml-pain-type",
    "config": "default",
    "lineage": {"source": "simulate", "preset": "pain_clinic", "n": 20000, "seed": 7, "rows": 20000},
    "conformal_confidence": 0.9,
    "conformal_qhat": 0.61,
    "training_profile": {
        "numeric_ranges": {"age": [18.0, 99.0]},
        "categories": {"sex": ["female", "male"]},
        "blocks_seen": ["dn4_interview", "paindetect"],
        "sites": ["clinic_north"],
    },
    "temperature_factor": 0.93,
    "hyperparameters": {"family": "gbm", "learning_rate": 0.05},
    "metrics": {"test_log_loss": 0.69},
}


def test_saved_metadata_reads_into_the_typed_record_and_back():
    meta = BundleMetadata.from_json(SAVED)
    assert meta.classes == ("nociceptive", "neuropathic", "mixed")
    assert meta.training_profile.numeric_ranges["age"] == (18.0, 99.0)
    assert meta.training_profile.blocks_seen == ("dn4_interview", "paindetect")
    assert BundleMetadata.from_json(json.loads(meta.to_json())) == meta
    with pytest.raises(FrozenInstanceError):
        meta.conformal_qhat = 0.5


def test_missing_profile_means_unknown_blocks():
    meta = BundleMetadata.from_json({k: v for k, v in SAVED.items() if k != "training_profile"})
    assert meta.training_profile == TrainingProfile() and meta.training_profile.blocks_seen is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({**SAVED, "calibrator": "isotonic"}, r"unknown keys \['calibrator'\].*newer painml"),
        ({"family": "gbm"}, "classes"),
    ],
)
def test_metadata_this_version_cannot_read_is_refused_by_name(data, message):
    with pytest.raises(ValueError, match=message):
        BundleMetadata.from_json(data, "model/metadata.json")


def test_the_screening_step_of_models_saved_before_the_split_still_resolves():
    from painml.features import ScreeningScores
    from painml.features.encoding import ScreeningScores as current

    assert ScreeningScores is current
    assert {"painml.features.ScreeningScores", "painml.features.encoding.ScreeningScores"} <= set(TRUSTED_TYPES)
