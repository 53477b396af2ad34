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
            f"{r['label']} ({r['direction']} {r['class_name']}, {r['size']:+.2f} score)" for r in cli["reasons"]
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


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ("[" * 50_000 + "]" * 50_000, 400, "nests too deeply"),
        ('{"age": ' + "7" * 5_000 + "}", 422, "5,000 digits"),
        ('{"age": 1e400}', 422, "1e400 is out of range"),
        ('{"age": -Infinity}', 400, "-Infinity is not a number"),
        ('{"age": NaN}', 400, "NaN is not a number"),
        ('{"age": 50, "age": 60}', 400, "'age' appears twice"),
        ('[{"site": {}}]', 422, "values no patient record field can"),
        ('{"age": [70]}', 422, "values no patient record field can"),
        ('[{"site": false}, {"age": 50}]', 422, "values no patient record field can"),
    ],
)
def test_hostile_but_parseable_bodies_get_4xx_naming_the_problem(client, body, status, needle):
    response = _post(client, body)
    assert response.status_code == status, response.text
    assert needle in response.json()["detail"]


def test_error_bodies_match_the_declared_schema(client, served):
    """Every 4xx body, 422 included, is the Error object the OpenAPI document declares."""
    import jsonschema_rs

    spec = client.get("/openapi.json").json()
    error_schema = spec["components"]["schemas"]["Error"]
    responses = spec["paths"]["/predict"]["post"]["responses"]
    assert responses["422"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert "HTTPValidationError" not in json.dumps(spec)
    for response in (
        _post(client, {**served.records[0], "age": 300}),
        _post(client, served.records[0], reasons="lots"),
        _post(client, "{not json"),
        client.get("/predict"),
    ):
        assert response.status_code >= 400
        jsonschema_rs.validate(error_schema, response.json())


def test_binary_fields_declare_and_accept_0_and_1(client, served):
    spec = client.get("/openapi.json").json()
    field = spec["components"]["schemas"]["PatientRecord"]["properties"]["brush_allodynia"]
    assert {"type": "integer", "enum": [0, 1]} in field["anyOf"]
    as_numbers = _post(client, {"age": 60, "brush_allodynia": 1, "burning": 0})
    as_booleans = _post(client, {"age": 60, "brush_allodynia": True, "burning": False})
    assert as_numbers.status_code == 200 == as_booleans.status_code
    assert as_numbers.json() == as_booleans.json()


def test_a_wrong_method_is_405_with_allow(client):
    response = client.get("/predict")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_model_shows_the_training_file_by_name_and_hash_only(served):
    predictor = Predictor(served.predictor.bundle, served.predictor.name, served.predictor.version)
    described = predictor.describe()
    lineage = {"source": "file", "path": "/home/clinic/exports/cohort-2026.csv", "sha256": "ab" * 32}
    predictor.describe = lambda: {**described, "lineage": lineage, "uri": "/srv/models/pain-v3"}
    with TestClient(create_app(predictor)) as c:
        shown = c.get("/model").json()
    assert shown["lineage"] == {**lineage, "path": "cohort-2026.csv"}
    assert shown["uri"] == "pain-v3"
    assert "/home/" not in json.dumps(shown) and "/srv/" not in json.dumps(shown)


def test_host_header_must_be_on_the_allow_list(served):
    app = create_app(served.predictor, allowed_hosts=["127.0.0.1", "localhost", "::1"])
    with TestClient(app, base_url="http://localhost:8000") as c:
        assert c.get("/health").status_code == 200
        for host in ("127.0.0.1:8000", "[::1]:8000", "LOCALHOST"):
            assert c.get("/health", headers={"host": host}).status_code == 200, host
        refused = c.get("/health", headers={"host": "attacker.example"})
        assert refused.status_code == 400
        assert "attacker.example" in refused.json()["detail"]
        assert _post(c, served.records[0], **{}).status_code == 200
        assert c.post("/predict", json=served.records[0], headers={"host": "rebound.example:8000"}).status_code == 400


def test_bearer_token_is_required_when_set(served):
    token = "s3cret-token-of-the-clinic"
    with TestClient(create_app(served.predictor, token=token)) as c:
        assert c.get("/health").status_code == 401
        missing = _post(c, served.records[0])
        assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
        wrong = c.get("/model", headers={"authorization": "Bearer " + token[:-1]})
        assert wrong.status_code == 401
        good = c.post("/predict", json=served.records[0], headers={"authorization": f"Bearer {token}"})
        assert good.status_code == 200


def test_records_the_fast_checker_refuses_are_scored_off_the_event_loop(served, monkeypatch):
    """A decimal sent as text goes through pandas and pandera: on a worker thread, not the event loop."""
    import threading

    predictor = Predictor(served.predictor.bundle, served.predictor.name, served.predictor.version)
    threads = []
    original = predictor.predict_one

    def spy(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(predictor, "predict_one", spy)
    with TestClient(create_app(predictor)) as c:
        threads.clear()
        plain = _post(c, {"age": 70, "pain_intensity": 6})
        as_text = _post(c, {"age": 70, "hba1c": "6.5"})
    assert plain.status_code == 200 == as_text.status_code
    assert not threads[0].startswith("painml-predict")
    assert threads[1].startswith("painml-predict")


def test_whole_number_identifiers_are_read_as_their_digits(client):
    rows = _post(client, [{"patient_id": 5, "age": 60}, {"patient_id": "P-6", "site": 12}, {"patient_id": 7.0}]).json()
    assert [r["patient_id"] for r in rows] == ["5", "P-6", "7"]
    assert _post(client, {"patient_id": 5, "age": 60}).json()["patient_id"] == "5"
    refused = _post(client, {"patient_id": 5.5})
    assert refused.status_code == 422 and refused.json()["problems"][0]["field"] == "patient_id"
