"""Screening scores: hand-worked published examples, missingness, sklearn contract."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.utils.estimator_checks import (
    check_dataframe_column_names_consistency,
    check_global_output_transform_pandas,
    check_set_output_transform,
    check_set_output_transform_pandas,
    check_transformer_get_feature_names_out,
    check_transformer_get_feature_names_out_pandas,
    parametrize_with_checks,
)

from painml.features.encoding import ScreeningScores
from painml.features.screening import (
    DN4_INTERVIEW_POSITIVE,
    DN4_POSITIVE,
    LANSS_POSITIVE,
    NEUPSIG_GRADES,
    PAINDETECT_BANDS,
    SCORE_COLUMNS,
    SCORE_NAMES,
    compute_scores,
)
from painml.record import columns

NO_NAMES_WARNING = "ignore:ScreeningScores was fitted on data without"

_CATEGORY_DEFAULTS = {
    "sex": "female",
    "pain_region": "back",
    "pain_distribution": "diffuse",
    "pain_course": "persistent_slight_fluctuation",
}


def _baseline() -> dict[str, object]:
    """A complete record with every finding recorded and negative (all scores at their floor)."""
    record: dict[str, object] = {}
    for c in columns.INPUT_COLUMNS:
        if c.kind == "id":
            record[c.name] = "p1" if c.name == "patient_id" else "clinic_a"
        elif c.kind == "binary" or c.block == "paindetect":
            record[c.name] = 0.0
        elif c.block == "tests":
            record[c.name] = "normal"
        elif c.kind == "category":
            record[c.name] = _CATEGORY_DEFAULTS[c.name]
        else:
            record[c.name] = float(c.low or 0)
    return record


def _frame(**overrides: object) -> pd.DataFrame:
    return pd.DataFrame([_baseline() | overrides])


def _score(name: str, **overrides: object) -> float:
    return float(compute_scores(_frame(**overrides))[name].iloc[0])


ALL_PD = {name: 3.0 for name in SCORE_COLUMNS["paindetect"] if name.startswith("pd_")}
MAX_PD = dict.fromkeys(ALL_PD, 5.0)
LANSS_ALL = dict(
    pins_and_needles=1.0,
    trophic_skin_changes=1.0,
    touch_evoked_pain=1.0,
    electric_shocks=1.0,
    burning=1.0,
    brush_allodynia=1.0,
    hypoesthesia_pinprick=1.0,
)

# (score, overrides, expected); the comment is the published arithmetic.
HAND_WORKED = {
    # DN4: 1 point per item present.
    "dn4_four_items": ("dn4", dict(burning=1.0, tingling=1.0, numbness=1.0, brush_allodynia=1.0), 4),  # 1+1+1+1
    "dn4_interview_three": ("dn4_interview", dict(burning=1.0, tingling=1.0, numbness=1.0, brush_allodynia=1.0), 3),
    "dn4_none": ("dn4", {}, 0),
    "dn4_all_ten": ("dn4", dict.fromkeys(SCORE_COLUMNS["dn4"], 1.0), 10),  # 7 interview + 3 exam
    "dn4_interview_all_seven": ("dn4_interview", dict.fromkeys(SCORE_COLUMNS["dn4"], 1.0), 7),  # exam items ignored
    # painDETECT: 7 items 0-5 + course (0/-1/+1/+1) + radiating 2.
    "pd_all_3_attacks_radiating": (
        "paindetect",
        ALL_PD | dict(pain_course="persistent_with_attacks", radiating_pain=1.0),
        22,  # 7*3 - 1 + 2
    ),
    "pd_band_positive_22": (
        "paindetect_band",
        ALL_PD | dict(pain_course="persistent_with_attacks", radiating_pain=1.0),
        2,  # 22 >= 19
    ),
    "pd_minimum": ("paindetect", dict(pain_course="persistent_with_attacks"), -1),  # 0 - 1 + 0
    "pd_maximum": (
        "paindetect",
        MAX_PD | dict(pain_course="attacks_pain_free_between", radiating_pain=1.0),
        38,  # 7*5 + 1 + 2
    ),
    "pd_attacks_with_pain": ("paindetect", dict(pain_course="attacks_pain_between"), 1),  # 0 + 1
    "pd_12": ("paindetect", dict(pd_burning=5.0, pd_tingling_prickling=5.0, pd_numbness=2.0), 12),  # 5+5+2+0
    "pd_band_12_negative": ("paindetect_band", dict(pd_burning=5.0, pd_tingling_prickling=5.0, pd_numbness=2.0), 0),
    "pd_band_13_unclear": (  # 5+5+2 + 1 (attacks with pain between) = 13
        "paindetect_band",
        dict(pd_burning=5.0, pd_tingling_prickling=5.0, pd_numbness=2.0, pain_course="attacks_pain_between"),
        1,
    ),
    "pd_18": (
        "paindetect",
        dict(pd_burning=5.0, pd_tingling_prickling=5.0, pd_numbness=5.0, pd_sudden_attacks=1.0, radiating_pain=1.0),
        18,  # 5+5+5+1 + 0 + 2
    ),
    "pd_band_18_unclear": (
        "paindetect_band",
        dict(pd_burning=5.0, pd_tingling_prickling=5.0, pd_numbness=5.0, pd_sudden_attacks=1.0, radiating_pain=1.0),
        1,
    ),
    "pd_band_19_positive": (  # 16 + 1 (attacks, pain-free between) + 2 = 19
        "paindetect_band",
        dict(
            pd_burning=5.0,
            pd_tingling_prickling=5.0,
            pd_numbness=5.0,
            pd_sudden_attacks=1.0,
            radiating_pain=1.0,
            pain_course="attacks_pain_free_between",
        ),
        2,
    ),
    # LANSS: dysaesthesia 5, autonomic 5, evoked 3, paroxysmal 2, thermal 1, allodynia 5, pinprick 3.
    "lanss_maximum": ("lanss", LANSS_ALL, 24),  # 5+5+3+2+1+5+3
    "lanss_exactly_12": ("lanss", dict(tingling=1.0, brush_allodynia=1.0, shooting=1.0), 12),  # 5+5+2
    "lanss_11": ("lanss", dict(pins_and_needles=1.0, pinprick_hyperalgesia=1.0, touch_evoked_pain=1.0), 11),  # 5+3+3
    "lanss_none": ("lanss", {}, 0),
    # ID-Pain: +1 per descriptor, -1 if limited to the joints.
    "id_pain_joint_only": ("id_pain", dict(pain_distribution="localized", pain_region="lower_limb"), -1),  # 0 - 1
    "id_pain_all_five": (
        "id_pain",
        dict(pins_and_needles=1.0, burning=1.0, numbness=1.0, electric_shocks=1.0, touch_evoked_pain=1.0),
        5,  # 1+1+1+1+1, diffuse pain is not joint-limited
    ),
    "id_pain_localized_back_not_joint": ("id_pain", dict(pain_distribution="localized", pain_region="back"), 0),
    "id_pain_joint_two_descriptors": (  # 1 + 1 - 1
        "id_pain",
        dict(pins_and_needles=1.0, burning=1.0, pain_distribution="localized", pain_region="upper_limb"),
        1,
    ),
    # NeuPSIG: possible = lesion history + plausible distribution; probable + sign; definite + test.
    "neupsig_definite_diabetic": (
        "neupsig_grade",
        dict(diabetes=1.0, pain_distribution="stocking_glove", hypoesthesia_touch=1.0, nerve_conduction="abnormal"),
        3,
    ),
    "neupsig_probable_no_test": (
        "neupsig_grade",
        dict(diabetes=1.0, pain_distribution="stocking_glove", hypoesthesia_touch=1.0),
        2,
    ),
    "neupsig_probable_test_not_done": (
        "neupsig_grade",
        dict(diabetes=1.0, pain_distribution="stocking_glove", hypoesthesia_touch=1.0, nerve_conduction=np.nan),
        2,
    ),
    "neupsig_possible_postherpetic": (
        "neupsig_grade",
        dict(prior_herpes_zoster=1.0, pain_distribution="nerve_territory", pain_region="trunk"),
        1,
    ),
    "neupsig_unlikely_knee": (
        "neupsig_grade",
        dict(pain_distribution="localized", pain_region="lower_limb", osteoarthritis=1.0),
        0,  # no lesion, not a plausible distribution
    ),
    "neupsig_lesion_but_diffuse": ("neupsig_grade", dict(diabetes=1.0, pain_distribution="diffuse"), 0),
    "neupsig_territory_without_history": ("neupsig_grade", dict(pain_distribution="nerve_territory"), 0),
    "neupsig_signs_tests_without_history": (  # hierarchical: signs and tests cannot replace the history
        "neupsig_grade",
        dict(pain_distribution="stocking_glove", hypoesthesia_touch=1.0, nerve_conduction="abnormal"),
        0,
    ),
    "neupsig_radicular_definite": (  # root compromise: neurodynamic test in nerve territory
        "neupsig_grade",
        dict(
            pain_distribution="nerve_territory",
            positive_neurodynamic_test=1.0,
            hypoesthesia_pinprick=1.0,
            neural_imaging="abnormal",
        ),
        3,
    ),
    "neupsig_radiating_in_territory_possible": (
        "neupsig_grade",
        dict(pain_distribution="nerve_territory", radiating_pain=1.0),
        1,
    ),
    "neupsig_radiating_stocking_glove_no_root": (
        "neupsig_grade",
        dict(pain_distribution="stocking_glove", radiating_pain=1.0),
        0,
    ),
}


@pytest.mark.parametrize(("score", "overrides", "expected"), HAND_WORKED.values(), ids=HAND_WORKED.keys())
def test_hand_worked(score: str, overrides: dict[str, object], expected: int) -> None:
    assert _score(score, **overrides) == expected


def test_cutoffs_match_hand_worked_positives() -> None:
    four = dict(burning=1.0, tingling=1.0, numbness=1.0, brush_allodynia=1.0)
    assert _score("dn4", **four) >= DN4_POSITIVE
    assert _score("dn4_interview", **four) >= DN4_INTERVIEW_POSITIVE
    assert _score("lanss", tingling=1.0, brush_allodynia=1.0, shooting=1.0) >= LANSS_POSITIVE
    assert PAINDETECT_BANDS[int(_score("paindetect_band", pain_course="persistent_with_attacks"))] == "negative"
    assert NEUPSIG_GRADES[int(_score("neupsig_grade", diabetes=1.0, pain_distribution="stocking_glove"))] == "possible"


LANSS_RULES = {
    "or_one_source_missing_other_present": (dict(pins_and_needles=np.nan, tingling=1.0), 5),
    "or_one_source_missing_other_absent": (dict(pins_and_needles=np.nan, tingling=0.0, pd_tingling_prickling=5.0), 0),
    "fallback_when_no_source_recorded": (dict(pins_and_needles=np.nan, tingling=np.nan, pd_tingling_prickling=3.0), 5),
    "fallback_below_moderately": (dict(pins_and_needles=np.nan, tingling=np.nan, pd_tingling_prickling=2.0), 0),
    "fallback_thermal": (dict(burning=np.nan, pd_burning=4.0), 1),
    "no_source_no_fallback": (dict(pins_and_needles=np.nan, tingling=np.nan, pd_tingling_prickling=np.nan), None),
    "exam_item_has_no_fallback": (dict(brush_allodynia=np.nan, pd_light_touch_painful=5.0), None),
}


@pytest.mark.parametrize(("overrides", "expected"), LANSS_RULES.values(), ids=LANSS_RULES.keys())
def test_lanss_or_items_and_paindetect_fallback(overrides: dict[str, object], expected: int | None) -> None:
    value = _score("lanss", **overrides)
    assert np.isnan(value) if expected is None else value == expected


def test_one_exam_item_missing_leaves_interview_score() -> None:
    scores = compute_scores(_frame(burning=1.0, tingling=1.0, brush_allodynia=np.nan)).iloc[0]
    assert np.isnan(scores["dn4"])
    assert scores["dn4_interview"] == 2


def test_one_interview_item_missing_voids_both_dn4_scores() -> None:
    scores = compute_scores(_frame(itching=np.nan)).iloc[0]
    assert np.isnan(scores["dn4"]) and np.isnan(scores["dn4_interview"])


def test_absent_paindetect_block() -> None:
    frame = _frame(burning=1.0).drop(columns=list(ALL_PD))
    scores = compute_scores(frame).iloc[0]
    assert np.isnan(scores["paindetect"]) and np.isnan(scores["paindetect_band"])
    assert scores["dn4"] == 1  # the DN4 block is still scored
    assert scores["lanss"] == 1  # recorded descriptors need no fallback


@pytest.mark.parametrize("column", ["pain_course", "radiating_pain", "pd_numbness"])
def test_paindetect_needs_every_item(column: str) -> None:
    scores = compute_scores(_frame(**(ALL_PD | {column: np.nan}))).iloc[0]
    assert np.isnan(scores["paindetect"]) and np.isnan(scores["paindetect_band"])


def test_no_item_columns_at_all() -> None:
    frame = pd.DataFrame({"patient_id": ["a", "b"], "age": [40.0, 70.0]}, index=[10, 11])
    scores = compute_scores(frame)
    assert list(scores.columns) == list(SCORE_NAMES)
    assert list(scores.index) == [10, 11]
    assert scores.isna().all().all()
    assert (scores.dtypes == np.float64).all()


def test_id_pain_joint_item_missingness() -> None:
    assert np.isnan(_score("id_pain", pain_distribution="localized", pain_region=np.nan))
    assert _score("id_pain", pain_distribution="diffuse", pain_region=np.nan, burning=1.0) == 1
    assert np.isnan(_score("id_pain", pain_distribution=np.nan))


def test_neupsig_missingness() -> None:
    assert np.isnan(_score("neupsig_grade", diabetes=1.0, pain_distribution=np.nan))
    unexamined = {n: np.nan for n in SCORE_COLUMNS["neupsig_grade"] if n != "pain_distribution"}
    # nothing recorded but the distribution: nothing shown, so unlikely
    assert _score("neupsig_grade", **unexamined, pain_distribution="stocking_glove") == 0
    # history shown, signs and tests not examined: possible, not missing
    assert _score("neupsig_grade", **(unexamined | dict(diabetes=1.0, pain_distribution="stocking_glove"))) == 1


def test_unknown_category_value_counts_as_missing() -> None:
    assert np.isnan(_score("paindetect", pain_course="constant"))
    assert np.isnan(_score("neupsig_grade", diabetes=1.0, pain_distribution="dermatomal"))


# converter, and whether the dtype can carry a missing value
DTYPES: dict[str, tuple[Callable[[pd.Series], pd.Series], bool]] = {
    "bool": (lambda s: s.astype(bool), False),
    "nullable_boolean": (lambda s: s.astype("boolean"), True),
    "Int64": (lambda s: s.astype("Int64"), True),
    "object": (lambda s: s.astype(object), True),
}


@pytest.mark.parametrize(("convert", "with_missing"), DTYPES.values(), ids=DTYPES.keys())
def test_binary_dtypes(convert: Callable[[pd.Series], pd.Series], with_missing: bool) -> None:
    second = dict(numbness=1.0, itching=np.nan) if with_missing else dict(numbness=1.0)
    frame = pd.concat([_frame(burning=1.0, tingling=1.0), _frame(**second)], ignore_index=True)
    binary = [c.name for c in columns.INPUT_COLUMNS if c.kind == "binary"]
    converted = frame.assign(**{n: convert(frame[n]) for n in binary})
    pd.testing.assert_frame_equal(compute_scores(converted), compute_scores(frame))


def test_non_numeric_finding_is_an_error() -> None:
    with pytest.raises(ValueError, match="'burning' must be numeric"):
        compute_scores(_frame(burning="yes"))


def test_transformer_matches_compute_scores() -> None:
    frame = pd.concat([_frame(), _frame(**LANSS_ALL), _frame(brush_allodynia=np.nan)], ignore_index=True)
    out = ScreeningScores().fit(frame).transform(frame)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, compute_scores(frame).to_numpy())


def test_feature_names_and_pandas_output() -> None:
    frame = pd.concat([_frame(), _frame(**LANSS_ALL)], ignore_index=True)
    frame.index = ["a", "b"]
    transformer = ScreeningScores().set_output(transform="pandas").fit(frame)
    assert list(transformer.get_feature_names_out()) == list(SCORE_NAMES)
    out = transformer.transform(frame)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == list(SCORE_NAMES)
    assert list(out.index) == ["a", "b"]
    assert out.loc["b", "lanss"] == 24


def test_subset_keeps_requested_order() -> None:
    frame = _frame(**LANSS_ALL)
    transformer = ScreeningScores(scores=("lanss", "dn4")).fit(frame)
    assert list(transformer.get_feature_names_out()) == ["lanss", "dn4"]
    np.testing.assert_array_equal(transformer.transform(frame), [[24.0, 5.0]])  # DN4: 5 of its items in LANSS_ALL


@pytest.mark.parametrize(
    ("scores", "message"),
    [
        (("dn4", "s_lanss"), "valid names are dn4, dn4_interview"),
        ("dn4", "not the string"),
        ((), "selects nothing"),
        (("dn4", "dn4"), "twice"),
    ],
)
def test_invalid_score_selection(scores: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ScreeningScores(scores=scores).fit(_frame())


def test_array_after_dataframe_fit_is_read_by_position() -> None:
    frame = pd.concat([_frame(**LANSS_ALL), _frame(itching=np.nan)], ignore_index=True)
    transformer = ScreeningScores().fit(frame)
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        out = transformer.transform(frame.to_numpy())
    np.testing.assert_array_equal(out, transformer.transform(frame))


def test_array_without_names_scores_nothing() -> None:
    with pytest.warns(UserWarning, match=r"without \(string\) column names"):
        transformer = ScreeningScores().fit(np.zeros((3, 4)))
    assert np.isnan(transformer.transform(np.zeros((3, 4)))).all()


def test_transform_rejects_other_columns() -> None:
    frame = _frame()
    transformer = ScreeningScores().fit(frame)
    with pytest.raises(ValueError, match="feature names should match"):
        transformer.transform(frame.drop(columns=["burning"]))


def test_names_survive_column_transformer() -> None:
    frame = pd.concat([_frame(), _frame(**LANSS_ALL)], ignore_index=True)
    items = list(dict.fromkeys(SCORE_COLUMNS["dn4"] + SCORE_COLUMNS["lanss"]))
    composed = ColumnTransformer([("screening", ScreeningScores(scores=("dn4", "lanss")), items)])
    composed.set_output(transform="pandas")
    out = composed.fit_transform(frame)
    assert list(out.columns) == ["screening__dn4", "screening__lanss"]
    assert out["screening__lanss"].tolist() == [0.0, 24.0]


def test_large_cohort_rows_stay_independent() -> None:
    """Vectorised scoring keeps each row's own result (no timing assertion: machine-dependent)."""
    frame = pd.concat([_frame(**LANSS_ALL), _frame(pain_distribution=np.nan)], ignore_index=True)
    big = frame.loc[np.tile([0, 1], 50_000)].reset_index(drop=True)
    scores = compute_scores(big)
    assert scores["lanss"].iloc[::2].eq(24).all()
    assert scores["neupsig_grade"].iloc[1::2].isna().all()


ESTIMATORS = [ScreeningScores(), ScreeningScores(scores=("dn4", "paindetect_band", "neupsig_grade"))]


@pytest.mark.filterwarnings(NO_NAMES_WARNING)
@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible(estimator: ScreeningScores, check: Callable[[ScreeningScores], None]) -> None:
    check(estimator)


@pytest.mark.filterwarnings(NO_NAMES_WARNING)
# these checks mix arrays and frames between fit and transform on purpose
@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
@pytest.mark.filterwarnings("ignore:X has feature names")
@pytest.mark.parametrize("estimator", ESTIMATORS, ids=["all", "subset"])
@pytest.mark.parametrize(
    "check",
    [
        check_dataframe_column_names_consistency,
        check_transformer_get_feature_names_out,
        check_transformer_get_feature_names_out_pandas,
        check_set_output_transform,
        check_set_output_transform_pandas,
        check_global_output_transform_pandas,
    ],
)
def test_sklearn_dataframe_contract(estimator: ScreeningScores, check: Callable[[str, ScreeningScores], None]) -> None:
    check("ScreeningScores", estimator)
