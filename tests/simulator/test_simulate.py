"""The cohort simulator: reproducible, clinically grounded, and its posterior is exact."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss

from painml.record.schema import load_records
from painml.simulator import clinical_tables as T
from painml.simulator.realism import EVERY_SETTING, QUESTIONNAIRE_TARGETS, evaluate_realism, spine_item_weights
from painml.simulator.simulate import (
    _WEIGHTS,
    CONDITIONS,
    PRESETS,
    TRUTH_COLUMNS,
    VARIABLES,
    K,
    _finding_rates,
    exact_posterior,
    simulate,
    write_cohort,
)

P_COLUMNS = [f"true_p_{m}" for m in T.MECHANISMS]


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    return simulate("pain_clinic", 20_000, seed=3)


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_same_seed_same_bytes(tmp_path, suffix):
    a, b, c = (tmp_path / f"{name}{suffix}" for name in "abc")
    write_cohort(simulate("pain_clinic", 500, seed=9), a)
    write_cohort(simulate("pain_clinic", 500, seed=9), b)
    write_cohort(simulate("pain_clinic", 500, seed=10), c)
    assert digest(a) == digest(b)
    assert digest(a) != digest(c)


def test_csv_uses_the_record_conventions(tmp_path):
    path = write_cohort(simulate("pain_clinic", 300, seed=1), tmp_path / "c.csv")
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert set(raw["burning"]) <= {"true", "false", ""}
    assert "" in set(raw["pd_burning"]), "sites without painDETECT leave the block empty"
    assert set(raw["nerve_conduction"]) <= {"normal", "abnormal", ""}


def test_rejects_unknown_preset_and_extension(tmp_path):
    with pytest.raises(ValueError, match="unknown preset"):
        simulate("nowhere", 10)
    with pytest.raises(ValueError, match=r"\.csv or \.parquet"):
        write_cohort(simulate("pain_clinic", 10), tmp_path / "c.xlsx")


def test_every_condition_and_column(cohort):
    assert set(cohort["true_condition"]) == set(CONDITIONS)
    assert set(TRUTH_COLUMNS) <= set(cohort.columns)
    assert set(cohort["pain_type"]) == set(T.MECHANISMS)
    np.testing.assert_allclose(cohort[P_COLUMNS].sum(axis=1), 1.0, atol=1e-12)


def test_tables_are_probabilities():
    for preset in T.PRESETS.values():
        assert sum(preset.case_mix.values()) == pytest.approx(1.0)
        assert sum(share for share, _ in preset.sites.values()) == pytest.approx(1.0)
        assert {instrument for _, instrument in preset.sites.values()} <= set(T.INSTRUMENTS)
        assert preset.sites_source
    for name, condition in T.CONDITIONS.items():
        assert sum(condition.mechanism) == pytest.approx(1.0), name
        assert sum(condition.region.values()) == pytest.approx(1.0), name
    for noise in T.LABEL_NOISE.values():
        assert sum(noise) == pytest.approx(1.0)
    for finding in (*T.FINDINGS.values(), *T.PAINDETECT.values(), *T.TEST_ORDER.values(), *T.TEST_ABNORMAL.values()):
        assert 0 <= min(finding.noc, finding.mixed, finding.neu) and max(finding.noc, finding.mixed, finding.neu) <= 1
        assert finding.source


def test_informative_missingness_and_base_rates(cohort):
    neuropathic = cohort["true_pain_type"] == "neuropathic"
    ordered = cohort["nerve_conduction"].notna()
    assert ordered[neuropathic].mean() > 2 * ordered[~neuropathic].mean()
    knee = cohort["true_condition"] == "knee_osteoarthritis"
    assert 0.05 < cohort.loc[knee, "diabetes"].astype(float).mean() < 0.25, "diabetes at its base rate in knee OA"


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_posterior_recomputed_from_the_file(tmp_path, suffix):
    frame = simulate("pain_clinic", 2_000, seed=4)
    path = write_cohort(frame, tmp_path / f"c{suffix}")
    records = load_records(path, require_label=True)
    recomputed = exact_posterior(records.frame, "pain_clinic")
    np.testing.assert_allclose(recomputed.to_numpy(), records.truth[P_COLUMNS].to_numpy(), rtol=1e-9, atol=1e-12)


def test_posterior_is_calibrated(cohort):
    """Within every probability bin the recorded label occurs as often as the posterior says."""
    for k, mechanism in enumerate(T.MECHANISMS):
        p = cohort[P_COLUMNS[k]].to_numpy()
        hit = (cohort["pain_type"] == mechanism).to_numpy()
        bins = np.digitize(p, [0.1, 0.3, 0.5, 0.7, 0.9])
        for b in np.unique(bins):
            inside = bins == b
            if inside.sum() < 300:
                continue
            se = np.sqrt(p[inside].mean() * (1 - p[inside].mean()) / inside.sum())
            assert abs(hit[inside].mean() - p[inside].mean()) < 4 * se + 0.005, (mechanism, b)


@pytest.mark.parametrize("preset", ["pain_clinic", "orthopaedic"])
def test_no_model_beats_the_exact_posterior(cohort, preset):
    """A boosted model fitted on the cohort has a higher held-out log-loss than the ceiling (routine labels too)."""
    from lightgbm import LGBMClassifier

    from painml.config import FEATURE_GROUPS
    from painml.features.encoding import build_features

    records = load_records(cohort if preset == "pain_clinic" else simulate(preset, 20_000, seed=3), require_label=True)
    X, y = records.features, records.label.to_numpy(dtype=object)
    train, test = slice(0, 14_000), slice(14_000, None)
    features = build_features("gbm", FEATURE_GROUPS)
    model = LGBMClassifier(n_estimators=200, learning_rate=0.05, num_leaves=15, min_child_samples=40, verbose=-1)
    model.fit(features.fit_transform(X.iloc[train]), y[train])
    labels = list(model.classes_)
    model_loss = log_loss(y[test], model.predict_proba(features.transform(X.iloc[test])), labels=labels)
    oracle = records.truth.iloc[test][[f"true_p_{c}" for c in labels]].to_numpy()
    assert log_loss(y[test], oracle, labels=labels) < model_loss


def test_realism_targets_compatible_on_a_small_cohort():
    """Every published target's band overlaps the 95% interval at n = 12,000."""
    results = evaluate_realism(simulate("pain_clinic", 12_000, seed=11))
    misses = [(r.target.name, round(r.estimate.value, 3), r.target.band) for r in results if not r.compatible]
    assert not misses


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_draw(preset):
    frame = simulate(preset, 3_000, seed=1)
    shares = frame["pain_type"].value_counts(normalize=True)
    assert set(frame["true_condition"]) <= set(T.PRESETS[preset].case_mix)
    assert shares.min() > 0.02


def test_every_setting_targets_compatible_on_a_small_orthopaedic_cohort():
    """The item-level and per-condition targets hold where the label follows the diagnosis, at n = 12,000."""
    cohort = simulate("orthopaedic", 12_000, seed=11)
    results = evaluate_realism(cohort)
    new = [r for r in results if r.target.scope == EVERY_SETTING]
    assert {r.target.number for r in new} == QUESTIONNAIRE_TARGETS | {3}
    misses = [(r.target.name, round(r.estimate.value, 3), r.target.band) for r in new if not r.compatible]
    assert not misses
    weights = spine_item_weights(cohort)
    light_touch = next(r for r in results if r.target.name == "spine vs joint: light touch weight")
    assert weights.loc["pd_light_touch_painful", "weight"] == pytest.approx(light_touch.estimate.value)
    items = weights.drop(index="radiating_pain")
    assert items.scaled.idxmax() == "pd_numbness" and weights.loc["pd_numbness", "scaled"] == pytest.approx(8)
    assert (np.sign(items.scaled) == np.sign(items.nikaido)).sum() >= 6, "Nikaido's signs, item by item"


def _records_with(frame: pd.DataFrame) -> dict[str, float]:
    """Share of records carrying the painDETECT block alone, the DN4 interview alone, or both."""
    pd_ = frame["pd_burning"].notna()
    dn4 = frame["burning"].notna()
    return {"paindetect": (pd_ & ~dn4).mean(), "dn4": (dn4 & ~pd_).mean(), "both": (pd_ & dn4).mean()}


@pytest.mark.parametrize("preset", PRESETS)
def test_records_carry_the_questionnaires_their_site_uses(preset):
    """Single-questionnaire records at the shares the preset's sites and the single-questionnaire rate imply."""
    spec = T.PRESETS[preset]
    frame = simulate(preset, 20_000, seed=6)
    pd_alone, dn4_alone = T.SINGLE_QUESTIONNAIRE
    both = sum(share for share, kind in spec.sites.values() if kind == "both")
    expected = {
        "paindetect": sum(share for share, kind in spec.sites.values() if kind == "paindetect") + both * pd_alone,
        "dn4": sum(share for share, kind in spec.sites.values() if kind.startswith("dn4")) + both * dn4_alone,
        "both": both * (1 - pd_alone - dn4_alone),
    }
    observed = _records_with(frame)
    for kind, share in expected.items():
        assert abs(observed[kind] - share) < 4 * np.sqrt(0.25 / len(frame)) + 1e-9, (kind, observed, expected)
    for site, (_, kind) in spec.sites.items():
        at_site = _records_with(frame[frame.site == site])
        if kind == "paindetect":
            assert at_site["paindetect"] == 1.0
        elif kind != "both":
            assert at_site["dn4"] == 1.0
    interview_only = frame.site.isin([s for s, (_, kind) in spec.sites.items() if kind == "dn4_interview"])
    full_dn4 = frame.site.isin([s for s, (_, kind) in spec.sites.items() if kind == "dn4"])
    if interview_only.sum() and full_dn4.sum():
        examined = frame["brush_allodynia"].notna()
        assert examined[interview_only].mean() < examined[full_dn4].mean() - 0.05


def test_condition_profiles_follow_their_literature(cohort):
    """Mean painDETECT items among neuropathic patients keep the published orderings between conditions."""
    frame = cohort
    neuropathic = frame[(frame.true_pain_type == "neuropathic") & frame.pd_burning.notna()]
    mean = neuropathic.groupby("true_condition")[[c for c in frame.columns if c.startswith("pd_")]].mean()
    pdn, phn, stroke = (
        mean.loc[c] for c in ("painful_diabetic_neuropathy", "postherpetic_neuralgia", "central_post_stroke_pain")
    )
    # Baron 2009: touch-evoked pain and thermal pain far more often in PHN, numbness more often in PDN
    assert phn.pd_light_touch_painful > 1.6 * pdn.pd_light_touch_painful
    assert phn.pd_temperature_painful > 1.4 * pdn.pd_temperature_painful
    assert pdn.pd_numbness > phn.pd_numbness
    # Mahn 2011: radicular pain has little touch-evoked or thermal pain; Klit 2011: cold allodynia in central pain
    lumbar = mean.loc["lumbar_radiculopathy"]
    assert lumbar.pd_light_touch_painful < pdn.pd_light_touch_painful < stroke.pd_light_touch_painful
    assert stroke.pd_temperature_painful > pdn.pd_temperature_painful
    total = frame[[c for c in frame.columns if c.startswith("pd_")]].sum(axis=1, min_count=7)
    hip, knee = (total[frame.true_condition == c].mean() for c in ("hip_osteoarthritis", "knee_osteoarthritis"))
    assert hip < knee - 1, "Zolio 2021: hip OA reports fewer neuropathic-like symptoms than knee OA"


def test_amplification_keeps_each_items_rate():
    """Averaged over the amplification levels, every symptom keeps its table rate (painDETECT: mean score 5 q)."""
    for name in ("numbness", "burning", "aching"):
        var = VARIABLES[name]
        assert var.scope == "symptom"
        mean = (var.table[:, 1].reshape(-1, K) @ _WEIGHTS).reshape(len(CONDITIONS), -1)
        lumbar = CONDITIONS.index("chronic_low_back_pain")
        np.testing.assert_allclose(mean[lumbar], _finding_rates(T.FINDINGS[name], {}).reshape(len(CONDITIONS), -1)[0])
    pd = VARIABLES["pd_numbness"]
    mean_score = (pd.table @ np.arange(6.0)).reshape(-1, K) @ _WEIGHTS
    q = _finding_rates(
        T.PAINDETECT["pd_numbness"],
        {c: v["pd_numbness"] for c, v in ((c, T.CONDITIONS[c].findings) for c in CONDITIONS) if "pd_numbness" in v},
    )
    np.testing.assert_allclose(mean_score, 5 * q, atol=1e-6)


def test_paindetect_items_leave_room_for_never(cohort):
    """Neuropathic patients answer "never" to a symptom often enough for the published within-class spread."""
    neuropathic = cohort[(cohort.true_pain_type == "neuropathic") & cohort.pd_burning.notna()]
    items = neuropathic[[c for c in cohort.columns if c.startswith("pd_")]].astype(float)
    assert 0.08 < (items == 0).to_numpy().mean() < 0.35
    assert items.sum(axis=1).std() > 5.0


def test_symptoms_hang_together_with_pain_in_nociceptive_patients(cohort):
    nociceptive = cohort[(cohort.true_pain_type == "nociceptive") & cohort.pd_burning.notna()]
    items = nociceptive[[c for c in cohort.columns if c.startswith("pd_")]].astype(float).sum(axis=1)
    assert items.corr(nociceptive.pain_intensity.astype(float), method="spearman") > 0.1


@pytest.mark.parametrize(
    ("preset", "overrides"),
    [("orthopaedic", {}), ("primary_care", {}), ("pain_clinic", {"label": "routine", "response_level": -0.6})],
)
def test_posterior_recomputed_from_the_file_for_every_setting(tmp_path, preset, overrides):
    """Routine labels and a population's response level stay exact: recomputed from the file to 1e-9."""
    frame = simulate(preset, 1_500, seed=4, **overrides)
    path = write_cohort(frame, tmp_path / "c.parquet")
    records = load_records(path, require_label=True)
    recomputed = exact_posterior(records.frame, preset, **overrides)
    np.testing.assert_allclose(recomputed.to_numpy(), records.truth[P_COLUMNS].to_numpy(), rtol=1e-9, atol=1e-12)
    assert not np.allclose(recomputed.to_numpy(), exact_posterior(records.frame, "pain_clinic").to_numpy())


def test_routine_label_follows_the_diagnosis_and_is_calibrated():
    frame = simulate("orthopaedic", 20_000, seed=5)
    assert (frame.pain_type == "mixed").mean() < 0.15, "mixed is rarely coded in routine practice"
    radicular = frame.true_condition.isin(["lumbar_radiculopathy", "cervical_radiculopathy"])
    assert (frame.pain_type[radicular] == "neuropathic").mean() > 0.6
    assert (frame.pain_type[frame.true_condition == "knee_osteoarthritis"] == "nociceptive").mean() > 0.8
    for k, mechanism in enumerate(T.MECHANISMS):
        p = frame[P_COLUMNS[k]].to_numpy()
        hit = (frame.pain_type == mechanism).to_numpy()
        se = np.sqrt(p.mean() * (1 - p.mean()) / len(p))
        assert abs(hit.mean() - p.mean()) < 4 * se
        top = p > 0.8
        if top.sum() >= 300:
            assert abs(hit[top].mean() - p[top].mean()) < 4 * np.sqrt(0.2 * 0.8 / top.sum()), mechanism


def test_response_level_shifts_every_symptom():
    low = simulate("pain_clinic", 6_000, seed=2, response_level=-0.8)
    base = simulate("pain_clinic", 6_000, seed=2)
    items = [c for c in base.columns if c.startswith("pd_")]
    totals = [frame[items].astype(float).dropna().sum(axis=1).mean() for frame in (low, base)]
    assert totals[0] < totals[1] - 3
    assert low["burning"].astype(float).mean() < base["burning"].astype(float).mean()
    with pytest.raises(ValueError, match="unknown label"):
        simulate("pain_clinic", 10, label="guess")
