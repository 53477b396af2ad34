"""MLflow "models from code" entry: the logged model is this file plus a bundle folder.

No class of ours is pickled: MLflow runs this file on load, and the wrapper
hands every request to :class:`painml.serving.predictor.Predictor`, the same object the
CLI, batch and HTTP paths use, so ``mlflow.pyfunc.load_model`` and
``mlflow models serve`` return exactly painml's probabilities.
"""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class PainModel(PythonModel):
    def load_context(self, context) -> None:
        from painml.serving.predictor import Predictor

        self.predictor = Predictor.from_folder(context.artifacts["bundle"])

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        return self.predictor.predict(model_input).reset_index(drop=True)


mlflow.models.set_model(PainModel())
