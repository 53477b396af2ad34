"""The one predictor behind every way of asking: CLI, batch file, HTTP and MLflow's pyfunc.

It validates records against the schema, returns calibrated class
probabilities, the predicted class, a conformal prediction set, and the
screening scores for context, so a prediction for a patient is the same
whichever door it came through.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from painml import schema, screening
from painml.bundle import ModelBundle

CONTEXT_SCORES = ("dn4", "paindetect", "neupsig_grade")


def conformal_threshold(proba: np.ndarray, y_index: np.ndarray, confidence: float) -> float:
    """Split-conformal (LAC) threshold: include class k when p_k >= 1 - qhat.

    ``qhat`` is the ceil((n+1)c)/n quantile of 1 - p(true class) on rows the
    model and its calibration never saw (Sadinle, Lei & Wasserman 2019), which
    guarantees coverage of at least ``confidence`` on exchangeable data.
    """
    scores = 1.0 - proba[np.arange(len(y_index)), y_index]
    n = len(scores)
    level = min(1.0, np.ceil((n + 1) * confidence) / n)
    return float(np.quantile(scores, level, method="higher"))


def prediction_sets(proba: np.ndarray, qhat: float) -> np.ndarray:
    """Boolean (rows, classes); the most probable class is always in the set."""
    sets = proba >= 1.0 - qhat
    sets[np.arange(len(proba)), proba.argmax(axis=1)] = True
    return sets


class Predictor:
    """Loads a model once; scores records in the patient-record schema."""

    def __init__(self, bundle: ModelBundle, name: str | None = None, version: str | None = None):
        self.bundle = bundle
        self.classes = bundle.classes
        self.name = name or bundle.metadata.get("registered_model", "painml")
        self.version = version

    @classmethod
    def from_folder(cls, folder: str, name: str | None = None, version: str | None = None) -> "Predictor":
        return cls(ModelBundle.load(folder), name, version)

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities, columns in ``self.classes`` order."""
        est = self.bundle.estimator
        proba = est.predict_proba(features)
        order = [list(est.classes_).index(c) for c in self.classes]
        return proba[:, order]

    def predict(self, source: schema.Source | schema.Records) -> pd.DataFrame:
        """Validate then score; raises :class:`painml.schema.SchemaError` naming every bad cell."""
        records = source if isinstance(source, schema.Records) else schema.load_records(source)
        return self.predict_records(records)

    def predict_records(self, records: schema.Records) -> pd.DataFrame:
        frame = records.frame
        proba = self.predict_proba(records.features)
        out = pd.DataFrame(index=frame.index)
        out["patient_id"] = frame["patient_id"]
        for k, c in enumerate(self.classes):
            out[f"p_{c}"] = proba[:, k]
        best = proba.argmax(axis=1)
        out["predicted_class"] = np.asarray(self.classes, dtype=object)[best]
        out["confidence"] = proba[np.arange(len(proba)), best]
        qhat = self.bundle.metadata.get("conformal_qhat")
        if qhat is not None:
            out["prediction_set"] = _set_labels(prediction_sets(proba, qhat), self.classes)
        scores = screening.compute_scores(frame, CONTEXT_SCORES)
        for s in CONTEXT_SCORES:
            out[s] = scores[s]
        out["model"] = self.name
        out["model_version"] = self.version or ""
        return out


def _set_labels(sets: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    names = np.asarray(classes, dtype=object)
    return np.array(["|".join(names[row]) for row in sets], dtype=object)
