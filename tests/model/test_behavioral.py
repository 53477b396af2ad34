"""Behavioural tests of a trained model: textbook cases, directional changes, invariances.

Each is a property a clinician would check by hand. By default they run on a
model per family fitted here; ``pytest -m behavioral --model-uri URI`` runs
them against a registered model (e.g. ``models:/painml-pain-type@candidate``)
before it is promoted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from painml.config import load_config
from painml.model.dataset import load_dataset, split_rows
from painml.model.fit import build_bundle, fit_family
from painml.serving.predictor import Predictor

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.behavioral, pytest.mark.slow]


@pytest.fixture(scope="module", params=["gbm", "logistic"])
def behaving_model(request) -> Predictor:
    """The model under test: ``--model-uri`` when given (once), else a model per family fitted on
    8,000 simulated patients, without MLflow."""
    uri = request.config.getoption("--model-uri")
    if uri:
        if request.param != "gbm":
            pytest.skip("--model-uri names one model")
        return Predictor.from_uri(uri, tracking_uri=request.config.getoption("--tracking-uri"))
    cfg = load_config(REPO / "configs" / "default.yaml")
    cfg = cfg.model_copy(
        update={
            "data": cfg.data.model_copy(update={"n": 8_000}),
            "models": tuple(m for m in cfg.models if m.family == request.param),
        }
    )
    data = load_dataset(cfg)
    rows = split_rows(data.y, cfg)
    estimator, _ = fit_family(cfg.models[0], cfg, data.X, data.y, rows)
    return Predictor(build_bundle(estimator, request.param, cfg, data, rows))


PHN = {
    "patient_id": "textbook-phn",
    "site": "clinic_north",
    "age": 74,
    "sex": "female",
    "pain_duration_months": 8,
    "pain_intensity": 7,
    "pain_region": "trunk",
    "pain_distribution": "nerve_territory",
    "radiating_pain": False,
    "pain_course": "persistent_with_attacks",
    "mechanical_aggravation": False,
    "night_pain": True,
    "burning": True,
    "painful_cold": False,
    "electric_shocks": True,
    "tingling": True,
    "pins_and_needles": True,
    "numbness": True,
    "itching": True,
    "touch_evoked_pain": True,
    "aching": False,
    "stiffness": False,
    "hypoesthesia_touch": True,
    "hypoesthesia_pinprick": True,
    "brush_allodynia": True,
    "local_tenderness": False,
    "painful_range_of_motion": False,
    "prior_herpes_zoster": True,
}
KNEE_OA = {
    "patient_id": "textbook-knee",
    "site": "clinic_north",
    "age": 69,
    "sex": "female",
    "pain_duration_months": 60,
    "pain_intensity": 5,
    "pain_region": "lower_limb",
    "pain_distribution": "localized",
    "radiating_pain": False,
    "pain_course": "persistent_slight_fluctuation",
    "mechanical_aggravation": True,
    "night_pain": False,
    "burning": False,
    "painful_cold": False,
    "electric_shocks": False,
    "tingling": False,
    "pins_and_needles": False,
    "numbness": False,
    "itching": False,
    "shooting": False,
    "touch_evoked_pain": False,
    "aching": True,
    "stiffness": True,
    "hypoesthesia_touch": False,
    "hypoesthesia_pinprick": False,
    "brush_allodynia": False,
    "local_tenderness": True,
    "joint_swelling": True,
    "painful_range_of_motion": True,
    "osteoarthritis": True,
    "joint_imaging": "abnormal",
}


@pytest.mark.parametrize(
    ("record", "expected"),
    [(PHN, "neuropathic"), (KNEE_OA, "nociceptive")],
    ids=["postherpetic neuralgia with allodynia", "knee osteoarthritis, mechanical"],
)
def test_textbook_cases(behaving_model, record, expected):
    assert behaving_model.predict([record])["predicted_class"].item() == expected


def test_allodynia_and_hypoesthesia_raise_neuropathic(behaving_model):
    base = {
        **KNEE_OA,
        "pain_distribution": "nerve_territory",
        "pain_region": "back",
        "radiating_pain": True,
        "brush_allodynia": False,
        "hypoesthesia_touch": False,
    }
    signs = {**base, "brush_allodynia": True, "hypoesthesia_touch": True}
    out = behaving_model.predict([base, signs])
    assert out["p_neuropathic"].iloc[1] > out["p_neuropathic"].iloc[0]


@pytest.mark.parametrize("change", [{"patient_id": "someone-else"}, {"site": "a-site-never-seen"}])
def test_identifiers_change_nothing(behaving_model, change):
    out = behaving_model.predict([PHN, {**PHN, **change}])
    probabilities = [c for c in out.columns if c.startswith("p_")]
    np.testing.assert_array_equal(out[probabilities].iloc[0].to_numpy(), out[probabilities].iloc[1].to_numpy())
