"""A trained painml model on disk: the calibrated estimator plus what it knows.

The estimator is stored with skops, which refuses to load any type that is
not on :data:`TRUSTED_TYPES` (a pickle can run arbitrary code on load). The
metadata JSON carries everything the predictor needs besides the estimator:
the label set, the conformal threshold, the ranges seen in training (to flag
unfamiliar inputs), the evaluation metrics and the data lineage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import skops.io as sio
from sklearn.pipeline import Pipeline

ESTIMATOR_FILE = "model.skops"
METADATA_FILE = "metadata.json"

TRUSTED_TYPES = [
    "collections.OrderedDict",
    "numpy.dtype",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMClassifier",
    "painml.screening.ScreeningScores",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._TemperatureScaling",
    "sklearn.calibration._SigmoidCalibration",
]


@dataclass
class ModelBundle:
    """A calibrated classifier and its metadata; ``pipeline`` is the uncalibrated features + model."""

    estimator: Any
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def classes(self) -> list[str]:
        return list(self.metadata["classes"])

    @property
    def pipeline(self) -> Pipeline:
        """The fitted features + model pipeline inside the calibration wrapper (what SHAP explains)."""
        est = self.estimator
        if hasattr(est, "calibrated_classifiers_"):
            est = est.calibrated_classifiers_[0].estimator
        return getattr(est, "estimator", est)

    @property
    def temperature_factor(self) -> float | None:
        """Calibrated logits are the raw ones times this factor, when calibration is by temperature."""
        est = self.estimator
        if not hasattr(est, "calibrated_classifiers_"):
            return 1.0
        calibrators = est.calibrated_classifiers_[0].calibrators
        if len(calibrators) == 1 and hasattr(calibrators[0], "beta_"):
            return float(calibrators[0].beta_)
        return None

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        sio.dump(self.estimator, folder / ESTIMATOR_FILE)
        (folder / METADATA_FILE).write_text(json.dumps(self.metadata, indent=2, default=_jsonable))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "ModelBundle":
        folder = Path(folder)
        untrusted = set(sio.get_untrusted_types(file=folder / ESTIMATOR_FILE)) - set(TRUSTED_TYPES)
        if untrusted:
            raise ValueError(f"{folder}: refusing to load untrusted types {sorted(untrusted)}")
        estimator = sio.load(folder / ESTIMATOR_FILE, trusted=TRUSTED_TYPES)
        metadata = json.loads((folder / METADATA_FILE).read_text())
        return cls(estimator, metadata)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
