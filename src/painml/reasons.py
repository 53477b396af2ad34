"""The reasons shown to people: which contributions, in which words.

Shared by :mod:`painml.explain` (reports, plots, ``top_reasons``) and the
predictor's fast path, and kept free of pandas and scikit-learn so that
scoring one patient from the command line starts quickly.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from painml import screening
from painml.columns import BY_NAME, FEATURE_COLUMNS

TOWARDS, AWAY = "towards", "away from"


@dataclass(frozen=True)
class Reason:
    """One reason behind one row's prediction for one class.

    ``size`` is the feature's SHAP value in calibrated log-odds of
    ``class_name``: positive pushes the probability of that class up
    (``direction == "towards"``), negative pushes it down ("away from").
    """

    feature: str
    label: str
    value: Any
    direction: str
    class_name: str
    size: float

    def __str__(self) -> str:
        return f"{self.label} ({self.direction} {self.class_name}, {self.size:+.2f} log-odds)"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def largest(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column positions and values of the ``k`` largest |values| per row, largest first (ties stable)."""
    top = np.argpartition(-np.abs(values), k - 1, axis=1)[:, :k]
    sizes = np.take_along_axis(values, top, axis=1)
    order = np.argsort(-np.abs(sizes), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1), np.take_along_axis(sizes, order, axis=1)


def folded_names(encoded: Sequence[str], sources: Mapping[str, str]) -> list[str]:
    """Record columns in schema order, then screening scores, then anything else."""
    origins = set(sources[n] for n in encoded)
    folded = [c for c in (*FEATURE_COLUMNS, *screening.SCORE_NAMES) if c in origins]
    return folded + sorted(origins - set(folded))


def fold_matrix(encoded: Sequence[str], sources: Mapping[str, str], folded: Sequence[str]) -> np.ndarray:
    position = {f: i for i, f in enumerate(folded)}
    matrix = np.zeros((len(encoded), len(folded)))
    for e, name in enumerate(encoded):
        matrix[e, position[sources[name]]] = 1.0
    return matrix


def fill_unknown_means(mean: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The linear explanation's background with unknown (NaN) training means replaced by the rows' mean."""
    unknown = np.flatnonzero(np.isnan(mean))
    if len(unknown):
        warnings.warn(f"no training mean known for {len(unknown)} encoded columns; using the explained rows' mean "
                      "(store metadata['feature_means'] at training time to fix this)", UserWarning, stacklevel=3)
        mean = mean.copy()
        mean[unknown] = matrix[:, unknown].mean(axis=0)
    return mean


def plain(value: Any) -> Any:
    """A JSON-friendly value: None for missing, Python scalars otherwise."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or type(value).__name__ == "NAType":
        return None
    if hasattr(value, "item"):
        value = value.item()
        if isinstance(value, float) and math.isnan(value):
            return None
    return value


_NAMES = {
    "age": "age",
    "pain_duration_months": "pain duration",
    "hba1c": "HbA1c",
    "hiv": "HIV infection",
    "tinel_sign": "Tinel's sign",
    "pd_burning": "painDETECT burning",
    "pd_tingling_prickling": "painDETECT tingling or prickling",
    "pd_light_touch_painful": "painDETECT light touch painful",
    "pd_sudden_attacks": "painDETECT sudden pain attacks",
    "pd_temperature_painful": "painDETECT cold or heat painful",
    "pd_numbness": "painDETECT numbness",
    "pd_pressure_painful": "painDETECT slight pressure painful",
    "dn4": "DN4 score",
    "dn4_interview": "DN4 interview score",
    "paindetect": "painDETECT score",
    "paindetect_band": "painDETECT band",
    "lanss": "LANSS score",
    "id_pain": "ID-Pain score",
    "neupsig_grade": "NeuPSIG grade",
}
_VALUES = {
    "persistent_slight_fluctuation": "persistent, slight fluctuations",
    "persistent_with_attacks": "persistent with pain attacks",
    "attacks_pain_free_between": "attacks, pain-free between",
    "attacks_pain_between": "attacks with pain between",
    "head_face": "head or face",
    "stocking_glove": "stocking-glove",
}
_PD_LEVELS = ("never", "hardly noticed", "slightly", "moderately", "strongly", "very strongly")
_YES_NO_BLOCKS = ("pain_history", "comorbidities")
_SCORE_RANGE = {"dn4": "/10", "dn4_interview": "/7"}


def display_name(feature: str) -> str:
    """A short readable name: "brush allodynia", "painDETECT score", "painDETECT burning"."""
    if feature in _NAMES:
        return _NAMES[feature]
    return feature.replace("_", " ")


def display_value(feature: str, value: Any) -> str:
    """The recorded value in words: "present", "lower limb", "23", "not recorded"."""
    value = plain(value)
    column = BY_NAME.get(feature)
    if value is None:
        if column is not None and column.block == "tests":
            return "not done"
        if column is None:
            return "not available (items missing)"
        return "not recorded"
    if feature == "paindetect_band":
        return screening.PAINDETECT_BANDS[int(value)]
    if feature == "neupsig_grade":
        return screening.NEUPSIG_GRADES[int(value)]
    if column is None:  # a screening score
        return f"{_number(value)}{_SCORE_RANGE.get(feature, '')}"
    if column.kind == "binary":
        yes = bool(float(value))
        if column.block in _YES_NO_BLOCKS:
            return "yes" if yes else "no"
        return "present" if yes else "absent"
    if column.kind == "category":
        return _VALUES.get(str(value), str(value).replace("_", " "))
    if feature.startswith("pd_"):
        level = int(value)
        return f"{_PD_LEVELS[level]} ({level}/5)" if 0 <= level < len(_PD_LEVELS) else _number(value)
    if feature == "age":
        return f"{_number(value)} years"
    if feature == "pain_duration_months":
        return f"{_number(value)} months"
    if feature == "pain_intensity":
        return f"{_number(value)}/10"
    if feature == "hba1c":
        return f"{_number(value)} %"
    return _number(value)


def reason_label(feature: str, value: Any) -> str:
    return f"{display_name(feature)}: {display_value(feature, value)}"


def _number(value: Any) -> str:
    x = float(value)
    return str(int(x)) if x.is_integer() else f"{x:.1f}"
