"""The logged pyfunc: MLflow's own loader and scoring-server input format agree with painml's predictor."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from fastapi.testclient import TestClient

from painml.record import schema
from painml.record.columns import BY_NAME
from painml.tracking import store


def _signature_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The records as the model's signature types them: doubles and strings."""
    out = frame.copy()
    for column in out.columns:
        kind = BY_NAME[column].kind if column in BY_NAME else "id"
        numeric = kind in ("binary", "integer", "number")
        out[column] = out[column].astype("float64") if numeric else out[column].astype(object)
    return out


def test_mlflow_loader_and_scoring_server_agree_with_the_predictor(served):
    import mlflow.pyfunc
    from mlflow.pyfunc import scoring_server

    store.use_store(served.store.uri)
    model = mlflow.pyfunc.load_model(served.store.model_uri)
    frame = _signature_frame(schema.load_records(served.frame).frame.iloc[:, : len(served.frame.columns)])
    expected = served.predictor.predict(served.frame).reset_index(drop=True)

    loaded = model.predict(frame)
    for c in served.predictor.classes:
        np.testing.assert_array_equal(loaded[f"p_{c}"].to_numpy(), expected[f"p_{c}"].to_numpy())
    assert loaded["prediction_set"].tolist() == expected["prediction_set"].tolist()
    assert loaded["predicted_class"].tolist() == expected["predicted_class"].tolist()

    app = scoring_server.init(model)
    payload = json.loads(frame.to_json(orient="split", index=False))
    with TestClient(app) as client:
        response = client.post("/invocations", json={"dataframe_split": payload})
        assert response.status_code == 200, response.text
        served_rows = pd.DataFrame(response.json()["predictions"])
        records = client.post("/invocations", json={"dataframe_records": json.loads(frame.to_json(orient="records"))})
        assert records.status_code == 200
    for c in served.predictor.classes:
        np.testing.assert_array_equal(served_rows[f"p_{c}"].to_numpy(), expected[f"p_{c}"].to_numpy())
    assert served_rows["predicted_class"].tolist() == expected["predicted_class"].tolist()
    by_records = pd.DataFrame(records.json()["predictions"])
    assert by_records["predicted_class"].tolist() == expected["predicted_class"].tolist()
