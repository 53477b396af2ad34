"""The logged pyfunc: MLflow's own loader and scoring server take the frames users read and agree with the predictor."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from painml.tracking import store

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample_cohort.csv"


@pytest.fixture(scope="module")
def loaded(served):
    import mlflow.pyfunc

    store.use_store(served.store.uri)
    return mlflow.pyfunc.load_model(served.store.model_uri)


def _same_probabilities(got: pd.DataFrame, expected: pd.DataFrame, classes) -> None:
    for c in classes:
        np.testing.assert_array_equal(got[f"p_{c}"].to_numpy(), expected[f"p_{c}"].to_numpy())
    assert got["predicted_class"].tolist() == expected["predicted_class"].tolist()


def test_mlflow_loader_scores_the_csv_as_pandas_reads_it(loaded, served):
    frame = pd.read_csv(SAMPLE)
    got = loaded.predict(frame)
    expected = served.predictor.predict(SAMPLE)
    _same_probabilities(got, expected, served.predictor.classes)
    assert got["prediction_set"].tolist() == [s.split("|") for s in expected["prediction_set"]]
    assert got["patient_id"].tolist() == expected["patient_id"].tolist()
    assert got["model_version"].iloc[0] == served.predictor.version


def test_mlflow_loader_scores_the_simulators_parquet_with_nulls(loaded, served, tmp_path):
    from painml.simulator.simulate import simulate

    path = tmp_path / "cohort.parquet"
    simulate("pain_clinic", 40, seed=7).to_parquet(path)
    frame = pd.read_parquet(path)
    assert "Int64" in set(map(str, frame.dtypes)) and "boolean" in set(map(str, frame.dtypes))
    assert frame.isna().any().any()
    got = loaded.predict(frame, params={"reasons": 2})
    expected = served.predictor.predict(path, reasons=2)
    _same_probabilities(got, expected, served.predictor.classes)
    for row, reasons in enumerate(got["reasons"]):
        assert len(reasons) == 2
        for i, reason in enumerate(reasons, start=1):
            assert expected[f"reason_{i}"].iloc[row].startswith(reason["label"] + " (")
    missing = [v for v in got["dn4"] if v is None]
    assert missing == [None] * int(expected["dn4"].isna().sum())


def test_mlflow_loader_rejects_a_bad_cell_naming_it(loaded):
    from mlflow.exceptions import MlflowException

    frame = pd.DataFrame({"patient_id": ["a", "b"], "age": [50, 250]})
    with pytest.raises(MlflowException, match="age"):
        loaded.predict(frame)


def test_mlflow_scoring_server_answers_strict_json(loaded, served):
    from mlflow.pyfunc import scoring_server

    frame = served.frame
    expected = served.predictor.predict(frame).reset_index(drop=True)
    app = scoring_server.init(loaded)
    payload = json.loads(frame.to_json(orient="split", index=False))
    with TestClient(app) as client:
        response = client.post("/invocations", json={"dataframe_split": payload, "params": {"reasons": 1}})
        assert response.status_code == 200, response.text
        rows = json.loads(response.text, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))["predictions"]
        records = client.post("/invocations", json={"dataframe_records": json.loads(frame.to_json(orient="records"))})
        assert records.status_code == 200, records.text
        bad = client.post("/invocations", json={"dataframe_records": [{"patient_id": "x", "age": "old"}]})
        assert bad.status_code == 400
        assert "age" in bad.json()["message"]
    served_rows = pd.DataFrame(rows)
    _same_probabilities(served_rows, expected, served.predictor.classes)
    assert all(isinstance(row["prediction_set"], list) and isinstance(row["flags"], list) for row in rows)
    assert all(len(row["reasons"]) == 1 for row in rows)
    assert {row["model_version"] for row in rows} == {served.predictor.version}
    assert any(row["dn4"] is None for row in rows) or not expected["dn4"].isna().any()
    assert all(row["dn4"] is None or math.isfinite(row["dn4"]) for row in rows)
    by_records = pd.DataFrame(records.json()["predictions"])
    assert by_records["predicted_class"].tolist() == expected["predicted_class"].tolist()
