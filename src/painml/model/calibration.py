"""Calibration: the fitted features + model pipeline turned into probabilities that mean what they say.

Temperature scaling (the default) multiplies every raw score by one constant
fitted on held-out rows, so the SHAP values of the calibrated logits stay
exact (:func:`temperature_factor`); sigmoid and isotonic calibration are
scikit-learn's. The fitted pipeline is frozen first: calibration never refits it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

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


def raw_scores(pipeline: Any, X: Any) -> np.ndarray:
    """The uncalibrated model's scores, as temperature scaling reads them: decision-function logits
    (a binary model's single margin as a column), classes in ``pipeline.classes_`` order."""
    return np.asarray(pipeline.decision_function(X), dtype=np.float64)


def fit_temperature(scores: np.ndarray, y_index: np.ndarray) -> float:
    """The inverse temperature that minimises log-loss of ``scores`` (from :func:`raw_scores`) for classes
    ``y_index`` (positions in ``pipeline.classes_``): scikit-learn's own temperature scaling."""
    # lazy: the bundle imports this module on the one-patient path, which has no scikit-learn
    from sklearn.calibration import _TemperatureScaling

    return float(_TemperatureScaling().fit(scores, y_index).beta_)


def apply_temperature(scores: np.ndarray, beta: float) -> np.ndarray:
    """Calibrated probabilities of ``scores`` at inverse temperature ``beta`` (``pipeline.classes_`` order),
    with the operations scikit-learn's calibrated classifier uses."""
    # lazy: as above
    from sklearn.calibration import _TemperatureScaling

    scaler = _TemperatureScaling()
    scaler.beta_ = beta
    return scaler.predict(scores)


def with_temperature(pipeline: Any, beta: float, X: Any, y: Any) -> Any:
    """``pipeline`` as a temperature-calibrated classifier whose inverse temperature is ``beta``, one fitted
    on out-of-fold scores: the wrapper is built by scikit-learn on ``X, y`` (any rows holding every class),
    then given that temperature, so the saved, compiled and explained model is the usual one."""
    calibrated = calibrate(pipeline, "temperature", X, y)
    calibrated.calibrated_classifiers_[0].calibrators[0].beta_ = beta
    return calibrated
