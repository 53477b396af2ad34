"""The words shown to people: block titles, feature names, recorded values and reason labels.

One formatter for the datasheet, reasons, plots, the report and the command
line, so a finding reads the same everywhere ("brush allodynia: present",
"painDETECT score: 23/38"). Free of pandas and scikit-learn: scoring one
patient imports it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from painml.record.columns import BY_NAME


@dataclass(frozen=True)
class BlockWords:
    """How a block of the record is named: a heading of its own, and a name inside a sentence."""

    heading: str
    name: str
    note: str = ""


BLOCKS: dict[str, BlockWords] = {
    "identification": BlockWords("Identification (never features)", "identification"),
    "demographics": BlockWords("Demographics", "demographics"),
    "pain_history": BlockWords("Pain history", "pain history"),
    "dn4_interview": BlockWords("Symptom descriptors: DN4 interview items", "DN4 interview"),
    "descriptors": BlockWords("Other symptom descriptors", "other pain descriptors"),
    "paindetect": BlockWords(
        "painDETECT severity block (optional)",
        "painDETECT questionnaire",
        "Sites that use painDETECT fill this block; sites that use DN4 leave it empty, and the reverse."
        " Both can be present.",
    ),
    "examination": BlockWords("Bedside examination", "bedside examination", "Empty = not examined."),
    "tests": BlockWords("Diagnostic tests", "diagnostic tests", "Empty = test not done."),
    "comorbidities": BlockWords("Comorbidities and history", "comorbidities"),
}
"""Every block of :data:`painml.record.columns.BLOCKS`, in words (a test keeps the two in step)."""


def block_title(block: str) -> BlockWords:
    """The words for ``block``; an unknown block is named after its key."""
    return BLOCKS.get(block) or BlockWords(block.replace("_", " ").capitalize(), block.replace("_", " "))


NEUPSIG_GRADES: tuple[str, ...] = ("unlikely", "possible", "probable", "definite")
"""The NeuPSIG grading levels, in the order of the ``neupsig_grade`` score's values."""
PAINDETECT_BANDS: tuple[str, ...] = ("negative", "unclear", "positive")
"""The painDETECT result bands, in the order of the ``paindetect_band`` score's values."""


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
        return PAINDETECT_BANDS[int(value)]
    if feature == "neupsig_grade":
        return NEUPSIG_GRADES[int(value)]
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


TOWARDS, AWAY = "towards", "away from"


def reason_sentence(label: str, direction: str, class_name: str, size: float, *, plain: bool = False) -> str:
    """One reason as people read it: "brush allodynia: present (towards neuropathic, +0.42 score)";
    ``plain`` for a clinical reader: "brush allodynia: present: made neuropathic more likely (+0.42 score)".

    The size is a SHAP value on the class's score (its calibrated softmax logit), not the log-odds of the
    class against all the others, so it is called what it is."""
    if plain:
        return f"{label}: made {class_name} {'more' if direction == TOWARDS else 'less'} likely ({size:+.2f} score)"
    return f"{label} ({direction} {class_name}, {size:+.2f} score)"


def reason_label(feature: str, value: Any) -> str:
    return f"{display_name(feature)}: {display_value(feature, value)}"


def _number(value: Any) -> str:
    x = float(value)
    return str(int(x)) if x.is_integer() else f"{x:.1f}"
