"""MLflow "models from code" entry: the logged model is this file plus a bundle folder.

No class of ours is pickled: MLflow runs this file on load, and the wrapper
hands every request to :class:`painml.serving.predictor.Predictor`, the same object the
CLI, batch and HTTP paths use, so ``mlflow.pyfunc.load_model`` and
``mlflow models serve`` return exactly painml's probabilities.

- Input: the records as pandas or Spark read them from painml's CSV and Parquet
  files (int64 or float64, nullable Int64 and boolean, text); painml's schema
  checks every cell, and a bad one is an MLflow "invalid parameter" error (HTTP
  400 from ``mlflow models serve``) naming row, column and what was expected.
- Output: the rows painml's HTTP returns (:func:`painml.serving.frames.json_frame`):
  missing scores null rather than NaN, the prediction set and flags as lists,
  the registered version in ``model_version``, and with ``params={"reasons": k}``
  the top ``k`` reasons.
- Loading warms the tree kernels, so the first request does not pay for them.
  numba caches them beside the copied code (shared by the workers of one
  served model folder) or, with ``$NUMBA_CACHE_DIR`` set, in one folder there
  for every copy of painml (:func:`painml.model.compiled.trees._portable_cache`):
  each worker then compiles at most once, and only if none has before.
"""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

log = logging.getLogger(__name__)


class PainModel(PythonModel):
    def load_context(self, context) -> None:
        from painml.serving.predictor import Predictor

        folder = Path(context.artifacts["bundle"])
        self.predictor = Predictor.from_folder(folder)
        self.predictor.version = _version(folder, self.predictor.name)
        self.predictor.warm_up()

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        from mlflow.exceptions import MlflowException

        from painml.record import schema
        from painml.serving.frames import json_frame

        reasons = int((params or {}).get("reasons") or 0)
        try:
            records = schema.load_records(model_input, classes=self.predictor.classes, allow_extra=True)
            scored = self.predictor.score_records(records, reasons=reasons)
        except (schema.SchemaError, ValueError) as error:
            message = error.report() if isinstance(error, schema.SchemaError) else str(error)
            raise MlflowException.invalid_parameter_value(message) from None
        return json_frame(self.predictor, scored)


def _version(bundle: Path, name: str) -> str | None:
    """The registered version of this model's run, when a tracking store is configured, else ``run:<id>``.

    A model folder does not know its registry version (it is assigned after
    logging); no store is opened unless one was named, so that loading never
    creates an empty ``mlflow.db`` in the working directory.
    """
    import yaml

    mlmodel = bundle.parents[1] / "MLmodel"
    try:
        run_id = yaml.safe_load(mlmodel.read_text(encoding="utf-8")).get("run_id")
    except (OSError, AttributeError, yaml.YAMLError):
        return None
    if not run_id:
        return None
    from mlflow.tracking._tracking_service.utils import is_tracking_uri_set

    if is_tracking_uri_set():
        try:
            found = mlflow.MlflowClient().search_model_versions(f"run_id = '{run_id}'")
            versions = [int(v.version) for v in found if v.name == name]
            if versions:
                return str(max(versions))
        except Exception as error:  # the registry is optional: the model scores without it
            log.warning("registered version of run %s unavailable: %s", run_id, error)
    return f"run:{run_id}"


mlflow.models.set_model(PainModel())
