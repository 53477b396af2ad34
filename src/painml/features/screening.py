"""Published neuropathic-pain screening scores, computed from the patient record.

The instruments and the NeuPSIG grading are what clinicians use today, so
they are both features for the models and the baselines the models must beat.
Scoring follows the publications: DN4 (Bouhassira 2005), painDETECT
(Freynhagen 2006), LANSS (Bennett 2001), ID-Pain (Portenoy 2006), NeuPSIG
grading (Finnerup 2016). Item names come from :mod:`painml.record.columns`.

Scores, in the order of :data:`SCORE_NAMES` (all float64, NaN = missing):

- ``dn4`` (0-10): the 10 DN4 items, 7 interview + 3 examination.
- ``dn4_interview`` (0-7): the 7 interview items only.
- ``paindetect`` (-1..38): the 7 ``pd_*`` items (0-5) + course pattern
  (:data:`PAINDETECT_COURSE_POINTS`) + 2 if ``radiating_pain``.
- ``paindetect_band``: ordinal index into :data:`PAINDETECT_BANDS`
  (0 negative <= 12, 1 unclear 13-18, 2 positive >= 19); NaN when
  ``paindetect`` is NaN.
- ``lanss`` (0-24): LANSS is not recorded as such; each of its seven items is
  read from the closest recorded findings (:data:`LANSS_ITEMS`):

  ======================  ======  ============================================  ==========================
  LANSS item              points  recorded sources ("or")                       painDETECT fallback (>= 3)
  ======================  ======  ============================================  ==========================
  dysaesthesia            5       pins_and_needles, tingling                    pd_tingling_prickling
  autonomic skin changes  5       trophic_skin_changes                          -
  evoked pain (touch)     3       touch_evoked_pain                             pd_light_touch_painful
  paroxysmal pain         2       electric_shocks, shooting                     pd_sudden_attacks
  thermal quality         1       burning                                       pd_burning
  exam: allodynia         5       brush_allodynia                               -
  exam: altered pinprick  3       hypoesthesia_pinprick, pinprick_hyperalgesia  -
  ======================  ======  ============================================  ==========================

  An "or" item is present if any source is 1, absent if every recorded source
  is 0, missing if no source is recorded. Only when no source is recorded is
  the painDETECT item used: present at "moderately" (3) or stronger. The yes/no
  descriptor is the closer match to LANSS's yes/no question, so it wins when
  both are recorded; the fallback lets painDETECT-only sites have a LANSS.
  Examination items have no questionnaire fallback: a symptom is not a sign.
- ``id_pain`` (-1..5): +1 each for pins_and_needles, burning, numbness,
  electric_shocks, touch_evoked_pain (the ID-Pain wording of "worse with the
  touch of clothing or sheets"); -1 for "pain limited to the joints", read as
  ``pain_distribution == "localized"`` and ``pain_region`` in upper_limb or
  lower_limb. Localized back or neck pain is not counted as joint pain: the
  record cannot tell a facet joint from a muscle. The joint item is known when
  the distribution is recorded and not localized, or localized with a recorded
  region.
- ``neupsig_grade``: ordinal index into :data:`NEUPSIG_GRADES`
  (Finnerup 2016), each level requiring the one below:

  - possible (1): a history of a lesion or disease of the somatosensory system
    (any of :data:`NEUPSIG_LESION_HISTORY`, or nerve-root compromise: pain in
    ``nerve_territory`` that radiates or is provoked by a neurodynamic test)
    AND a neuroanatomically plausible distribution (``nerve_territory`` or
    ``stocking_glove``);
  - probable (2): plus a sensory sign (any of :data:`NEUPSIG_SIGNS`); the
    record places examination findings "in the painful area", so they are
    taken to lie in that distribution;
  - definite (3): plus an abnormal confirmatory test (any of
    :data:`NEUPSIG_TESTS`);
  - unlikely (0): otherwise.

Missing values. A sum score with ANY item missing is NaN, never a partial sum:
an incomplete questionnaire has no valid score in the instruments' validation
studies, and treating "not asked" as "no" would bias scores towards negative.
A column absent from the frame is an all-missing column (a DN4 site sends no
``pd_*`` block). The NeuPSIG grade instead documents what was shown: it is NaN
only when ``pain_distribution`` is missing; an unrecorded history, sign or test
simply does not raise the grade. Category values outside the allowed set of
:mod:`painml.record.columns` count as missing.

Input is a DataFrame after schema loading (findings as 1.0/0.0/NaN; bool,
nullable boolean and Int64 are accepted too). Range checks are the schema's
job; a binary finding counts as present when non-zero.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import reduce
from typing import TYPE_CHECKING

import numpy as np

from painml.record import columns
from painml.record.vocabulary import NEUPSIG_GRADES, PAINDETECT_BANDS

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DN4_INTERVIEW_POSITIVE",
    "DN4_POSITIVE",
    "ID_PAIN_POSITIVE",
    "LANSS_ITEMS",
    "LANSS_POSITIVE",
    "NEUPSIG_GRADES",
    "PAINDETECT_BANDS",
    "PAINDETECT_NEGATIVE_MAX",
    "PAINDETECT_POSITIVE",
    "POSITIVE_CUTOFFS",
    "SCORE_COLUMNS",
    "SCORE_NAMES",
    "LanssItem",
    "compute_scores",
    "score_arrays",
    "score_record",
]


def _known(*names: str) -> tuple[str, ...]:
    """Fail at import if a name drifts from the column table."""
    unknown = [n for n in names if n not in columns.BY_NAME]
    if unknown:
        raise KeyError(f"screening refers to columns not in painml.record.columns: {unknown}")
    return names


SCORE_NAMES: tuple[str, ...] = (
    "dn4",
    "dn4_interview",
    "paindetect",
    "paindetect_band",
    "lanss",
    "id_pain",
    "neupsig_grade",
)

DN4_POSITIVE = 4
DN4_INTERVIEW_POSITIVE = 3
PAINDETECT_POSITIVE = 19
PAINDETECT_NEGATIVE_MAX = 12
LANSS_POSITIVE = 12
ID_PAIN_POSITIVE = 2
POSITIVE_CUTOFFS: dict[str, int] = {
    "dn4": DN4_POSITIVE,
    "dn4_interview": DN4_INTERVIEW_POSITIVE,
    "paindetect": PAINDETECT_POSITIVE,
    "lanss": LANSS_POSITIVE,
    "id_pain": ID_PAIN_POSITIVE,
}
"""Published "screen positive" thresholds: score >= cut-off."""

DN4_INTERVIEW_ITEMS = _known(*(c.name for c in columns.DN4_INTERVIEW))
DN4_ITEMS = DN4_INTERVIEW_ITEMS + _known("hypoesthesia_touch", "hypoesthesia_pinprick", "brush_allodynia")
PAINDETECT_ITEMS = _known(*(c.name for c in columns.PAINDETECT))
PAINDETECT_COURSE_POINTS: dict[str, int] = {
    "persistent_slight_fluctuation": 0,
    "persistent_with_attacks": -1,
    "attacks_pain_free_between": 1,
    "attacks_pain_between": 1,
}
PAINDETECT_RADIATING_POINTS = 2


@dataclass(frozen=True)
class LanssItem:
    """One LANSS item: its weight and the recorded findings that stand for it."""

    name: str
    points: int
    sources: tuple[str, ...]
    paindetect_fallback: str | None = None


LANSS_PAINDETECT_FALLBACK_MIN = 3
"""painDETECT level ("moderately") from which a fallback item counts as present."""

LANSS_ITEMS: tuple[LanssItem, ...] = (
    LanssItem("dysaesthesia", 5, _known("pins_and_needles", "tingling"), "pd_tingling_prickling"),
    LanssItem("autonomic_skin_changes", 5, _known("trophic_skin_changes")),
    LanssItem("evoked_pain", 3, _known("touch_evoked_pain"), "pd_light_touch_painful"),
    LanssItem("paroxysmal_pain", 2, _known("electric_shocks", "shooting"), "pd_sudden_attacks"),
    LanssItem("thermal_quality", 1, _known("burning"), "pd_burning"),
    LanssItem("allodynia_exam", 5, _known("brush_allodynia")),
    LanssItem("altered_pinprick_threshold", 3, _known("hypoesthesia_pinprick", "pinprick_hyperalgesia")),
)

ID_PAIN_ITEMS = _known("pins_and_needles", "burning", "numbness", "electric_shocks", "touch_evoked_pain")
ID_PAIN_JOINT_REGIONS: tuple[str, ...] = ("lower_limb", "upper_limb")

NEUPSIG_LESION_HISTORY = _known(
    "diabetes",
    "prior_herpes_zoster",
    "neurotoxic_chemotherapy",
    "spinal_cord_injury",
    "multiple_sclerosis",
    "stroke",
    "nerve_injury_or_surgery",
    "hiv",
    "alcohol_use_disorder",
    "vitamin_b12_deficiency",
)
NEUPSIG_ROOT_COMPROMISE = _known("radiating_pain", "positive_neurodynamic_test")
NEUPSIG_PLAUSIBLE_DISTRIBUTIONS: tuple[str, ...] = ("nerve_territory", "stocking_glove")
NEUPSIG_SIGNS = _known(
    "hypoesthesia_touch",
    "hypoesthesia_pinprick",
    "brush_allodynia",
    "cold_allodynia",
    "pinprick_hyperalgesia",
    "reduced_vibration",
)
NEUPSIG_TESTS = _known("nerve_conduction", "electromyography", "neural_imaging", "skin_biopsy")

SCORE_COLUMNS: dict[str, tuple[str, ...]] = {
    "dn4": DN4_ITEMS,
    "dn4_interview": DN4_INTERVIEW_ITEMS,
    "paindetect": PAINDETECT_ITEMS + _known("pain_course", "radiating_pain"),
    "paindetect_band": PAINDETECT_ITEMS + ("pain_course", "radiating_pain"),
    "lanss": tuple(
        dict.fromkeys(
            s
            for item in LANSS_ITEMS
            for s in (*item.sources, *((item.paindetect_fallback,) if item.paindetect_fallback else ()))
        )
    ),
    "id_pain": ID_PAIN_ITEMS + _known("pain_distribution", "pain_region"),
    "neupsig_grade": tuple(
        dict.fromkeys(
            ("pain_distribution", *NEUPSIG_LESION_HISTORY, *NEUPSIG_ROOT_COMPROMISE, *NEUPSIG_SIGNS, *NEUPSIG_TESTS)
        )
    ),
}
"""The record columns each score reads (e.g. to tell which instrument a site used)."""


class _Record:
    """Reads item columns as numpy arrays, cached; an absent column reads as all-missing.

    ``frame`` is a DataFrame or a mapping of column name to 1-D array of
    ``n`` rows (the one-record serving path, which must not pay for pandas).
    """

    # Below this many rows, categories are coded by a dict lookup: pd.factorize
    # and np.isin cost tens of microseconds each even on one row.
    _SMALL = 64

    def __init__(self, frame: pd.DataFrame | Mapping[str, np.ndarray], n: int | None = None) -> None:
        if not isinstance(frame, Mapping):  # a DataFrame
            if not frame.columns.is_unique:
                duplicated = sorted(map(str, frame.columns[frame.columns.duplicated()].unique()))
                raise ValueError(f"screening: duplicated column names {duplicated}")
            n = len(frame)
        elif n is None:
            n = len(next(iter(frame.values()))) if frame else 0
        self._frame = frame
        self.n = n
        self._values: dict[str, np.ndarray] = {}
        self._codes: dict[str, np.ndarray] = {}
        self.scores: dict[str, np.ndarray] = {}

    def value(self, name: str) -> np.ndarray:
        """The column as float64 with NaN for missing (painDETECT levels as recorded)."""
        if name not in self._values:
            if name not in self._frame:
                self._values[name] = np.full(self.n, np.nan)
            elif self._frame[name].dtype == np.float64:
                self._values[name] = np.asarray(self._frame[name])
            else:
                # lazy: scoring one patient computes the scores without pandas
                import pandas as pd

                try:
                    numeric = pd.to_numeric(self._frame[name], errors="raise")
                except (ValueError, TypeError) as error:
                    raise ValueError(
                        f"screening: column {name!r} must be numeric (findings 1/0, levels 0-5); "
                        f"load records through the schema first ({error})"
                    ) from error
                if isinstance(numeric, pd.Series):
                    numeric = numeric.to_numpy(dtype="float64", na_value=np.nan)
                self._values[name] = np.asarray(numeric, dtype=np.float64)
        return self._values[name]

    def finding(self, name: str) -> np.ndarray:
        """A binary finding as 1.0 present / 0.0 absent / NaN missing."""
        v = self.value(name)
        return np.where(np.isnan(v), v, (v != 0).astype(np.float64))

    def shown(self, name: str) -> np.ndarray:
        """True only where the finding is recorded as present."""
        return self.value(name) > 0  # NaN compares False

    def code(self, name: str) -> np.ndarray:
        """A category column as indices into its allowed values; -1 where missing, unknown or absent."""
        if name not in self._codes:
            allowed = columns.BY_NAME[name].allowed
            if name not in self._frame:
                self._codes[name] = np.full(self.n, -1, dtype=np.int8)
            elif self.n <= self._SMALL:
                position = {value: i for i, value in enumerate(allowed)}
                cells = self._frame[name]
                self._codes[name] = np.array(
                    [position.get(v, -1) if isinstance(v, str) else -1 for v in cells], dtype=np.int8
                ).reshape(self.n)
            else:
                # lazy: scoring one patient computes the scores without pandas
                import pandas as pd

                codes, uniques = pd.factorize(self._frame[name])  # one hash pass; NaN -> -1
                lookup = [allowed.index(u) if u in allowed else -1 for u in uniques]
                self._codes[name] = np.array([*lookup, -1], dtype=np.int8)[codes]
        return self._codes[name]

    def is_in(self, name: str, values: tuple[str, ...]) -> np.ndarray:
        """Where a category column holds one of ``values`` (False where missing)."""
        allowed = columns.BY_NAME[name].allowed
        code = self.code(name)
        inside = code == allowed.index(values[0])
        for value in values[1:]:
            inside |= code == allowed.index(value)
        return inside

    def known(self, name: str) -> np.ndarray:
        """Where a category column holds an allowed value; anything else is missing."""
        return self.code(name) >= 0

    def any_of(self, names: Sequence[str]) -> np.ndarray:
        """An "or" item: 1 if any source is 1, 0 if all recorded are 0, NaN if none recorded."""
        present = np.zeros(self.n, dtype=bool)
        recorded = np.zeros(self.n, dtype=bool)
        for name in names:
            v = self.value(name)
            present |= v > 0
            recorded |= ~np.isnan(v)
        return np.where(present, 1.0, np.where(recorded, 0.0, np.nan))


def _any(masks: Iterable[np.ndarray]) -> np.ndarray:
    return reduce(np.logical_or, masks)


def _sum(items: Iterable[np.ndarray]) -> np.ndarray:
    """Row sums that stay NaN if any item is NaN (no partial questionnaires)."""
    return reduce(np.add, items)


def _dn4(record: _Record) -> np.ndarray:
    return _sum(record.finding(n) for n in DN4_ITEMS)


def _dn4_interview(record: _Record) -> np.ndarray:
    return _sum(record.finding(n) for n in DN4_INTERVIEW_ITEMS)


def _paindetect(record: _Record) -> np.ndarray:
    course = np.zeros(record.n)
    for pattern, points in PAINDETECT_COURSE_POINTS.items():
        if points:
            course += points * record.is_in("pain_course", (pattern,))
    course[~record.known("pain_course")] = np.nan
    radiating = PAINDETECT_RADIATING_POINTS * record.finding("radiating_pain")
    return _sum([*(record.value(n) for n in PAINDETECT_ITEMS), course, radiating])


def _paindetect_band(record: _Record) -> np.ndarray:
    total = record.scores["paindetect"] if "paindetect" in record.scores else _paindetect(record)
    band = np.where(total >= PAINDETECT_POSITIVE, 2.0, np.where(total <= PAINDETECT_NEGATIVE_MAX, 0.0, 1.0))
    return np.where(np.isnan(total), np.nan, band)


def _lanss(record: _Record) -> np.ndarray:
    points = []
    for item in LANSS_ITEMS:
        present = record.any_of(item.sources)
        if item.paindetect_fallback is not None:
            level = record.value(item.paindetect_fallback)
            fallback = np.where(level >= LANSS_PAINDETECT_FALLBACK_MIN, 1.0, np.where(np.isnan(level), np.nan, 0.0))
            present = np.where(np.isnan(present), fallback, present)
        points.append(item.points * present)
    return _sum(points)


def _id_pain(record: _Record) -> np.ndarray:
    localized = record.is_in("pain_distribution", ("localized",))
    limb = record.is_in("pain_region", ID_PAIN_JOINT_REGIONS)
    joint_known = record.known("pain_distribution") & (~localized | record.known("pain_region"))
    joint_limited = np.where(joint_known, -(localized & limb).astype(np.float64), np.nan)
    return _sum([*(record.finding(n) for n in ID_PAIN_ITEMS), joint_limited])


def _neupsig_grade(record: _Record) -> np.ndarray:
    plausible = record.is_in("pain_distribution", NEUPSIG_PLAUSIBLE_DISTRIBUTIONS)
    in_nerve_territory = record.is_in("pain_distribution", ("nerve_territory",))
    root_compromise = in_nerve_territory & _any(record.shown(n) for n in NEUPSIG_ROOT_COMPROMISE)
    history = root_compromise | _any(record.shown(n) for n in NEUPSIG_LESION_HISTORY)
    possible = history & plausible
    probable = possible & _any(record.shown(n) for n in NEUPSIG_SIGNS)
    definite = probable & _any(record.is_in(n, ("abnormal",)) for n in NEUPSIG_TESTS)
    grade = possible.astype(np.float64) + probable + definite
    grade[~record.known("pain_distribution")] = np.nan
    return grade


_SCORERS = {
    "dn4": _dn4,
    "dn4_interview": _dn4_interview,
    "paindetect": _paindetect,
    "paindetect_band": _paindetect_band,
    "lanss": _lanss,
    "id_pain": _id_pain,
    "neupsig_grade": _neupsig_grade,
}


def check_score_names(scores: Sequence[str] | None) -> tuple[str, ...]:
    if scores is None:
        return SCORE_NAMES
    if isinstance(scores, str):
        raise ValueError(f"scores must be a sequence of score names, not the string {scores!r}")
    selected = tuple(scores)
    if not selected:
        raise ValueError(f"scores selects nothing; choose from {', '.join(SCORE_NAMES)}")
    unknown = [s for s in selected if s not in _SCORERS]
    if unknown:
        raise ValueError(f"unknown screening score(s) {unknown}; valid names are {', '.join(SCORE_NAMES)}")
    if len(set(selected)) != len(selected):
        raise ValueError(f"scores names a score twice: {list(selected)}")
    return selected


def compute_scores(frame: pd.DataFrame, scores: Sequence[str] | None = None) -> pd.DataFrame:
    """Score every row of ``frame``; no fitting needed.

    Returns float64 columns ``scores`` (default :data:`SCORE_NAMES`) on
    ``frame``'s index. Columns are read by name; absent ones are all-missing.
    """
    # lazy: scoring one patient computes the scores without pandas
    import pandas as pd

    return pd.DataFrame(score_arrays(frame, scores), index=frame.index)


def score_arrays(
    frame: pd.DataFrame | Mapping[str, np.ndarray], scores: Sequence[str] | None = None, n: int | None = None
) -> dict[str, np.ndarray]:
    """:func:`compute_scores` as a dict of float64 arrays, from a frame or a mapping of column arrays.

    The mapping form (name -> 1-D array of ``n`` rows: findings and levels as
    float64, categories as text or NaN) skips pandas entirely; the one-record
    serving path uses it. Both forms give the same numbers.
    """
    selected = check_score_names(scores)
    record = _Record(frame, n)
    for name in selected:
        record.scores[name] = _SCORERS[name](record)
    return {name: record.scores[name] for name in selected}


def score_record(record: Mapping[str, object], scores: Sequence[str] | None = None) -> dict[str, float]:
    """The scores of ONE record, in plain Python: the same numbers as :func:`compute_scores`.

    For the one-record serving path, where numpy's per-call overhead on
    one-element arrays costs more than the arithmetic (about 30 us here
    against 400 us). ``record`` maps column names to floats (NaN or absent
    for missing) and category texts; the rules are those above, read from the
    same tables, and a test checks both functions agree on many records.
    """
    selected = check_score_names(scores)
    value = _ScalarRecord(record)
    out: dict[str, float] = {}
    for name in selected:
        out[name] = float(_SCALAR_SCORERS[name](value))
    return out


class _ScalarRecord:
    """The scalar twin of :class:`_Record`."""

    __slots__ = ("_record",)

    def __init__(self, record: Mapping[str, object]) -> None:
        self._record = record

    def value(self, name: str) -> float:
        v = self._record.get(name)
        return math.nan if v is None else float(v)  # type: ignore[arg-type]

    def finding(self, name: str) -> float:
        v = self.value(name)
        return v if v != v else (1.0 if v != 0 else 0.0)

    def shown(self, name: str) -> bool:
        return self.value(name) > 0

    def is_in(self, name: str, values: tuple[str, ...]) -> bool:
        v = self._record.get(name)
        return isinstance(v, str) and v in values

    def known(self, name: str) -> bool:
        v = self._record.get(name)
        return isinstance(v, str) and v in columns.BY_NAME[name].allowed

    def any_of(self, names: Sequence[str]) -> float:
        values = [self.value(n) for n in names]
        if any(v > 0 for v in values):
            return 1.0
        return 0.0 if any(v == v for v in values) else math.nan


def _scalar_sum(items: Iterable[float]) -> float:
    return reduce(operator.add, items)


def _scalar_paindetect(r: _ScalarRecord) -> float:
    course = 0.0
    for pattern, points in PAINDETECT_COURSE_POINTS.items():
        if points:
            course += points * r.is_in("pain_course", (pattern,))
    if not r.known("pain_course"):
        course = math.nan
    radiating = PAINDETECT_RADIATING_POINTS * r.finding("radiating_pain")
    return _scalar_sum([*(r.value(n) for n in PAINDETECT_ITEMS), course, radiating])


def _scalar_paindetect_band(r: _ScalarRecord) -> float:
    total = _scalar_paindetect(r)
    if total != total:
        return math.nan
    return 2.0 if total >= PAINDETECT_POSITIVE else (0.0 if total <= PAINDETECT_NEGATIVE_MAX else 1.0)


def _scalar_lanss(r: _ScalarRecord) -> float:
    points = []
    for item in LANSS_ITEMS:
        present = r.any_of(item.sources)
        if item.paindetect_fallback is not None and present != present:
            level = r.value(item.paindetect_fallback)
            present = math.nan if level != level else (1.0 if level >= LANSS_PAINDETECT_FALLBACK_MIN else 0.0)
        points.append(item.points * present)
    return _scalar_sum(points)


def _scalar_id_pain(r: _ScalarRecord) -> float:
    localized = r.is_in("pain_distribution", ("localized",))
    limb = r.is_in("pain_region", ID_PAIN_JOINT_REGIONS)
    joint_known = r.known("pain_distribution") and (not localized or r.known("pain_region"))
    joint_limited = -float(localized and limb) if joint_known else math.nan
    return _scalar_sum([*(r.finding(n) for n in ID_PAIN_ITEMS), joint_limited])


def _scalar_neupsig_grade(r: _ScalarRecord) -> float:
    if not r.known("pain_distribution"):
        return math.nan
    plausible = r.is_in("pain_distribution", NEUPSIG_PLAUSIBLE_DISTRIBUTIONS)
    root = r.is_in("pain_distribution", ("nerve_territory",)) and any(r.shown(n) for n in NEUPSIG_ROOT_COMPROMISE)
    possible = (root or any(r.shown(n) for n in NEUPSIG_LESION_HISTORY)) and plausible
    probable = possible and any(r.shown(n) for n in NEUPSIG_SIGNS)
    definite = probable and any(r.is_in(n, ("abnormal",)) for n in NEUPSIG_TESTS)
    return float(possible) + float(probable) + float(definite)


_SCALAR_SCORERS = {
    "dn4": lambda r: _scalar_sum(r.finding(n) for n in DN4_ITEMS),
    "dn4_interview": lambda r: _scalar_sum(r.finding(n) for n in DN4_INTERVIEW_ITEMS),
    "paindetect": _scalar_paindetect,
    "paindetect_band": _scalar_paindetect_band,
    "lanss": _scalar_lanss,
    "id_pain": _scalar_id_pain,
    "neupsig_grade": _scalar_neupsig_grade,
}
