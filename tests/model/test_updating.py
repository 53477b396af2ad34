"""The updating ladder: every step folds into an ordinary model that compiles and scores exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax

from painml.config import GbmConfig, LabelConfig, LogisticConfig, SimulatedData, TrainConfig
from painml.explain.shap import shap_values
from painml.model import calibration
from painml.model.bundle import ModelBundle
from painml.model.fit import fit_pipeline
from painml.model.metadata import BundleMetadata
from painml.model.updating import (
    Affine,
    AsIs,
    LabelMismatch,
    Pooled,
    Revision,
    SiteOnly,
    Source,
    class_map,
    fit_affine,
    fold_affine,
    run_ladder,
)
from painml.record.schema import load_records
from painml.serving.predictor import Predictor
from painml.simulator.simulate import simulate

FAMILIES = {
    "gbm": GbmConfig(family="gbm", n_estimators=30, num_leaves=7, early_stopping_rounds=None),
    "logistic": LogisticConfig(family="logistic", max_iter=300),
}


def _config(family: str) -> TrainConfig:
    data = SimulatedData(source="simulate", preset="pain_clinic", n=1500)
    return TrainConfig(name="source", data=data, models=[FAMILIES[family]], calibration="none")


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def pair(request):
    """A source fitted on 1,200 pain-clinic patients with temperature on 300 more, and 150 orthopaedic patients."""
    cfg = _config(request.param)
    source = load_records(simulate("pain_clinic", 1500, seed=1))
    X, y = source.features, source.label.to_numpy(object)
    pipeline, _ = fit_pipeline(cfg.models[0], cfg, X, y, np.arange(1200))
    estimator = calibration.calibrate(pipeline, "temperature", X.iloc[1200:], y[1200:])
    site = load_records(simulate("orthopaedic", 150, seed=2))
    return request.param, cfg, estimator, site, source


def _exact(pipeline, classes, frame: pd.DataFrame, family: str) -> ModelBundle:
    bundle = ModelBundle(pipeline, BundleMetadata(classes=tuple(classes), family=family))
    assert bundle.compiled() is not None
    assert np.abs(bundle.predict_proba(frame) - bundle.sklearn_proba(frame)).max() < 1e-12
    return bundle


def test_class_map_renames_and_names_what_does_not_fit():
    P = class_map(
        ["mixed", "neuropathic", "nociceptive"], ("somatic", "neuropathic", "mixed"), {"nociceptive": "somatic"}
    )
    assert P.tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]  # rows: mixed, neuropathic, somatic
    with pytest.raises(LabelMismatch, match="nociplastic.*not predicted by the source"):
        class_map(["mixed", "neuropathic", "nociceptive"], ("mixed", "neuropathic", "nociceptive", "nociplastic"), {})
    with pytest.raises(LabelMismatch, match="source class\\(es\\) mixed are not among"):
        class_map(["mixed", "neuropathic", "nociceptive"], ("neuropathic", "nociceptive", "other"), {})


@pytest.mark.parametrize("kind", ["intercepts", "temperature", "recalibration"])
def test_a_recalibration_folds_into_the_model_exactly(pair, kind):
    family, cfg, estimator, site, _ = pair
    source = Source.of(estimator, cfg.classes)
    y_index = np.array([source.classes.index(v) for v in site.label])
    L = source.logits(site.features)
    A, b = fit_affine(L, y_index, source.P, kind)
    if kind == "intercepts":
        assert np.array_equal(A, source.P)
    folded = fold_affine(source, A, b)
    assert np.abs(folded.predict_proba(site.features) - softmax(L @ A.T + b, axis=1)).max() < 1e-10
    _exact(folded, cfg.classes, site.features, family)


def test_a_renamed_label_set_keeps_the_source_exactly(pair):
    family, cfg, estimator, site, _ = pair
    classes = ("somatic", "neuropathic", "mixed")
    source = Source.of(estimator, classes, {"nociceptive": "somatic"})
    assert source.one_to_one
    folded = AsIs("as-is", 0, "", source).fit(site.features, None).pipeline
    bundle = _exact(folded, classes, site.features, family)
    before = ModelBundle(estimator, BundleMetadata(classes=cfg.classes, family=family)).sklearn_proba(site.features)
    after = bundle.predict_proba(site.features)
    assert np.abs(after[:, 0] - before[:, 0]).max() < 1e-10  # somatic is the source's nociceptive


@pytest.mark.slow
def test_every_rung_gives_an_exact_servable_model(pair):
    family, cfg, estimator, site, source_records = pair
    source = Source.of(estimator, cfg.classes)
    y_index = np.array([source.classes.index(v) for v in site.label])
    like = source_records.subset(np.arange(1200, 1500))
    rungs = [
        AsIs("as-is", 0, "", source),
        Affine("a", 1, "", source, "intercepts"),
        Affine("b", 2, "", source, "temperature"),
        Affine("b-full", 3, "", source, "recalibration"),
        Revision("c", 4, "", source, 0),
        SiteOnly("d", 5, "", cfg.models[0], cfg),
        Pooled("e", 6, "", cfg.models[0], cfg, like.features, like.label.to_numpy(object), 1.0),
    ]
    for rung in rungs:
        fitted = rung.fit(site.features, y_index)
        bundle = _exact(fitted.pipeline, cfg.classes, site.features, family)
        scored = Predictor(bundle).predict(site.frame.head(5), reasons=2)
        assert scored["reason_1"].notna().all(), rung.key
        explained = shap_values(bundle, site.features.head(20))  # base + contributions = the model's logits
        proba = softmax(explained.base_values + explained.values.sum(axis=1), axis=1)
        assert np.abs(proba - bundle.predict_proba(site.features.head(20))).max() < 1e-9, rung.key
    revision = rungs[4].fit(site.features, y_index)
    if family == "gbm":  # the added trees follow the source's: same first trees, margins are sums
        base = source.pipeline.named_steps["model"].booster_.num_trees()
        assert revision.pipeline.named_steps["model"].booster_.num_trees() == base + 3 * revision.detail["trees_added"]
    else:
        assert revision.detail["penalty"] > 0


@pytest.mark.slow
def test_the_ladder_scores_every_rung_and_chooses_by_one_standard_error(pair):
    _, cfg, estimator, site, _ = pair
    source = Source.of(estimator, cfg.classes)
    y_index = np.array([source.classes.index(v) for v in site.label])
    rungs = [
        AsIs("as-is", 0, "", source),
        Affine("a", 1, "", source, "intercepts"),
        Affine("b", 2, "", source, "temperature"),
    ]
    result = run_ladder(rungs, site.features, y_index, n_features=10, folds=3, repeats=1)
    assert list(result.table["rung"]) == ["as-is", "a", "b"]
    assert result.table["chosen"].sum() == 1 and result.chosen in result.reason
    best = result.table["log_loss"].min()
    chosen = result.table.set_index("rung").loc[result.chosen]
    assert chosen["log_loss"] <= best + 2 * chosen["log_loss_se"]
    assert result.oof["b"].shape == (1, len(y_index), 3)


@pytest.mark.slow
def test_merged_source_classes_recalibrate_into_one_exact_model():
    """A four-class source whose two kinds of mixed pain the site records as one: no intercept-only step (the
    merged source is not one model), but the full recalibration and the revision fold exactly into 3 classes."""
    four = LabelConfig(classes=("nociceptive", "neuropathic", "mixed_a", "mixed_b"))
    cfg = _config("gbm").model_copy(update={"labels": four})
    records = load_records(simulate("pain_clinic", 1200, seed=4))
    y = records.label.to_numpy(object).copy()
    mixed = np.flatnonzero(y == "mixed")
    y[mixed[::2]], y[mixed[1::2]] = "mixed_a", "mixed_b"
    pipeline, _ = fit_pipeline(FAMILIES["gbm"], cfg, records.features, y, np.arange(1000))
    estimator = calibration.calibrate(pipeline, "temperature", records.features.iloc[1000:], y[1000:])
    source = Source.of(estimator, ("nociceptive", "neuropathic", "mixed"), {"mixed_a": "mixed", "mixed_b": "mixed"})
    assert not source.one_to_one and source.P.shape == (3, 4)
    site = load_records(simulate("orthopaedic", 150, seed=2))
    y_index = np.array([source.classes.index(v) for v in site.label])
    as_is = AsIs("as-is", 0, "", source).fit(site.features, y_index)
    assert as_is.pipeline is None and np.allclose(as_is.proba(site.features).sum(axis=1), 1)
    for rung in (Affine("b-full", 3, "", source, "recalibration"), Revision("c", 4, "", source, 0)):
        fitted = rung.fit(site.features, y_index)
        _exact(fitted.pipeline, ("nociceptive", "neuropathic", "mixed"), site.features, "gbm")
