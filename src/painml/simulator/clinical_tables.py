"""Every number the cohort simulator uses, each with where it comes from.

A clinician reviewing the simulator should only need this file. Figures
quoted from the literature cite first author, year and journal (see
``shared/reference/clinical-figures.md``); figures that no paper gives
directly are marked ``assumption`` and name the realism target they were
tuned against (``painml realism`` checks every target).

How the tables are used (``painml.simulator.simulate``):

* A patient has a latent **condition** (drawn from a preset's case mix), a
  latent **mechanism** (nociceptive, neuropathic, mixed; drawn from the
  condition) and a latent **expression** (borderline, typical, marked).
* Every binary finding has three rates, one per mechanism, for typical
  patients (``Finding(noc, mixed, neu)``). Mixed pain is both mechanisms at
  work in the same area (Freynhagen 2019, Curr Med Res Opin), so its rates
  lie near the higher of the two. A condition may override the rates of the
  findings specific to it (joint swelling in arthritis, a positive straight-leg
  raise in radiculopathy).
* Expression moves a pure mechanism's rates towards the mixed rates
  (borderline) or beyond its own (marked), on the logit scale:
  ``logit(p) = logit(mixed) + scale * (logit(own) - logit(mixed))``.
  Borderline patients are therefore the ones that look mixed, which is where
  clinicians disagree (see ``LABEL_NOISE``).
* painDETECT items (0-5) follow a cumulative-logit (graded response) model whose
  mean item score is 5 q, with q from the same rule; its thresholds leave room
  for "never" within every class.
* A fourth latent, **symptom amplification** (``AMPLIFICATION_LEVELS`` levels
  at Gauss-Hermite nodes of a standard normal), shifts the logit of every
  self-reported symptom item and the mean pain intensity: patients who notice
  and report more of one symptom report more of all of them and more pain. Per
  state offsets keep each item's mean over the amplification levels at the
  rate in these tables.
* Items are independent given (condition, mechanism, expression,
  amplification), so the exact posterior is a sum over 16 x 3 x 3 x 5 states.
* painDETECT profiles differ by condition where the literature differs: radiculopathy, painful diabetic
  neuropathy, post-herpetic neuralgia, central pain, knee and hip osteoarthritis (the ``*_PAINDETECT`` tables
  and the conditions' ``findings``).
* A site records one questionnaire or both (``INSTRUMENTS``); where it uses both, a record sometimes carries one
  (``SINGLE_QUESTIONNAIRE``). Sites are drawn independently of the patient, so the gaps are ignorable.
* The recorded label is a specialist's mechanism grading (``LABEL_NOISE``) or,
  in routine practice, mostly the diagnosis (``ROUTINE_LABEL``); a preset
  says which, and may shift every symptom item (``Preset.response_level``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

MECHANISMS = ("nociceptive", "neuropathic", "mixed")
EXPRESSIONS = ("borderline", "typical", "marked")


@dataclass(frozen=True)
class Finding:
    """Rate of a finding in typical nociceptive, mixed and neuropathic pain."""

    noc: float
    mixed: float
    neu: float
    source: str = "assumption"


@dataclass(frozen=True)
class Condition:
    mechanism: tuple[float, float, float]  # P(nociceptive, neuropathic, mixed | condition)
    mechanism_source: str
    age: tuple[float, float]  # mean, sd in years
    female: float
    duration_months: float  # median duration, lognormal
    region: dict[str, float]
    neuro_distribution: dict[str, float]  # where the pain lies when a neuropathic mechanism acts
    noci_distribution: dict[str, float]  # where the pain lies when a nociceptive mechanism acts
    comorbidities: dict[str, float] = field(default_factory=dict)  # overrides of the base rates
    # (noc, mixed, neu) overrides of FINDINGS / PAINDETECT / TEST_ORDER / TEST_ABNORMAL
    findings: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    test_order: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    test_abnormal: dict[str, tuple[float, float, float]] = field(default_factory=dict)


EXPRESSION_SHARE = {"borderline": 0.30, "typical": 0.50, "marked": 0.20}  # assumption; target 7
EXPRESSION_SCALE = {"borderline": 0.5, "typical": 1.0, "marked": 1.35}  # assumption; targets 1, 2, 5
# Where a mixed patient's pain lies and how its course runs: this share of the neuropathic pattern
# (assumption).
MIXED_NEURO_SHARE = 0.55

# The recorded label is one clinician's judgement. P(recorded | true mechanism, expression):
# two physicians agree on 79% of neuropathic / nociceptive / mixed labels (van Seventer 2013,
# Pain Pract) and 78% on the neuropathic component (Timmerman 2017, PLoS One); disagreement sits
# in mixed and borderline patients. Rows are (nociceptive, neuropathic, mixed). Target 7.
LABEL_NOISE = {
    ("nociceptive", "borderline"): (0.70, 0.04, 0.26),
    ("nociceptive", "typical"): (0.89, 0.02, 0.09),
    ("nociceptive", "marked"): (0.97, 0.00, 0.03),
    ("neuropathic", "borderline"): (0.05, 0.68, 0.27),
    ("neuropathic", "typical"): (0.02, 0.89, 0.09),
    ("neuropathic", "marked"): (0.00, 0.97, 0.03),
    ("mixed", "borderline"): (0.27, 0.23, 0.50),
    ("mixed", "typical"): (0.16, 0.14, 0.70),
    ("mixed", "marked"): (0.09, 0.09, 0.82),
}

# Routine-practice label. In orthopaedic and primary-care practice the recorded pain type
# follows the diagnosis more than a mechanism grading: disc herniation, stenosis and entrapment are recorded as
# neuropathic, joint and tendon disorders as nociceptive, and "mixed" is rarely coded (clinical-figures.md section
# 5, routine labels; Yamashita 2014, J Orthop Sci: 29-77% neuropathic by diagnosis, i.e. symptoms vary within a
# diagnosis the label ignores). P(recorded | condition), rows (nociceptive, neuropathic, mixed): assumptions in
# that direction. The routine label is this table with weight ROUTINE_DIAGNOSIS_WEIGHT, blended with the
# specialist's mechanism label (LABEL_NOISE) for the rest: some clinicians grade the mechanism anyway
# (assumption; 0.7 keeps mixed at about a tenth of labels).
ROUTINE_LABEL: dict[str, tuple[float, float, float]] = {
    "painful_diabetic_neuropathy": (0.05, 0.92, 0.03),
    "postherpetic_neuralgia": (0.03, 0.95, 0.02),
    "chemotherapy_induced_neuropathy": (0.05, 0.92, 0.03),
    "spinal_cord_injury_pain": (0.30, 0.65, 0.05),
    "multiple_sclerosis_pain": (0.40, 0.55, 0.05),
    "central_post_stroke_pain": (0.10, 0.87, 0.03),
    "post_traumatic_nerve_injury": (0.08, 0.88, 0.04),
    "lumbar_radiculopathy": (0.15, 0.80, 0.05),
    "cervical_radiculopathy": (0.15, 0.80, 0.05),
    "chronic_low_back_pain": (0.85, 0.10, 0.05),
    "knee_osteoarthritis": (0.95, 0.03, 0.02),
    "hip_osteoarthritis": (0.96, 0.02, 0.02),
    "rheumatoid_arthritis": (0.95, 0.03, 0.02),
    "post_surgical_pain": (0.70, 0.25, 0.05),
    "cancer_pain": (0.75, 0.20, 0.05),
    "tendinopathy": (0.97, 0.01, 0.02),
}
ROUTINE_DIAGNOSIS_WEIGHT = 0.7
LABEL_DEFINITIONS = ("specialist", "routine")

_DN4 = "Bouhassira 2005, Pain; item frequencies in 1,547 PDN patients"
_SMART = "Smart 2012, Man Ther: nociceptive / peripheral neuropathic clusters"
_LANSS = "Bennett 2001, Pain: LANSS items"

# Binary findings. DN4 neuropathic rates are the published PDN item frequencies; nociceptive rates
# are set so DN4 >= 4 has about 90% specificity in case-control samples (target 1); mixed rates sit
# 70% of the way from the lower to the higher of the two (assumption; target 2).
FINDINGS: dict[str, Finding] = {
    # history
    "radiating_pain": Finding(0.30, 0.51, 0.60, "painDETECT item; Freynhagen 2006 (assumption for rates)"),
    "mechanical_aggravation": Finding(0.85, 0.69, 0.30, _SMART),
    "night_pain": Finding(0.35, 0.49, 0.55, _SMART + ": night pain argues against nociceptive"),
    # DN4 interview
    "burning": Finding(0.25, 0.50, 0.54, _DN4),
    "painful_cold": Finding(0.10, 0.29, 0.30, _DN4),
    "electric_shocks": Finding(0.13, 0.39, 0.43, _DN4),
    "tingling": Finding(0.40, 0.62, 0.69, _DN4),
    "pins_and_needles": Finding(0.32, 0.55, 0.63, _DN4),
    "numbness": Finding(0.28, 0.70, 0.81, _DN4),
    "itching": Finding(0.11, 0.26, 0.26, _DN4),
    # other descriptors
    "shooting": Finding(0.25, 0.39, 0.50, _SMART + ": sharp pain with movement; shooting quality"),
    "touch_evoked_pain": Finding(0.22, 0.50, 0.64, "ID-Pain item; Portenoy 2006 (assumption for rates)"),
    "aching": Finding(0.80, 0.70, 0.45, _SMART + ": dull ache at rest"),
    "throbbing": Finding(0.40, 0.35, 0.25, _SMART + ": ache or throb at rest"),
    "stiffness": Finding(0.55, 0.43, 0.15, "assumption: joint and spine disease"),
    # examination (DN4 items 8-10 at the published PDN frequencies)
    "hypoesthesia_touch": Finding(0.14, 0.44, 0.50, _DN4),
    "hypoesthesia_pinprick": Finding(0.10, 0.38, 0.45, _DN4),
    "brush_allodynia": Finding(0.05, 0.42, 0.50, _DN4),
    "cold_allodynia": Finding(0.04, 0.19, 0.25, "assumption: Finnerup 2016 sensory signs"),
    "pinprick_hyperalgesia": Finding(0.28, 0.38, 0.40, "assumption: Finnerup 2016 sensory signs"),
    "reduced_vibration": Finding(0.10, 0.27, 0.35, "assumption; overridden for polyneuropathies"),
    "reduced_reflexes": Finding(0.08, 0.23, 0.30, "assumption; overridden for radiculopathy, PDN"),
    "motor_weakness": Finding(0.08, 0.20, 0.25, "assumption; overridden for radiculopathy, central pain"),
    "positive_neurodynamic_test": Finding(0.08, 0.20, 0.25, _SMART + ": neurodynamic provocation"),
    "tinel_sign": Finding(0.04, 0.15, 0.20, "assumption; overridden for nerve injury"),
    "local_tenderness": Finding(0.75, 0.61, 0.30, _SMART + ": pain localised to the injured area"),
    "joint_swelling": Finding(0.15, 0.11, 0.03, "assumption; overridden for arthritis"),
    "painful_range_of_motion": Finding(0.70, 0.55, 0.20, _SMART + ": mechanical provocation"),
    "trophic_skin_changes": Finding(
        0.38, 0.52, 0.62, _LANSS + ": autonomic changes; inflamed joints redden too (assumption)"
    ),
}

# painDETECT items: q here is the mean item score / 5 (item response model above). Set so painDETECT >= 19
# has about 80% specificity (band 0.75-0.90) and 50-85% sensitivity case-control (Freynhagen 2006: 85%/80% in
# its own sample), and chronic low back pain scores >= 19 in about 37% (targets 3, 4). Nociceptive rates sit
# 0.03-0.07 above the binomial-era table: the wider item model had moved specificity to 0.93 (assumption).
PAINDETECT: dict[str, Finding] = {
    "pd_burning": Finding(0.26, 0.49, 0.59, "Freynhagen 2006 (assumption for rates)"),
    "pd_tingling_prickling": Finding(0.29, 0.52, 0.63, "Freynhagen 2006 (assumption for rates)"),
    "pd_light_touch_painful": Finding(0.20, 0.41, 0.49, "Freynhagen 2006 (assumption for rates)"),
    "pd_sudden_attacks": Finding(0.30, 0.47, 0.55, "Freynhagen 2006 (assumption for rates)"),
    "pd_temperature_painful": Finding(0.18, 0.36, 0.43, "Freynhagen 2006 (assumption for rates)"),
    "pd_numbness": Finding(0.27, 0.50, 0.61, "Freynhagen 2006 (assumption for rates)"),
    "pd_pressure_painful": Finding(0.48, 0.46, 0.40, "Freynhagen 2006 (assumption for rates)"),
}

# Shared symptom amplification. Five levels at the Gauss-Hermite nodes of a standard normal
# (assumption: a discrete stand-in for a normally distributed reporting tendency). Loadings are logit shifts per
# SD of the factor; intensity in points per SD. All assumptions, tuned to the within-class figures of
# clinical-figures.md section 5: Cronbach's alpha 0.76 of painDETECT within neuropathic pain (Cappelleri 2015,
# J Pain Res), SD of the total about 6.5 (Korean painDETECT study), the total rising 15.2 / 19.8 / 24.0 with
# average pain mild / moderate / severe (Cappelleri 2014, ClinicoEcon Outcomes Res), and neuropathic-like
# symptoms rising with pain in nociceptive knee OA (Hochman 2011, Osteoarthritis Cartilage).
AMPLIFICATION_LEVELS = 5
AMPLIFICATION_LOADING = {"paindetect": 1.3, "symptom": 0.6, "intensity": 0.95}
# Self-reported symptoms the factor loads on: the DN4 interview, the other descriptors and radiating pain
# (the painDETECT yes/no question); the painDETECT items load with the "paindetect" loading.
AMPLIFIED_SYMPTOMS = (
    "radiating_pain",
    "burning",
    "painful_cold",
    "electric_shocks",
    "tingling",
    "pins_and_needles",
    "numbness",
    "itching",
    "shooting",
    "touch_evoked_pain",
    "aching",
    "throbbing",
    "stiffness",
)
# painDETECT item response: P(score >= k) = expit(eta + loading * z - threshold_k), k = 1..5
# (never, hardly noticed, slightly, moderately, strongly, very strongly). eta is solved per state so the mean item
# score stays 5 q. Wide outer thresholds give "never" and "very strongly" room in every class (assumption; tuned to
# the within-neuropathic SD above, which binomial(5, q) missed by half).
PAINDETECT_THRESHOLDS = (-2.0, -0.7, 0.3, 1.3, 2.6)

# Radiculopathy painDETECT profile, (noc, mixed, neu) mean item score / 5, lumbar and cervical.
# Mahn 2011, PLoS One (2,094 painful radiculopathies vs diabetic neuropathy and PHN): touch-evoked allodynia and
# thermal hyperalgesia relatively uncommon, painful attacks and pressure-evoked pain prominent, burning mild.
# Nikaido 2018, PLoS One (Spine painDETECT, spinal neuropathic vs joint nociceptive): numbness carries the
# weight (+8 per point); light touch, cold/heat and attacks do not separate once numbness is known. The rates
# are assumptions set to those shapes (targets 14, 15): numbness keeps the pooled neuropathic contrast, light touch
# and cold/heat sit near the nociceptive joint rates, pressure is high in every mechanism.
RADICULOPATHY_PAINDETECT: dict[str, tuple[float, float, float]] = {
    "pd_numbness": (0.24, 0.52, 0.60),
    "pd_tingling_prickling": (0.26, 0.42, 0.47),
    "pd_burning": (0.23, 0.36, 0.42),
    "pd_light_touch_painful": (0.16, 0.22, 0.24),
    "pd_temperature_painful": (0.14, 0.22, 0.26),
    "pd_sudden_attacks": (0.32, 0.46, 0.50),
    "pd_pressure_painful": (0.52, 0.57, 0.61),
}

# Painful diabetic neuropathy painDETECT profile, (noc, mixed, neu) mean item score / 5. Baron 2009, Pain
# 146:34 (painDETECT survey, 2,100 patients with painful diabetic neuropathy or post-herpetic neuralgia): dynamic
# mechanical allodynia in 18% of diabetic neuropathy against half of post-herpetic neuralgia, thermal hyperalgesia
# half as often as in post-herpetic neuralgia, numbness more often; prickling and numbness lead the distal
# polyneuropathy profile (DN4 item frequencies of 1,547 patients: numbness 81%, tingling 69%, burning 54%,
# painful cold 30%). The rates are assumptions set to those ratios; nociceptive rates stay the pooled ones, mixed
# rates sit near 80% of the way to the neuropathic rate, as in the pooled table.
DIABETIC_NEUROPATHY_PAINDETECT: dict[str, tuple[float, float, float]] = {
    "pd_burning": (0.26, 0.52, 0.58),
    "pd_tingling_prickling": (0.29, 0.60, 0.70),
    "pd_light_touch_painful": (0.20, 0.28, 0.30),
    "pd_sudden_attacks": (0.30, 0.45, 0.50),
    "pd_temperature_painful": (0.18, 0.30, 0.33),
    "pd_numbness": (0.27, 0.62, 0.72),
    "pd_pressure_painful": (0.48, 0.42, 0.38),
}

# Post-herpetic neuralgia painDETECT profile. Baron 2009 (as above): sensory symptoms more often clinically
# relevant than in diabetic neuropathy at about the same pain intensity; touch-evoked pain in half of patients
# (2.8 times the diabetic rate), thermal hyperalgesia twice as often, numbness less often. Rates: assumptions set
# to those ratios against DIABETIC_NEUROPATHY_PAINDETECT; pressure on the scarred dermatome is painful more often
# than in polyneuropathy (assumption).
POSTHERPETIC_PAINDETECT: dict[str, tuple[float, float, float]] = {
    "pd_burning": (0.26, 0.56, 0.64),
    "pd_tingling_prickling": (0.29, 0.50, 0.56),
    "pd_light_touch_painful": (0.20, 0.56, 0.66),
    "pd_sudden_attacks": (0.30, 0.52, 0.58),
    "pd_temperature_painful": (0.18, 0.46, 0.54),
    "pd_numbness": (0.27, 0.45, 0.52),
    "pd_pressure_painful": (0.48, 0.50, 0.50),
}

# Central neuropathic pain (post-stroke; also standing in for spinal cord injury and multiple sclerosis pain,
# assumption). Klit 2011, Pain 152:818 (population-based central post-stroke pain): pinprick hyperalgesia 57%, cold
# allodynia 40%, brush-evoked dysaesthesia 51%; Andersen 1995, Pain 61:187: reduced temperature, touch and pinprick
# sensibility in 94%, cold and touch allodynia each 56%; Klit 2009, Lancet Neurol (diagnostic criteria): burning,
# painful cold and electric shocks as supportive descriptors, hypersensitivity to touch or cold. Rates: assumptions
# set to that shape: cold/heat and light touch well above the pooled neuropathic rates, numbness (sensory loss)
# high, pressure as pooled.
CENTRAL_PAINDETECT: dict[str, tuple[float, float, float]] = {
    "pd_burning": (0.26, 0.55, 0.62),
    "pd_tingling_prickling": (0.29, 0.50, 0.56),
    "pd_light_touch_painful": (0.20, 0.48, 0.56),
    "pd_sudden_attacks": (0.30, 0.45, 0.50),
    "pd_temperature_painful": (0.18, 0.50, 0.58),
    "pd_numbness": (0.27, 0.54, 0.62),
    "pd_pressure_painful": (0.48, 0.46, 0.44),
}
# DN4 "painful cold" in central pain: cold allodynia 40% (Klit 2011) to 56% (Andersen 1995); rates an assumption
# between them.
CENTRAL_PAINFUL_COLD = (0.10, 0.40, 0.46)

# Hip osteoarthritis painDETECT profile. Zolio 2021, Osteoarthritis Cartilage (meta-analysis): painDETECT >= 13 in
# 29% and >= 19 in 9% of hip OA, against 40% and 20% in knee OA; Blikman 2018, PLoS One (255 patients): modified
# painDETECT > 12 in 37% of hip and 46% of knee OA. Hip pain is deep joint pain with fewer cutaneous
# neuropathic-like symptoms than the knee (assumption): burning, prickling, touch-evoked and thermal pain sit well
# below the pooled nociceptive rates; attacks of intermittent intense pain (Hawker 2008, Osteoarthritis Cartilage)
# are as common as in radiculopathy and pressure stays common, as in knee OA. Rates: assumptions set to Zolio's
# shares (target 3) and the Spine painDETECT signs (target 14).
HIP_OA_PAINDETECT: dict[str, tuple[float, float, float]] = {
    "pd_burning": (0.15, 0.32, 0.59),
    "pd_tingling_prickling": (0.17, 0.34, 0.63),
    "pd_light_touch_painful": (0.12, 0.26, 0.49),
    "pd_sudden_attacks": (0.40, 0.48, 0.55),
    "pd_temperature_painful": (0.11, 0.24, 0.43),
    "pd_numbness": (0.17, 0.34, 0.61),
    "pd_pressure_painful": (0.42, 0.44, 0.44),
}

# Osteoarthritis pain is often referred along the limb (hip to thigh and knee, knee to shin), so the painDETECT
# "does your pain radiate" question is answered yes more often than the pooled nociceptive 30% (assumption;
# target 14: Nikaido 2018 gives radiating only +1 against joint disorders).
OA_RADIATING = (0.45, 0.57, 0.64)
# Hip joint pain is referred to the buttock and thigh in most patients (Lesher 2008, Pain Med: buttock 71%, thigh
# 55% on intra-articular provocation), more often than knee pain (assumption for the rates).
HIP_OA_RADIATING = (0.60, 0.68, 0.72)

# painDETECT course patterns of the pure mechanisms; mixed pain mixes them (assumption).
COURSE = {
    "nociceptive": {
        "persistent_slight_fluctuation": 0.50,
        "persistent_with_attacks": 0.20,
        "attacks_pain_free_between": 0.12,
        "attacks_pain_between": 0.18,
    },
    "neuropathic": {
        "persistent_slight_fluctuation": 0.22,
        "persistent_with_attacks": 0.30,
        "attacks_pain_free_between": 0.18,
        "attacks_pain_between": 0.30,
    },
}

# Average pain intensity 0-10 (discretised normal) by expression; neuropathic pain is rated about
# half a point higher (assumption, cf. Bouhassira 2008, Pain).
INTENSITY_MEAN = {"borderline": 4.4, "typical": 5.6, "marked": 7.0}
INTENSITY_NEUROPATHIC_SHIFT = 0.5
INTENSITY_SD = 1.8  # total within-expression SD; the amplification factor takes its share of it

# Tests: P(ordered) and P(abnormal | ordered) follow the same rule as findings. Tests are ordered more
# often when a neuropathic cause is suspected (informative missingness; assumption).
TEST_ORDER: dict[str, Finding] = {
    "nerve_conduction": Finding(0.06, 0.33, 0.45, "assumption"),
    "electromyography": Finding(0.04, 0.19, 0.25, "assumption"),
    "neural_imaging": Finding(0.08, 0.27, 0.35, "assumption"),
    "skin_biopsy": Finding(0.01, 0.04, 0.06, "assumption"),
    "joint_imaging": Finding(0.45, 0.36, 0.15, "assumption"),
}
TEST_ABNORMAL: dict[str, Finding] = {
    "nerve_conduction": Finding(0.10, 0.52, 0.70, "assumption: confirmatory test, Finnerup 2016"),
    "electromyography": Finding(0.10, 0.45, 0.60, "assumption"),
    "neural_imaging": Finding(0.15, 0.53, 0.70, "assumption"),
    "skin_biopsy": Finding(0.10, 0.59, 0.80, "assumption"),
    "joint_imaging": Finding(0.75, 0.63, 0.35, "assumption: degeneration is common at any age"),
}

# Comorbidities at their base rates in every condition (adults with chronic pain); conditions
# override the ones that define them. Depression, anxiety and sleep disturbance rates: Bair 2003,
# Arch Intern Med (approx.); others assumption from population prevalence.
COMORBIDITY_BASE = {
    "diabetes": 0.12,
    "prior_herpes_zoster": 0.08,
    "neurotoxic_chemotherapy": 0.02,
    "spinal_cord_injury": 0.004,
    "multiple_sclerosis": 0.005,
    "stroke": 0.03,
    "nerve_injury_or_surgery": 0.05,
    "hiv": 0.004,
    "alcohol_use_disorder": 0.05,
    "vitamin_b12_deficiency": 0.04,
    "osteoarthritis": 0.25,
    "rheumatoid_arthritis": 0.02,
    "cancer": 0.06,
    "recent_surgery": 0.08,
    "depression": 0.30,
    "anxiety": 0.25,
    "sleep_disturbance": 0.50,
}
# HbA1c is measured in most diabetics and some others; it depends on diabetes only, so it
# informs the mechanism only through diabetes (assumption: ADA ranges).
HBA1C = {"diabetic": (7.6, 1.3, 0.75), "non_diabetic": (5.4, 0.35, 0.15)}  # mean, sd, P(measured)

# Record keeping. Examination items are sometimes not done (ignorable, at random); a whole
# examination is sometimes not done at all (assumption).
EXAM_NOT_DONE = 0.08
EXAM_ITEM_NOT_DONE = 0.12
DN4_EXAM_ITEM_NOT_DONE = 0.04  # DN4 sites examine its three items routinely
AGE_RANGE = (18, 105)
DURATION_RANGE_MONTHS = (3, 360)
DURATION_SPREAD = 0.9  # lognormal sigma (assumption)

_FOOT = {"lower_limb": 0.85, "upper_limb": 0.05, "widespread": 0.10}
_LIMBS = {"lower_limb": 0.55, "upper_limb": 0.25, "widespread": 0.20}
_NT = {"nerve_territory": 0.80, "stocking_glove": 0.02, "localized": 0.10, "diffuse": 0.08}
_SG = {"nerve_territory": 0.10, "stocking_glove": 0.78, "localized": 0.04, "diffuse": 0.08}
_LOC = {"nerve_territory": 0.06, "stocking_glove": 0.01, "localized": 0.78, "diffuse": 0.15}
_DIF = {"nerve_territory": 0.08, "stocking_glove": 0.02, "localized": 0.35, "diffuse": 0.55}
_CENTRAL = {"nerve_territory": 0.65, "stocking_glove": 0.03, "localized": 0.07, "diffuse": 0.25}

CONDITIONS: dict[str, Condition] = {
    "painful_diabetic_neuropathy": Condition(
        (0.06, 0.80, 0.14),
        "Abbott 2011, Diabetes Care (assumption for the mix)",
        (63, 11),
        0.45,
        48,
        _FOOT,
        _SG,
        _LOC,
        comorbidities={"diabetes": 0.995},
        findings={
            "reduced_vibration": (0.20, 0.58, 0.75),
            "reduced_reflexes": (0.15, 0.46, 0.60),
            "trophic_skin_changes": (0.10, 0.40, 0.50),
            **DIABETIC_NEUROPATHY_PAINDETECT,
        },
        test_order={"nerve_conduction": (0.20, 0.45, 0.55), "skin_biopsy": (0.01, 0.09, 0.12)},
        test_abnormal={"nerve_conduction": (0.40, 0.71, 0.85)},
    ),
    "postherpetic_neuralgia": Condition(
        (0.03, 0.88, 0.09),
        "pooled cohorts 2015: 21% of zoster >= 50 develop PHN",
        (71, 9),
        0.60,
        18,
        {"trunk": 0.65, "head_face": 0.25, "upper_limb": 0.05, "lower_limb": 0.05},
        _NT,
        _LOC,
        comorbidities={"prior_herpes_zoster": 0.99},
        findings={
            "brush_allodynia": (0.10, 0.48, 0.65),
            "itching": (0.10, 0.31, 0.40),
            **POSTHERPETIC_PAINDETECT,
        },
    ),
    "chemotherapy_induced_neuropathy": Condition(
        (0.06, 0.78, 0.16),
        "Seretny 2014, Pain: 30% neuropathy at >= 6 months",
        (60, 11),
        0.62,
        14,
        _FOOT,
        _SG,
        _DIF,
        comorbidities={"neurotoxic_chemotherapy": 0.99, "cancer": 0.97},
        findings={"reduced_vibration": (0.20, 0.55, 0.70), "reduced_reflexes": (0.15, 0.43, 0.55)},
        test_order={"nerve_conduction": (0.15, 0.36, 0.45)},
    ),
    "spinal_cord_injury_pain": Condition(
        (0.30, 0.53, 0.17),
        "Burke 2017, Eur J Pain: 53% neuropathic",
        (48, 15),
        0.22,
        96,
        {"lower_limb": 0.35, "trunk": 0.25, "widespread": 0.25, "back": 0.15},
        _CENTRAL,
        _DIF,
        comorbidities={"spinal_cord_injury": 0.99},
        findings={
            "motor_weakness": (0.60, 0.70, 0.75),
            "reduced_reflexes": (0.30, 0.37, 0.40),
            "painful_cold": CENTRAL_PAINFUL_COLD,
            **CENTRAL_PAINDETECT,
        },
        test_order={"neural_imaging": (0.30, 0.44, 0.50)},
        test_abnormal={"neural_imaging": (0.70, 0.80, 0.85)},
    ),
    "multiple_sclerosis_pain": Condition(
        (0.45, 0.40, 0.15),
        "Foley 2013, Pain: 26% neuropathic of 63% with pain",
        (46, 11),
        0.72,
        60,
        {"lower_limb": 0.40, "widespread": 0.25, "back": 0.15, "head_face": 0.10, "upper_limb": 0.10},
        _CENTRAL,
        _DIF,
        comorbidities={"multiple_sclerosis": 0.99},
        findings={"motor_weakness": (0.40, 0.51, 0.55), "painful_cold": CENTRAL_PAINFUL_COLD, **CENTRAL_PAINDETECT},
        test_order={"neural_imaging": (0.30, 0.44, 0.50)},
        test_abnormal={"neural_imaging": (0.60, 0.74, 0.80)},
    ),
    "central_post_stroke_pain": Condition(
        (0.06, 0.82, 0.12),
        "Klit 2011, Pain: 7-8% of stroke (assumption for the mix)",
        (68, 11),
        0.45,
        30,
        {"upper_limb": 0.35, "lower_limb": 0.20, "widespread": 0.30, "head_face": 0.15},
        _CENTRAL,
        _LOC,
        comorbidities={"stroke": 0.99},
        findings={
            "motor_weakness": (0.50, 0.57, 0.60),
            "cold_allodynia": (0.05, 0.29, 0.40),
            "painful_cold": CENTRAL_PAINFUL_COLD,
            **CENTRAL_PAINDETECT,
        },
        test_order={"neural_imaging": (0.40, 0.54, 0.60)},
        test_abnormal={"neural_imaging": (0.70, 0.80, 0.85)},
    ),
    "post_traumatic_nerve_injury": Condition(
        (0.08, 0.72, 0.20),
        "Haroutounian 2013, Pain (assumption for the mix)",
        (44, 14),
        0.45,
        24,
        _LIMBS,
        _NT,
        _LOC,
        comorbidities={"nerve_injury_or_surgery": 0.95},
        findings={"tinel_sign": (0.10, 0.42, 0.55), "trophic_skin_changes": (0.10, 0.40, 0.50)},
        test_order={"nerve_conduction": (0.20, 0.41, 0.50), "electromyography": (0.10, 0.27, 0.35)},
    ),
    "lumbar_radiculopathy": Condition(
        (0.14, 0.46, 0.40),
        "Yamashita 2014, J Orthop Sci: 57% of radiculopathy neuropathic",
        (52, 13),
        0.48,
        12,
        {"back": 0.55, "lower_limb": 0.45},
        _NT,
        _LOC,
        findings={
            "positive_neurodynamic_test": (0.20, 0.55, 0.70),
            "radiating_pain": (0.55, 0.72, 0.80),
            "reduced_reflexes": (0.10, 0.31, 0.40),
            "motor_weakness": (0.05, 0.22, 0.30),
            **RADICULOPATHY_PAINDETECT,
        },
        test_order={"neural_imaging": (0.35, 0.52, 0.60), "electromyography": (0.05, 0.16, 0.20)},
        test_abnormal={"neural_imaging": (0.40, 0.68, 0.80)},
    ),
    "cervical_radiculopathy": Condition(
        (0.15, 0.50, 0.35),
        "Yamashita 2014, J Orthop Sci (assumption for the mix)",
        (51, 11),
        0.50,
        10,
        {"neck": 0.55, "upper_limb": 0.45},
        _NT,
        _LOC,
        findings={
            "positive_neurodynamic_test": (0.20, 0.52, 0.65),
            "radiating_pain": (0.55, 0.72, 0.80),
            "reduced_reflexes": (0.10, 0.27, 0.35),
            "motor_weakness": (0.05, 0.22, 0.30),
            **RADICULOPATHY_PAINDETECT,
        },
        test_order={"neural_imaging": (0.35, 0.52, 0.60), "electromyography": (0.05, 0.16, 0.20)},
        test_abnormal={"neural_imaging": (0.40, 0.68, 0.80)},
    ),
    "chronic_low_back_pain": Condition(
        (0.64, 0.12, 0.24),
        "Foerster 2013: 12% neuropathic in axial low back pain",
        (50, 14),
        0.55,
        48,
        {"back": 0.95, "widespread": 0.05},
        _NT,
        _LOC,
        # Somatic referred pain into buttock and thigh answers the radiating question too, and nociceptive back pain
        # reports more neuropathic-like symptoms than other nociceptive pain (Freynhagen 2006: 37% of 8,000 back
        # pain patients score >= 19). Assumptions; targets 3 and 4 (case-control specificity near the published 80%).
        findings={
            "radiating_pain": (0.40, 0.60, 0.70),
            "pd_burning": (0.29, 0.49, 0.59),
            "pd_tingling_prickling": (0.32, 0.52, 0.63),
            "pd_numbness": (0.31, 0.50, 0.61),
            "pd_sudden_attacks": (0.33, 0.47, 0.55),
            "pd_pressure_painful": (0.52, 0.48, 0.40),
        },
        test_order={"joint_imaging": (0.35, 0.33, 0.30)},
        test_abnormal={"joint_imaging": (0.55, 0.55, 0.55)},
    ),
    "knee_osteoarthritis": Condition(
        (0.68, 0.04, 0.28),
        "Zolio 2021, Osteoarthritis Cartilage: painDETECT >= 19 in 20%",
        (67, 9),
        0.62,
        60,
        {"lower_limb": 1.0},
        _NT,
        _LOC,
        comorbidities={"osteoarthritis": 0.97},
        findings={
            "joint_swelling": (0.45, 0.41, 0.30),
            "stiffness": (0.75, 0.68, 0.50),
            # intermittent intense pain is part of knee and hip OA (Hawker 2008, Osteoarthritis Cartilage,
            # OARSI/OMERACT), so attacks are as common as in radiculopathy (Nikaido 2018: attacks -4 once numbness
            # is known); pressure hyperalgesia is common in knee OA (Moss 2018) but a little below the spine's
            # pressure-evoked pain (Nikaido +1; Mahn 2011); touch-evoked and thermal pain low (Nikaido -2, -3).
            # Assumptions; target 14.
            "pd_pressure_painful": (0.48, 0.52, 0.52),
            "pd_temperature_painful": (0.15, 0.34, 0.42),
            "pd_sudden_attacks": (0.44, 0.50, 0.55),
            # knee OA keeps the pooled nociceptive levels and a milder mixed profile: Zolio 2021 (meta-analysis):
            # painDETECT >= 13 in 40%, >= 19 in 20% of knee OA (target 3); Moss 2018, Clin J Pain (130 patients):
            # 22% >= 19 and 35% unclear; Blikman 2018, PLoS One: modified painDETECT > 12 in 46%. Knee OA reports
            # more cutaneous neuropathic-like symptoms than hip OA (HIP_OA_PAINDETECT). Rates are assumptions.
            "pd_burning": (0.22, 0.40, 0.59),
            "pd_tingling_prickling": (0.25, 0.43, 0.63),
            "pd_numbness": (0.23, 0.41, 0.61),
            "pd_light_touch_painful": (0.13, 0.32, 0.49),
            "radiating_pain": OA_RADIATING,
        },
        test_order={"joint_imaging": (0.75, 0.73, 0.70)},
        test_abnormal={"joint_imaging": (0.90, 0.90, 0.90)},
    ),
    "hip_osteoarthritis": Condition(
        (0.80, 0.02, 0.18),
        "Zolio 2021: hip painDETECT >= 19 in 9%",
        (67, 9),
        0.58,
        48,
        {"lower_limb": 0.85, "back": 0.15},
        _NT,
        _LOC,
        comorbidities={"osteoarthritis": 0.97},
        findings={
            "stiffness": (0.75, 0.68, 0.50),
            "radiating_pain": HIP_OA_RADIATING,
            **HIP_OA_PAINDETECT,
        },
        test_order={"joint_imaging": (0.75, 0.73, 0.70)},
        test_abnormal={"joint_imaging": (0.90, 0.90, 0.90)},
    ),
    "rheumatoid_arthritis": Condition(
        (0.80, 0.04, 0.16),
        "assumption: inflammatory joint pain, some neuropathy",
        (57, 13),
        0.72,
        84,
        {"upper_limb": 0.40, "lower_limb": 0.25, "widespread": 0.35},
        _SG,
        _DIF,
        comorbidities={"rheumatoid_arthritis": 0.99},
        findings={"joint_swelling": (0.70, 0.61, 0.40), "stiffness": (0.80, 0.71, 0.50)},
        test_order={"joint_imaging": (0.55, 0.54, 0.50)},
        test_abnormal={"joint_imaging": (0.80, 0.80, 0.80)},
    ),
    "post_surgical_pain": Condition(
        (0.45, 0.30, 0.25),
        "Haroutounian 2013, Pain: 6-68% neuropathic by operation",
        (56, 14),
        0.58,
        10,
        {"trunk": 0.40, "lower_limb": 0.30, "upper_limb": 0.15, "back": 0.15},
        _NT,
        _LOC,
        comorbidities={"recent_surgery": 0.85, "nerve_injury_or_surgery": 0.30},
        findings={"tinel_sign": (0.05, 0.22, 0.30)},
    ),
    "cancer_pain": Condition(
        (0.61, 0.19, 0.20),
        "Bennett 2012, Pain: 19% neuropathic, 39% including mixed",
        (63, 12),
        0.50,
        6,
        {"back": 0.25, "trunk": 0.30, "widespread": 0.20, "lower_limb": 0.15, "head_face": 0.10},
        _NT,
        _DIF,
        comorbidities={"cancer": 0.99, "neurotoxic_chemotherapy": 0.30},
        test_order={"neural_imaging": (0.30, 0.47, 0.55), "joint_imaging": (0.25, 0.22, 0.15)},
        test_abnormal={"neural_imaging": (0.40, 0.65, 0.75)},
    ),
    "tendinopathy": Condition(
        (0.92, 0.02, 0.06),
        "assumption: local tendon pain is nociceptive",
        (45, 13),
        0.50,
        10,
        {"upper_limb": 0.50, "lower_limb": 0.50},
        _NT,
        _LOC,
        findings={"local_tenderness": (0.90, 0.78, 0.50)},
        test_order={"joint_imaging": (0.30, 0.28, 0.25)},
        test_abnormal={"joint_imaging": (0.30, 0.30, 0.30)},
    ),
}


# What a site records (``Preset.sites``). Clinics use one screening questionnaire more often than two:
# "dn4": the DN4 interview with its three examination items done routinely (Bouhassira 2005, Pain);
# "dn4_interview": the DN4 interview alone, 7 items, positive at >= 3, validated for settings without a bedside
#   examination (Bouhassira 2005; used alone in population and primary-care surveys, Bouhassira 2008, Pain), so the
#   DN4 examination items are examined at the general rate only;
# "paindetect": the self-completed painDETECT block alone (Freynhagen 2006, Curr Med Res Opin);
# "both": DN4 and painDETECT.
# A questionnaire a record lacks is left empty; the site is drawn independently of the patient, so the gap is
# ignorable and the exact posterior sums over what is recorded.
INSTRUMENTS = ("dn4", "dn4_interview", "paindetect", "both")
# Even at sites that use both, a record may carry one: the self-completed painDETECT not returned, or the DN4
# interview skipped once the form is in hand. (painDETECT alone, DN4 alone) shares of those records: assumption
# (no published return rate for clinic screening forms was found; a tenth and a twentieth).
SINGLE_QUESTIONNAIRE = (0.10, 0.05)


@dataclass(frozen=True)
class Preset:
    """A clinic's case mix, the questionnaires its sites use, how it labels and how its patients respond.

    ``label`` is "specialist" (mechanism grading with clinician disagreement) or "routine" (mostly from the
    diagnosis, ``ROUTINE_LABEL``). ``response_level`` shifts the logit of every amplified symptom item:
    published neuropathic painDETECT means differ between populations (Korean 14.6 +/- 6.5,
    US cohorts 21-24), so a clinic whose patients report less can be simulated; 0 is the level the tables are
    tuned at. ``sites`` maps each site to its share of patients and what it records (``INSTRUMENTS``);
    ``sites_source`` says where those shares come from.
    """

    case_mix: dict[str, float]
    sites: dict[str, tuple[float, str]]  # site -> (share of patients, one of INSTRUMENTS)
    source: str
    label: str = "specialist"
    label_source: str = "van Seventer 2013, Pain Pract; Timmerman 2017, PLoS One: specialist agreement 78-79%"
    response_level: float = 0.0
    sites_source: str = "assumption"


PRESETS: dict[str, Preset] = {
    "pain_clinic": Preset(
        {
            "painful_diabetic_neuropathy": 0.10,
            "postherpetic_neuralgia": 0.06,
            "chemotherapy_induced_neuropathy": 0.05,
            "spinal_cord_injury_pain": 0.02,
            "multiple_sclerosis_pain": 0.02,
            "central_post_stroke_pain": 0.03,
            "post_traumatic_nerve_injury": 0.07,
            "lumbar_radiculopathy": 0.19,
            "cervical_radiculopathy": 0.08,
            "chronic_low_back_pain": 0.11,
            "knee_osteoarthritis": 0.06,
            "hip_osteoarthritis": 0.03,
            "rheumatoid_arthritis": 0.01,
            "post_surgical_pain": 0.08,
            "cancer_pain": 0.06,
            "tendinopathy": 0.03,
        },
        {"clinic_north": (0.40, "dn4"), "clinic_south": (0.35, "paindetect"), "clinic_east": (0.25, "both")},
        "van Seventer 2013, Pain Pract: 43% neuropathic, 29% nociceptive, 28% mixed (target 6)",
        sites_source=(
            "assumption: European pain clinics use DN4 (van Seventer 2013: three Dutch clinics; Bouhassira 2005) or "
            "painDETECT (Freynhagen 2006: German clinics); a minority records both (Timmerman 2017)"
        ),
    ),
    "primary_care": Preset(
        {
            "painful_diabetic_neuropathy": 0.05,
            "postherpetic_neuralgia": 0.02,
            "post_traumatic_nerve_injury": 0.02,
            "lumbar_radiculopathy": 0.10,
            "cervical_radiculopathy": 0.04,
            "chronic_low_back_pain": 0.27,
            "knee_osteoarthritis": 0.20,
            "hip_osteoarthritis": 0.10,
            "rheumatoid_arthritis": 0.04,
            "post_surgical_pain": 0.04,
            "tendinopathy": 0.12,
        },
        {"practice_a": (0.6, "dn4_interview"), "practice_b": (0.4, "paindetect")},
        "van Hecke 2014, Pain: 7-10% of adults have chronic pain with neuropathic features",
        label="routine",
        label_source="clinical-figures.md section 5, routine labels: the label follows the diagnosis",
        sites_source=(
            "assumption: a general practice has no time for the DN4 bedside items and uses the DN4 interview alone "
            "(Bouhassira 2005, 2008) or a self-completed painDETECT; shares assumed"
        ),
    ),
    "orthopaedic": Preset(
        {
            "lumbar_radiculopathy": 0.22,
            "cervical_radiculopathy": 0.10,
            "chronic_low_back_pain": 0.22,
            "knee_osteoarthritis": 0.18,
            "hip_osteoarthritis": 0.12,
            "tendinopathy": 0.10,
            "post_surgical_pain": 0.06,
        },
        {"spine_unit": (0.45, "paindetect"), "joint_unit": (0.35, "paindetect"), "back_pain_clinic": (0.20, "both")},
        "Yamashita 2014, J Orthop Sci: 29% of low back pain, 57% of radiculopathy neuropathic",
        label="routine",
        label_source="clinical-figures.md section 5, routine labels: the label follows the diagnosis",
        sites_source=(
            "orthopaedic studies screen with painDETECT alone (Nikaido 2018 spine; Hochman 2011, Moss 2018, "
            "Blikman 2018 knee and hip OA); DN4 beside it in back pain (Attal 2011, J Pain); shares assumed"
        ),
    ),
    "diabetes_clinic": Preset(
        {
            "painful_diabetic_neuropathy": 0.45,
            "knee_osteoarthritis": 0.15,
            "hip_osteoarthritis": 0.05,
            "chronic_low_back_pain": 0.15,
            "lumbar_radiculopathy": 0.08,
            "tendinopathy": 0.07,
            "central_post_stroke_pain": 0.05,
        },
        {"diabetes_centre": (1.0, "dn4")},
        "Abbott 2011, Diabetes Care: 21% of diabetics have painful diabetic neuropathy",
        sites_source="Themistocleous 2016, Pain: DN4 with its examination in diabetic polyneuropathy",
    ),
    "oncology": Preset(
        {
            "cancer_pain": 0.60,
            "chemotherapy_induced_neuropathy": 0.25,
            "post_surgical_pain": 0.15,
        },
        {"oncology_pain_service": (0.7, "both"), "chemotherapy_day_unit": (0.3, "dn4_interview")},
        "Bennett 2012, Pain: 19% neuropathic, 39% with mixed; Seretny 2014, Pain",
        sites_source="assumption: a pain service records both; a day unit asks the DN4 interview alone",
    ),
}
