"""The HTTP endpoint: same answers as the predictor, readable 4xx for every kind of bad request, never a 500."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from painml.serving.http import create_app
from painml.serving.predictor import Predictor


@pytest.fixture(scope="module")
def client(served):
    with TestClient(create_app(served.predictor)) as c:
        yield c


def _post(client, body, **params):
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post("/predict", content=content, params=params, headers={"content-type": "application/json"})


def test_one_record_and_a_list_answer_like_the_predictor(client, served):
    p = served.predictor
    one = _post(client, served.records[0], reasons=3)
    assert one.status_code == 200
    assert one.json() == json.loads(json.dumps(p.predict_one(served.records[0], reasons=3)))
    many = _post(client, served.records, reasons=2)
    assert many.status_code == 200
    assert many.json() == json.loads(json.dumps(p.predict_many(served.records, reasons=2)))
    assert [r["patient_id"] for r in many.json()] == [r["patient_id"] for r in served.records]


def test_the_three_ways_give_identical_results(client, served, tmp_path):
    """HTTP, a batch file and the CLI (one patient at a time) agree on every patient."""
    from typer.testing import CliRunner

    from painml.cli.serve import serve_app
    from painml.serving.batch import read_output, score_file

    p = served.predictor
    records = served.records[:12]
    http_rows = _post(client, records, reasons=3).json()
    source = tmp_path / "in.parquet"
    served.frame.iloc[:12].to_parquet(source, index=False)
    score_file(p, source, tmp_path / "out.csv", chunksize=5, reasons=3, progress=False)
    file_rows = read_output(tmp_path / "out.csv")
    runner = CliRunner()
    for i, record in enumerate(records):
        result = runner.invoke(
            serve_app,
            [
                "predict",
                "--model",
                served.store.model_uri,
                "--tracking-uri",
                served.store.uri,
                "--json",
                "--reasons",
                "3",
            ],
            input=json.dumps(record),
        )
        assert result.exit_code == 0, result.output
        cli = json.loads(result.stdout)
        assert cli == http_rows[i]
        row = file_rows.iloc[i]
        assert row["patient_id"] == cli["patient_id"]
        for c in p.classes:
            assert row[f"p_{c}"] == cli[f"p_{c}"]
        assert row["predicted_class"] == cli["predicted_class"]
        assert row["prediction_set"] == "|".join(cli["prediction_set"])
        assert (row["flags"] if isinstance(row["flags"], str) else "") == "; ".join(cli["flags"])
        assert [row[f"reason_{k}"] for k in (1, 2, 3)] == [
            f"{r['label']} ({r['direction']} {r['class_name']}, {r['size']:+.2f} log-odds)" for r in cli["reasons"]
        ]


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ("{not json", 400, "not valid JSON"),
        ("", 400, "body is empty"),
        ("[]", 422, "list of records is empty"),
        ("42", 422, "got int"),
        ('[{"age": 50}, 7]', 422, "these are not: 2"),
        (b"\xff\xfe", 400, "not UTF-8"),
    ],
)
def test_malformed_bodies_get_readable_4xx(client, body, status, needle):
    response = _post(client, body)
    assert response.status_code == status
    assert needle in response.json()["detail"]


def test_wrong_types_and_out_of_range_values_name_the_field(client, served):
    record = {**served.records[0], "age": 300, "sex": "robot", "burning": "sometimes", "pain_intensity": "high"}
    response = _post(client, record)
    assert response.status_code == 422
    problems = {p["field"]: p for p in response.json()["problems"]}
    assert set(problems) == {"age", "sex", "burning", "pain_intensity"}
    assert problems["age"]["value"] == 300 and "from 18 to 105" in problems["age"]["problem"]
    assert problems["sex"]["problem"] == "expected one of female, male"
    assert all(p["row"] == 1 for p in problems.values())


def test_unknown_fields_are_rejected_by_name(client, served):
    response = _post(client, [served.records[0], {**served.records[1], "favourite_colour": "blue", "mrn": 1}])
    assert response.status_code == 422
    fields = {p["field"] for p in response.json()["problems"]}
    assert fields == {"favourite_colour", "mrn"}
    assert all("unknown field" in p["problem"] for p in response.json()["problems"])


def test_problems_in_a_list_carry_their_row(client, served):
    response = _post(client, [served.records[0], {**served.records[1], "hba1c": 99}])
    assert response.status_code == 422
    assert [(p["row"], p["field"]) for p in response.json()["problems"]] == [(2, "hba1c")]


def test_reasons_parameter_is_checked(client, served):
    for value in ("11", "-1", "lots"):
        response = _post(client, served.records[0], reasons=value)
        assert response.status_code == 422
        assert response.json()["problems"][0]["field"] == "reasons"


def test_size_limit_and_content_type(served):
    with TestClient(create_app(served.predictor, max_body_bytes=2_000)) as small:
        response = _post(small, [served.records[0]] * 10)
        assert response.status_code == 413
        assert "limit is 2,000" in response.json()["detail"]
        chunked = small.post(
            "/predict", content=iter([b"[" + b" " * 3000 + b"]"]), headers={"content-type": "application/json"}
        )
        assert chunked.status_code == 413
        form = small.post("/predict", data={"age": "50"})
        assert form.status_code == 415


def test_a_slow_prediction_times_out_with_503(served, monkeypatch):
    """Lists are scored on a worker thread under the time limit (one record is scored inline: microseconds)."""
    predictor = Predictor(served.predictor.bundle, served.predictor.name, served.predictor.version)
    monkeypatch.setattr(predictor, "predict_many", lambda *a, **k: time.sleep(1.0) or [{}, {}])
    with TestClient(create_app(predictor, timeout_s=0.1)) as c:
        response = _post(c, served.records[:2])
    assert response.status_code == 503
    assert "longer than the limit" in response.json()["detail"]


def test_a_bug_is_a_500_without_internals(served, monkeypatch):
    predictor = Predictor(served.predictor.bundle, served.predictor.name, served.predictor.version)

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(predictor, "predict_one", broken)
    with TestClient(create_app(predictor), raise_server_exceptions=False) as c:
        response = _post(c, served.records[0])
    assert response.status_code == 500
    assert "secret" not in response.text and "bug" in response.json()["detail"]


def test_health_model_and_docs(client, served):
    assert client.get("/health").json() == {
        "status": "ok",
        "model": served.predictor.name,
        "version": served.predictor.version,
    }
    model = client.get("/model").json()
    assert model["classes"] == served.predictor.classes
    assert model["lineage"]["source"] == "simulate"
    assert model["conformal_confidence"] == served.predictor.confidence
    assert "test_log_loss" in model["metrics"]
    spec = client.get("/openapi.json").json()
    assert {"PatientRecord", "Prediction"} <= set(spec["components"]["schemas"])
    assert "age" in spec["components"]["schemas"]["PatientRecord"]["properties"]
    assert client.get("/docs").status_code == 200
    assert client.get("/nowhere").status_code == 404
