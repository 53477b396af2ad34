"""Calibration: the fitted features + model pipeline turned into probabilities that mean what they say.

Temperature scaling (the default) multiplies every raw score by one constant
fitted on held-out rows, so the SHAP values of the calibrated logits stay
exact (:func:`temperature_factor`); sigmoid and isotonic calibration are
scikit-learn's. The fitted pipeline is frozen first: calibration never refits it.
"""

from __future__ import annotations

from typing import Any

METHODS = ("temperature", "sigmoid", "isotonic", "none")


def calibrate(pipeline: Any, method: str, X: Any, y: Any) -> Any:
    """``pipeline`` calibrated on the rows ``X, y`` (which it must not have seen); itself for ``"none"``."""
    if method == "none":
        return pipeline
    # lazy: the bundle imports this module on the one-patient path, which has no scikit-learn
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    return CalibratedClassifierCV(FrozenEstimator(pipeline), method=method).fit(X, y)


def uncalibrated(estimator: Any) -> Any:
    """The fitted features + model pipeline inside a calibration wrapper (what SHAP explains)."""
    if hasattr(estimator, "calibrated_classifiers_"):
        estimator = estimator.calibrated_classifiers_[0].estimator
    return getattr(estimator, "estimator", estimator)


def temperature_factor(estimator: Any) -> float | None:
    """Calibrated logits are the raw ones times this factor: 1 without calibration, None when the
    calibration is not by temperature (the raw model is explained instead)."""
    if not hasattr(estimator, "calibrated_classifiers_"):
        return 1.0
    calibrators = estimator.calibrated_classifiers_[0].calibrators
    if len(calibrators) == 1 and hasattr(calibrators[0], "beta_"):
        return float(calibrators[0].beta_)
    return None
