"""The patient record's columns: one table that every stage reads.

This is the single source of truth for names, types, allowed values and
meaning (see ``data/README.md``, generated from it). Validation, the simulator,
the screening scores and the feature pipeline all take their column lists from
here, so adding a column is a one-line change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["id", "binary", "integer", "number", "category"]


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    block: str
    meaning: str
    allowed: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None

    @property
    def expected(self) -> str:
        """What a valid value looks like, in the words of an error message."""
        if self.kind == "binary":
            return "true/false (also 1/0, yes/no)"
        if self.kind == "category":
            return "one of " + ", ".join(self.allowed)
        if self.kind in ("integer", "number"):
            word = "a whole number" if self.kind == "integer" else "a number"
            if self.low is not None and self.high is not None:
                return f"{word} from {self.low:g} to {self.high:g}"
            if self.low is not None:
                return f"{word} >= {self.low:g}"
            return word
        return "text"


def _binary(block: str, **meanings: str) -> list[Column]:
    return [Column(name, "binary", block, meaning) for name, meaning in meanings.items()]


PAIN_REGIONS = ("back", "neck", "lower_limb", "upper_limb", "trunk", "head_face", "widespread")
PAIN_DISTRIBUTIONS = ("nerve_territory", "stocking_glove", "localized", "diffuse")
PAIN_COURSES = (
    "persistent_slight_fluctuation",
    "persistent_with_attacks",
    "attacks_pain_free_between",
    "attacks_pain_between",
)
TEST_RESULTS = ("normal", "abnormal")
SEXES = ("female", "male")
DEFAULT_CLASSES = ("nociceptive", "neuropathic", "mixed")
OPTIONAL_BLOCKS = ("dn4_interview", "paindetect", "examination", "tests")
"""Blocks a site may or may not record (a questionnaire, the examination, tests): a model that never saw
one cannot know what it means."""
BOOLEAN_WORDS: dict[str, float] = {
    **dict.fromkeys(("true", "t", "yes", "y", "1", "1.0"), 1.0),
    **dict.fromkeys(("false", "f", "no", "n", "0", "0.0"), 0.0),
}
"""The spellings of true and false a binary finding may take (any case)."""

IDENTIFICATION = [
    Column("patient_id", "id", "identification", "caller's identifier, echoed in every output row"),
    Column("site", "id", "identification", "clinic or data source; for subgroup and drift reports"),
]

DEMOGRAPHICS = [
    Column("age", "integer", "demographics", "age in years", low=18, high=105),
    Column("sex", "category", "demographics", "sex", allowed=SEXES),
]

PAIN_HISTORY = [
    Column("pain_duration_months", "number", "pain_history", "months since onset; chronic pain is >= 3", low=0),
    Column(
        "pain_intensity",
        "integer",
        "pain_history",
        "0-10 numeric rating scale, average over the last week",
        low=0,
        high=10,
    ),
    Column("pain_region", "category", "pain_history", "main painful region", allowed=PAIN_REGIONS),
    Column(
        "pain_distribution",
        "category",
        "pain_history",
        "nerve_territory (dermatomal / peripheral nerve / central lesion territory), "
        "stocking_glove, localized (joint, tendon, wound), diffuse",
        allowed=PAIN_DISTRIBUTIONS,
    ),
    Column("radiating_pain", "binary", "pain_history", "pain radiates to other regions (painDETECT item)"),
    Column("pain_course", "category", "pain_history", "the four painDETECT course patterns", allowed=PAIN_COURSES),
    Column(
        "mechanical_aggravation",
        "binary",
        "pain_history",
        "pain clearly provoked by movement or loading and eased by rest (nociceptive indicator)",
    ),
    Column("night_pain", "binary", "pain_history", "pain disturbs sleep"),
]

DN4_INTERVIEW = _binary(
    "dn4_interview",
    burning="burning pain (DN4 item 1)",
    painful_cold="painful cold (DN4 item 2)",
    electric_shocks="electric shocks (DN4 item 3)",
    tingling="tingling (DN4 item 4)",
    pins_and_needles="pins and needles (DN4 item 5)",
    numbness="numbness (DN4 item 6)",
    itching="itching (DN4 item 7)",
)

OTHER_DESCRIPTORS = _binary(
    "descriptors",
    shooting="shooting or lancinating pain",
    touch_evoked_pain="light touch (clothing, bed sheets) is painful, as reported by the patient",
    aching="deep aching pain",
    throbbing="throbbing pain",
    stiffness="stiffness of the painful region",
)

_PD_LEVELS = "0-5: never, hardly noticed, slightly, moderately, strongly, very strongly"
PAINDETECT = [
    Column(name, "integer", "paindetect", f"{meaning} ({_PD_LEVELS})", low=0, high=5)
    for name, meaning in {
        "pd_burning": "burning sensation",
        "pd_tingling_prickling": "tingling or prickling",
        "pd_light_touch_painful": "light touch (clothing, blanket) is painful",
        "pd_sudden_attacks": "sudden pain attacks like electric shocks",
        "pd_temperature_painful": "cold or heat is painful",
        "pd_numbness": "numbness",
        "pd_pressure_painful": "slight pressure is painful",
    }.items()
]

EXAMINATION = _binary(
    "examination",
    hypoesthesia_touch="reduced touch sensation in the painful area (DN4 item 8)",
    hypoesthesia_pinprick="reduced pinprick sensation in the painful area (DN4 item 9)",
    brush_allodynia="pain evoked by brushing (DN4 item 10)",
    cold_allodynia="pain evoked by a cold stimulus",
    pinprick_hyperalgesia="increased pain to pinprick",
    reduced_vibration="reduced vibration sense",
    reduced_reflexes="reduced or absent tendon reflexes",
    motor_weakness="weakness in a myotome or nerve territory",
    positive_neurodynamic_test="straight-leg raise, slump or upper-limb tension test provokes the pain",
    tinel_sign="tapping over a nerve provokes paraesthesia",
    local_tenderness="tenderness on palpation of the painful structure",
    joint_swelling="swelling or effusion",
    painful_range_of_motion="movement of the joint or spine reproduces the pain",
    trophic_skin_changes="skin colour, temperature or sweating changes in the painful area",
)

TESTS = [
    Column(name, "category", "tests", meaning, allowed=TEST_RESULTS)
    for name, meaning in {
        "nerve_conduction": "nerve conduction study",
        "electromyography": "electromyography",
        "neural_imaging": "imaging of nerve root, spinal cord or brain: a lesion that explains the pain",
        "skin_biopsy": "skin biopsy: intraepidermal nerve fibre density",
        "joint_imaging": "imaging: structural joint or spine degeneration explaining the pain",
    }.items()
]

COMORBIDITIES = _binary(
    "comorbidities",
    diabetes="diabetes mellitus",
    prior_herpes_zoster="history of herpes zoster",
    neurotoxic_chemotherapy="neurotoxic chemotherapy (platinum, taxane, vinca alkaloid, bortezomib)",
    spinal_cord_injury="spinal cord injury",
    multiple_sclerosis="multiple sclerosis",
    stroke="stroke",
    nerve_injury_or_surgery="nerve injury or surgery near a nerve",
    hiv="HIV infection",
    alcohol_use_disorder="alcohol use disorder",
    vitamin_b12_deficiency="vitamin B12 deficiency",
    osteoarthritis="osteoarthritis",
    rheumatoid_arthritis="rheumatoid arthritis",
    cancer="cancer",
    recent_surgery="surgery within the last 12 months",
    depression="depression",
    anxiety="anxiety",
    sleep_disturbance="sleep disturbance",
) + [Column("hba1c", "number", "comorbidities", "glycated haemoglobin, percent", low=3, high=20)]

LABEL = Column("pain_type", "category", "label", "the clinician's classification", allowed=DEFAULT_CLASSES)

INPUT_COLUMNS: tuple[Column, ...] = tuple(
    IDENTIFICATION
    + DEMOGRAPHICS
    + PAIN_HISTORY
    + DN4_INTERVIEW
    + OTHER_DESCRIPTORS
    + PAINDETECT
    + EXAMINATION
    + TESTS
    + COMORBIDITIES
)
BY_NAME: dict[str, Column] = {c.name: c for c in (*INPUT_COLUMNS, LABEL)}
ID_COLUMNS = tuple(c.name for c in IDENTIFICATION)
FEATURE_COLUMNS = tuple(c.name for c in INPUT_COLUMNS if c.kind != "id")
BLOCKS: dict[str, tuple[str, ...]] = {
    block: tuple(c.name for c in INPUT_COLUMNS if c.block == block)
    for block in dict.fromkeys(c.block for c in INPUT_COLUMNS)
}

TRUE_PREFIX = "true_"
