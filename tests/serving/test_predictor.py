"""The predictor: loading, compiled and one-record paths against scikit-learn and the schema, flags, conformal sets."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy.stats import beta as beta_dist

from painml.explain import reasons as explain_reasons
from painml.explain import shap as explain
from painml.features import screening
from painml.model.bundle import ModelBundle
from painml.model.compiled.compile import compile_estimator
from painml.model.compiled.runtime import CompiledModel
from painml.model.conformal import conformal_threshold, prediction_sets
from painml.model.dataset import load_dataset, split_rows
from painml.record import gate, schema
from painml.record.columns import BY_NAME, INPUT_COLUMNS
from painml.serving.predictor import ModelNotFound, Predictor
from painml.simulator.simulate import simulate
from painml.tracking import registry


def _features(served) -> pd.DataFrame:
    return schema.load_records(served.frame).features


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


def _assert_rows_equal(one: dict, other: dict) -> None:
    """Two JSON rows agree exactly, reasons' sizes up to float summation order."""
    assert one.keys() == other.keys()
    for key in one:
        if key == "reasons":
            assert [{**r, "size": None} for r in one[key]] == [{**r, "size": None} for r in other[key]]
            np.testing.assert_allclose(
                [r["size"] for r in one[key]], [r["size"] for r in other[key]], rtol=1e-12, atol=1e-12
            )
        else:
            assert one[key] == other[key], key


# --------------------------------------------------------------------------- loading


def test_from_uri_reads_the_registry_alias(served):
    p = served.predictor
    assert p.name == served.store.config.tracking.registered_model
    assert p.version == served.store.champion_version
    assert p.run_id == served.store.result.run_id
    assert p.compiled is not None
    assert p.metrics["test_log_loss"] > 0


def test_a_model_folder_carries_its_test_metrics(served):
    """Without a store to ask, the bundle's own test metrics describe the model."""
    p = Predictor.from_folder(served.predictor.folder)
    assert p.run_id is None
    assert 0 < p.metrics["test_log_loss"] < 1.1 and 0 < p.metrics["test_accuracy"] <= 1


def test_local_registry_read_agrees_with_mlflow(served, monkeypatch):
    """The SQLite shortcut and MLflow's own resolution load the same model version."""
    store = served.store
    monkeypatch.setattr(registry, "_sqlite_model_version", lambda store, uri: None)
    via_mlflow = Predictor.from_uri(store.model_uri, tracking_uri=store.uri)
    assert (via_mlflow.name, via_mlflow.version, via_mlflow.run_id) == (
        served.predictor.name,
        served.predictor.version,
        served.predictor.run_id,
    )
    assert via_mlflow.metrics == served.predictor.metrics
    features = _features(served)
    np.testing.assert_array_equal(via_mlflow.predict_proba(features), served.predictor.predict_proba(features))


def test_version_run_and_folder_uris(served):
    store = served.store
    name = store.config.tracking.registered_model
    by_version = Predictor.from_uri(f"models:/{name}/{store.result.registered_version}", tracking_uri=store.uri)
    assert by_version.version == store.result.registered_version
    by_run = Predictor.from_uri(f"runs:/{store.result.run_id}/logistic", tracking_uri=store.uri)
    assert by_run.metadata.family == "logistic"
    folder = Predictor.from_uri(str(served.predictor.folder))
    features = _features(served)
    np.testing.assert_array_equal(folder.predict_proba(features), served.predictor.predict_proba(features))


def test_missing_models_are_reported_not_raised_raw(served, tmp_path):
    with pytest.raises(ModelNotFound, match="no alias 'nope'|nope"):
        Predictor.from_uri(
            f"models:/{served.store.config.tracking.registered_model}@nope", tracking_uri=served.store.uri
        )
    with pytest.raises(ModelNotFound, match="not a models:/ or runs:/ URI"):
        Predictor.from_uri(str(tmp_path / "nothing-here"))


def test_default_store_resolution_loads_the_registered_model(served, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", served.store.uri)
    p = Predictor.from_uri(served.store.model_uri)
    np.testing.assert_array_equal(p.predict_proba(_features(served)), served.predictor.predict_proba(_features(served)))


# --------------------------------------------------------------------------- one engine, every path


@pytest.mark.parametrize("family", ["gbm", "logistic"])
def test_compiled_model_equals_the_estimator(served, family):
    store = served.store
    predictor = Predictor.from_uri(f"runs:/{store.result.run_id}/{family}", tracking_uri=store.uri)
    assert predictor.compiled is not None
    records = schema.load_records(simulate("pain_clinic", 1500, seed=77))
    mine, theirs = predictor.predict_proba(records.features), predictor.bundle.sklearn_proba(records.features)
    if family == "gbm":
        np.testing.assert_array_equal(mine, theirs)
    else:  # the decision function is summed by einsum, scikit-learn's by BLAS
        np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("family", ["gbm", "logistic"])
def test_one_record_path_equals_the_batch_path(served, family):
    store = served.store
    predictor = Predictor.from_uri(f"runs:/{store.result.run_id}/{family}", tracking_uri=store.uri)
    batch = predictor.predict_many(served.records, reasons=3)  # 60 rows: the frame path
    for record, expected in zip(served.records, batch):
        _assert_rows_equal(predictor.predict_one(record, reasons=3), expected)


def test_frame_output_matches_json_rows(served):
    p = served.predictor
    frame = p.predict(served.frame, reasons=2)
    rows = p.predict_many(served.records, reasons=2)
    assert list(frame.columns) == p.output_columns(2)
    for (_, f), r in zip(frame.iterrows(), rows):
        assert f["patient_id"] == r["patient_id"]
        assert [f[f"p_{c}"] for c in p.classes] == [r[f"p_{c}"] for c in p.classes]
        assert f["prediction_set"] == "|".join(r["prediction_set"])
        assert f["flags"] == "; ".join(r["flags"])
        assert f["reason_1"] == str(explain_reasons.Reason(**r["reasons"][0]))


@pytest.mark.parametrize("family", ["gbm", "logistic"])
def test_fast_reasons_equal_top_reasons(served, family):
    p = Predictor.from_uri(f"runs:/{served.store.result.run_id}/{family}", tracking_uri=served.store.uri)
    records = schema.load_records(simulate("pain_clinic", 400, seed=5))
    scored = p.score_records(records, reasons=4)
    expected = explain.top_reasons(p.bundle, records.features, records.frame, k=4, class_index=scored.best)
    for mine, theirs in zip(scored.reasons, expected):
        assert [(r.feature, r.label, r.value, r.direction, r.class_name) for r in mine] == [
            (r.feature, r.label, r.value, r.direction, r.class_name) for r in theirs
        ]
        np.testing.assert_allclose([r.size for r in mine], [r.size for r in theirs], rtol=1e-12, atol=1e-12)


def _encoded(served) -> np.ndarray:
    compiled = served.predictor.compiled
    columns = gate.columns_of(schema.load_records(served.frame).frame)
    n = len(served.frame)
    return compiled.encode(columns, n, compiled.scores(columns, n))


def test_compiled_trees_reproduce_lightgbm(served):
    """Raw scores bit for bit, one row or many; SHAP of any class as LightGBM's pred_contrib has it."""
    compiled = served.predictor.compiled
    booster = served.predictor.bundle.pipeline.named_steps["model"].booster_
    X = _encoded(served)
    n = len(X)
    np.testing.assert_array_equal(compiled.decision(X), booster.predict(X, raw_score=True))
    for i in range(5):
        np.testing.assert_array_equal(
            compiled.decision(X[i : i + 1], threads=1), booster.predict(X[i : i + 1], raw_score=True)
        )
    full = booster.predict(X, pred_contrib=True).reshape(n, len(served.predictor.classes), -1)
    targets = np.arange(n) % 3
    values = compiled.contributions(X, targets)
    expected = np.stack([full[r, compiled._model_order[targets[r]], :-1] for r in range(n)])
    np.testing.assert_allclose(values, expected, rtol=0, atol=1e-10)


def test_saved_compiled_model_equals_the_estimators(served, tmp_path):
    """What serving reads from disk is what compiling the estimator gives: same probabilities, same SHAP."""
    bundle = served.predictor.bundle
    rebuilt = compile_estimator(bundle.estimator, bundle.classes, bundle.metadata)
    rebuilt.save(tmp_path / "compiled.npz")
    reread = CompiledModel.load(tmp_path / "compiled.npz")
    X = _encoded(served)
    best = np.arange(len(X)) % 3
    for other in (rebuilt, reread):
        np.testing.assert_array_equal(other.proba(X), served.predictor.compiled.proba(X))
        np.testing.assert_array_equal(other.contributions(X, best), served.predictor.compiled.contributions(X, best))
    proba = bundle.estimator.predict_proba(_features(served))
    order = [list(bundle.estimator.classes_).index(c) for c in bundle.classes]
    np.testing.assert_array_equal(reread.proba(X), proba[:, order])


def test_a_corrupt_compiled_file_is_refused_by_name(served, tmp_path):
    """A compiled.npz that is not what was saved means a damaged folder: refused, not silently replaced."""
    import shutil

    from painml.model.bundle import COMPILED_FILE, ModelFolderError

    folder = tmp_path / "bundle"
    shutil.copytree(served.predictor.folder, folder)
    (folder / COMPILED_FILE).write_text("not a compiled model")
    with pytest.raises(ModelFolderError, match=COMPILED_FILE):
        Predictor.from_folder(folder)


def test_a_compiled_file_of_another_model_is_not_used(served, tmp_path, caplog):
    """A compiled.npz made for another model.skops is set aside with a warning: the estimator beside it
    is compiled instead and the answers are the model's own."""
    import logging
    import shutil

    from painml.model.bundle import COMPILED_FILE

    folder = tmp_path / "bundle"
    shutil.copytree(served.predictor.folder, folder)
    family = "logistic" if served.predictor.metadata.family == "gbm" else "gbm"
    other = Predictor.from_uri(f"runs:/{served.store.result.run_id}/{family}", tracking_uri=served.store.uri)
    shutil.copy(other.folder / COMPILED_FILE, folder / COMPILED_FILE)
    with caplog.at_level(logging.WARNING, logger="painml.model.bundle"):
        p = Predictor.from_folder(folder)
        rows = p.predict_many(served.records[:5], reasons=2)
    assert COMPILED_FILE in caplog.text
    expected = served.predictor.predict_many(served.records[:5], reasons=2)
    assert [{**r, "model_version": None} for r in rows] == [{**r, "model_version": None} for r in expected]


def test_one_record_runs_on_one_thread(served, monkeypatch):
    """A record is scored and explained on the calling thread: no pool is started for one row."""
    from painml.model.compiled.trees import TreeEnsemble

    seen = []
    for name in ("raw_scores", "contributions"):
        original = getattr(TreeEnsemble, name)

        def spy(self, *args, _original=original, **kwargs):
            seen.append(kwargs.get("threads", args[-1] if len(args) > 1 else 1))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(TreeEnsemble, name, spy)
    served.predictor.predict_one(served.records[0], reasons=2)
    assert seen == [1, 1]


def test_serving_one_record_imports_no_training_stack(served, tmp_path):
    """The command-line and HTTP path for one plainly valid record reads the compiled model only."""
    import json
    import subprocess
    import sys

    patient = tmp_path / "patient.json"
    patient.write_text(json.dumps(served.records[0]))
    code = (
        "import json, sys\n"
        "from painml.serving.predictor import Predictor\n"
        f"p = Predictor.from_uri({served.store.model_uri!r}, tracking_uri={served.store.uri!r})\n"
        f"row = p.predict_one(json.load(open({str(patient)!r})), reasons=3)\n"
        "heavy = {'sklearn', 'lightgbm', 'pandas', 'skops', 'mlflow', 'pandera', 'matplotlib', 'shap'}\n"
        "print(json.dumps({'loaded': sorted(heavy & {m.split('.')[0] for m in sys.modules}), "
        "'reasons': len(row['reasons'])}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"loaded": [], "reasons": 3}


def test_reasons_out_of_range_are_refused(served):
    with pytest.raises(ValueError, match="between 0 and 10"):
        served.predictor.predict_one(served.records[0], reasons=11)


# --------------------------------------------------------------------------- the one-record gate


def _spellings(column) -> tuple[list, list]:
    """(ordinary values, edge cases) for one column: the edge cases are the schema's to judge."""
    if column.kind == "binary":
        return (
            [True, False, 1, 0, 1.0, "yes", " No ", "TRUE", "t", "1.0", None],
            ["maybe", 2, -1, "", float("nan"), [1], "1.5", "  "],
        )
    if column.kind in ("integer", "number"):
        low = column.low if column.low is not None else 0
        high = column.high if column.high is not None else low + 100
        return (
            [low, high, int(low) + 1, float(int(low) + 2), str(int(low) + 1), f" {int(low) + 2} ", None],
            [
                (low + high) / 2 + 0.5,
                "7.5",
                "1e1",
                low - 1,
                high + 1,
                True,
                "abc",
                "",
                float("inf"),
                "nan",
                10**400,
                -0.0,
                "+5",
                "٣",
            ],
        )
    if column.kind == "category":
        first = column.allowed[0]
        return [first, first.upper(), f" {first} ", None], ["not-a-value", 1, True, "", 1.5]
    return ["A-1", " A-2 ", 12, None], [12.5, True, "", "  ", -3]


def test_record_checker_never_accepts_what_the_schema_rejects():
    """Fuzz: an accepted record is valid for the schema and has exactly the schema's canonical values."""
    rng = random.Random(7)
    classes = ["nociceptive", "neuropathic", "mixed"]
    checkers = {allow: gate.RecordChecker(classes, allow_extra=allow) for allow in (False, True)}
    accepted = rejected = 0
    for i in range(300):
        record = {}
        for column in INPUT_COLUMNS:
            if rng.random() < 0.7:
                record[column.name] = rng.choice(_spellings(column)[0])
        for _ in range(rng.choice([0, 0, 1, 2])):
            column = rng.choice(INPUT_COLUMNS)
            record[column.name] = rng.choice(_spellings(column)[1])
        if rng.random() < 0.1:
            record["pain_type"] = rng.choice(["Mixed", "neuropathic", "other", None, 3])
        if rng.random() < 0.1:
            record["mrn"] = "x"
        allow = rng.random() < 0.5
        checked = checkers[allow].check(record)
        if checked is None:
            rejected += 1
            continue
        accepted += 1
        records = schema.load_records(record, classes=classes, allow_extra=allow)  # must not raise
        row = records.frame.iloc[0]
        for column in INPUT_COLUMNS:
            assert _same(checked.values[column.name], row[column.name]), (i, column.name, record.get(column.name))
    assert accepted > 60 and rejected > 30


def test_plain_records_take_the_fast_gate(served):
    checker = gate.RecordChecker(served.predictor.classes, allow_extra=False)
    assert all(checker.check(r) is not None for r in served.records)


def test_scalar_screening_scores_equal_the_vectorised_ones():
    frame = schema.load_records(simulate("pain_clinic", 3000, seed=11)).frame.copy()
    rng = np.random.default_rng(0)
    for name in frame.columns:
        if name in BY_NAME and BY_NAME[name].kind != "id":
            frame.loc[rng.random(len(frame)) < 0.15, name] = np.nan
    expected = screening.compute_scores(frame)
    for i, record in enumerate(frame.to_dict(orient="records")):
        got = screening.score_record(record)
        for name, value in got.items():
            assert _same(value, float(expected[name].iloc[i])), (i, name)


# --------------------------------------------------------------------------- flags


def _with_profile(predictor: Predictor, **changes) -> Predictor:
    profile = replace(predictor.metadata.training_profile, **changes)
    metadata = replace(predictor.metadata, training_profile=profile)
    return Predictor(ModelBundle(predictor.bundle.estimator, metadata), predictor.name, predictor.version)


def test_flags_name_what_training_never_saw(served):
    p = _with_profile(
        served.predictor,
        blocks_seen=("dn4_interview", "examination", "tests"),
        categories={**served.predictor.metadata.training_profile.categories, "skin_biopsy": ("normal",)},
    )
    lo, hi = p.metadata.training_profile.numeric_ranges["age"]
    base = {
        "patient_id": "f1",
        "age": hi + 1 if hi < 105 else lo - 1,
        "site": "clinic_mars",
        "skin_biopsy": "abnormal",
        "pd_burning": 3,
        "burning": True,
    }
    row = p.predict_one(base)
    text = " | ".join(row["flags"])
    assert "age" in text and "training range" in text
    assert "site 'clinic_mars'" in text
    assert "skin_biopsy 'abnormal'" in text
    assert "painDETECT questionnaire recorded" in text
    dn4 = dict.fromkeys(("burning", "numbness", "tingling", "itching", "painful_cold"), True)
    clean = p.predict_one({"patient_id": "f2", "age": lo, **dn4})
    assert clean["flags"] == []
    frame = p.predict(pd.DataFrame([base, {"patient_id": "f2", "age": lo, **dn4}]))
    assert frame["flags"].tolist() == ["; ".join(row["flags"]), ""]


def test_flags_of_one_record_equal_the_vectorised_flags(served):
    p = served.predictor
    records = schema.load_records(served.frame)
    columns = gate.columns_of(records.frame)
    flags = p._profile.flags(columns, len(records.frame))
    checker = gate.RecordChecker(p.classes, allow_extra=True)
    for i, record in enumerate(served.records):
        assert p._profile.flags_row(checker.check(record).values) == flags.get(i, [])


# --------------------------------------------------------------------------- conformal sets


def test_conformal_coverage_on_held_out_patients(served):
    """Split-conformal coverage on patients the model never saw, judged by its law.

    With a threshold fitted on n rows, the coverage it achieves is Beta(k, n + 1 - k), k = ceil((n + 1) c)
    (Angelopoulos & Bates): the served model's 225 conformal rows must land above that law's 0.1% quantile
    (about 0.84 at 90%), and a threshold fitted on 2,000 fresh rows within 2 points of nominal.
    """
    p = served.predictor
    records = schema.load_records(simulate("pain_clinic", 5000, seed=909), require_label=True, classes=p.classes)
    proba = p.predict_proba(records.features)
    truth = np.array([p.classes.index(v) for v in records.label])
    sets = prediction_sets(proba, p.qhat)
    coverage = sets[np.arange(len(truth)), truth].mean()
    n_conformal = len(split_rows(load_dataset(served.store.config).y, served.store.config)["conformal"])
    k = math.ceil((n_conformal + 1) * p.confidence)
    assert coverage >= beta_dist.ppf(0.001, k, n_conformal + 1 - k), coverage
    assert sets.sum(axis=1).mean() < len(p.classes)  # the sets say something
    fresh = schema.load_records(simulate("pain_clinic", 2000, seed=908), require_label=True, classes=p.classes)
    fresh_truth = np.array([p.classes.index(v) for v in fresh.label])
    qhat = conformal_threshold(p.predict_proba(fresh.features), fresh_truth, p.confidence)
    refitted = prediction_sets(proba, qhat)[np.arange(len(truth)), truth].mean()
    assert refitted >= p.confidence - 0.02, refitted


@pytest.mark.parametrize(
    "record",
    [{}, {"patient_id": "e1"}, {"age": 70, "sex": "female", "burning": True, "numbness": True}],
)
def test_too_little_recorded_gives_every_class_and_says_why(served, record):
    p = served.predictor
    row = p.predict_one(record)
    assert row["too_little_recorded"] is True
    assert row["flags"][0].startswith("too little recorded")
    assert row["prediction_set"] == list(p.classes)
    frame = p.predict([record, served.records[0]])
    assert frame["too_little_recorded"].tolist() == [True, False]
    assert frame["prediction_set"].iloc[0] == "|".join(p.classes)
    assert "too little recorded" in frame["flags"].iloc[0]


def test_a_recorded_assessment_is_not_too_little(served):
    from painml.serving.predictor import MIN_FINDINGS

    record = {"age": 70, "sex": "female", **dict.fromkeys(["burning", "numbness", "tingling", "itching"], False)}
    assert len(record) - 2 == MIN_FINDINGS - 1
    assert served.predictor.predict_one(record)["too_little_recorded"] is True
    record["painful_cold"] = True
    assert served.predictor.predict_one(record)["too_little_recorded"] is False
