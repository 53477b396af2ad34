"""Compiling a fitted painml estimator into the plain description and arrays the runtime replays.

Reads the fitted ``ColumnTransformer`` (one-hot encoders, imputers, scalers,
the screening step), the LightGBM booster or logistic coefficients and the
temperature calibration. Anything else raises
:class:`painml.model.compiled.runtime.Unsupported`, and the predictor keeps
scikit-learn's path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from painml.features import screening
from painml.features.encoding import ScreeningScores, feature_sources
from painml.model.background import known_means
from painml.model.compiled import trees
from painml.model.compiled.runtime import (
    FORMAT,
    TREES_PREFIX,
    CompiledModel,
    Unsupported,
)
from painml.model.metadata import BundleMetadata


def compile_estimator(estimator: Any, classes: Sequence[str], metadata: BundleMetadata) -> CompiledModel:
    """A fitted painml estimator as a :class:`CompiledModel`; :class:`Unsupported` for anything else.

    scikit-learn and LightGBM are imported here, never when scoring.
    """
    classes = list(classes)
    calibrated = getattr(estimator, "calibrated_classifiers_", None)
    if calibrated is not None:
        if len(calibrated) != 1:
            raise Unsupported("an ensemble of calibrated classifiers")
        inner = calibrated[0]
        pipeline = getattr(inner.estimator, "estimator", inner.estimator)
        if inner.method != "temperature":
            raise Unsupported(f"calibration method {inner.method!r}")
    else:
        pipeline = estimator
    if not isinstance(pipeline, Pipeline) or list(pipeline.named_steps) != ["features", "model"]:
        raise Unsupported("the estimator is not a features + model pipeline")
    transformer, model = pipeline.named_steps["features"], pipeline.named_steps["model"]
    feature_names = [str(n) for n in transformer.get_feature_names_out()]
    model_classes = [str(c) for c in model.classes_]
    if len(model_classes) < 3:
        raise Unsupported("binary models take scikit-learn's path")
    if sorted(model_classes) != sorted(classes):
        raise Unsupported("the model's classes differ from the bundle's")
    sources = feature_sources(transformer)
    spec: dict[str, Any] = {
        "format": FORMAT,
        "classes": classes,
        "feature_names": feature_names,
        "sources": [sources[n] for n in feature_names],
        "steps": _compile_transformer(transformer, len(feature_names)),
        "calibration": None,
    }
    arrays: dict[str, np.ndarray] = {}
    order = [model_classes.index(c) for c in classes]
    booster = getattr(model, "booster_", None)
    if booster is not None:
        if callable(getattr(model, "_objective", None)):
            raise Unsupported("a custom LightGBM objective")
        try:
            ensemble = trees.TreeEnsemble.from_booster(booster)
            # builds the SHAP tables now, so a model whose trees cannot be explained fails here, not mid-request
            ensemble.contributions(np.zeros((1, ensemble.n_features)), np.zeros(1, dtype=np.intp))
        except trees.Unsupported as why:
            raise Unsupported(str(why)) from None
        arrays = {TREES_PREFIX + k: v for k, v in ensemble.arrays().items()}
        spec["model"] = {"kind": "trees", "order": order}
    elif hasattr(model, "coef_") and hasattr(model, "intercept_") and np.ndim(model.coef_) == 2:
        background = known_means(metadata.feature_means, transformer, feature_names)
        spec["model"] = {
            "kind": "linear",
            "order": order,
            "coef": np.asarray(model.coef_, dtype=np.float64).tolist(),
            "intercept": np.asarray(model.intercept_, dtype=np.float64).tolist(),
            "background": background.tolist(),
        }
    else:
        raise Unsupported(f"model {type(model).__name__}")
    if calibrated is not None:
        if not hasattr(pipeline, "decision_function"):
            raise Unsupported("calibration that reads probabilities (LightGBM before 4.7)")
        outer = [str(c) for c in estimator.classes_]
        if sorted(outer) != sorted(classes):
            raise Unsupported("the estimator's classes differ from the bundle's")
        spec["calibration"] = {
            "kind": "temperature",
            "beta": float(inner.calibrators[0].beta_),
            "order": [outer.index(c) for c in classes],
        }
    return CompiledModel(spec, arrays)


def _compile_transformer(transformer: Any, width: int) -> list[dict[str, Any]]:
    """One spec step per ColumnTransformer entry, in output order."""
    if not isinstance(transformer, ColumnTransformer):
        raise Unsupported("the features step is not a ColumnTransformer")
    steps = []
    total = 0
    for name, step, cols in transformer.transformers_:
        if name == "remainder":
            if step != "drop" and len(cols):
                raise Unsupported("a remainder that is not dropped")
            continue
        if step == "drop":
            continue
        compiled = _compile_step(step, [str(c) for c in cols])
        expected = transformer.output_indices_[name]
        compiled["name"], compiled["width"] = name, expected.stop - expected.start
        steps.append(compiled)
        total += compiled["width"]
    if total != width:
        raise Unsupported("the transformer's outputs do not add up to its feature names")
    return steps


def _compile_step(step: Any, cols: list[str]) -> dict[str, Any]:
    """A ColumnTransformer entry: the first step reads columns, later ones map arrays."""
    if isinstance(step, Pipeline):
        first, *rest = [s for _, s in step.steps]
        if _is_passthrough(first) or isinstance(first, (Pipeline, OneHotEncoder, ScreeningScores)):
            head = _compile_step(first, cols)
        else:  # an imputer or scaler first: it reads the columns as they are
            head, rest = _compile_step("passthrough", cols), [first, *rest]
        head["then"] = head.get("then", []) + [_compile_array_step(s) for s in rest if not _is_passthrough(s)]
        return head
    if _is_passthrough(step):
        return {"kind": "columns", "columns": cols}
    if isinstance(step, ScreeningScores):
        unread = [s for s in step.scores_ if not set(screening.SCORE_COLUMNS[s]) <= set(cols)]
        if unread:  # the compiled step scores from the whole record; scikit-learn's sees only ``cols``
            raise Unsupported(f"screening scores {unread} without all their items among the step's columns")
        return {"kind": "scores", "scores": list(step.scores_)}
    if isinstance(step, OneHotEncoder):
        return _compile_onehot(step, cols)
    raise Unsupported(f"step {type(step).__name__}")


def _compile_array_step(step: Any) -> dict[str, Any]:
    if isinstance(step, StandardScaler):
        return {
            "kind": "scale",
            "mean": step.mean_.tolist() if step.with_mean else None,
            "scale": step.scale_.tolist() if step.with_std else None,
        }
    if isinstance(step, SimpleImputer):
        if not (isinstance(step.missing_values, float) and math.isnan(step.missing_values)):
            raise Unsupported("an imputer for values other than NaN")
        statistics = np.asarray(step.statistics_, dtype=np.float64)
        keep = None
        if not step.keep_empty_features and np.isnan(statistics).any():
            keep = (~np.isnan(statistics)).tolist()
        indicator = None
        if step.add_indicator and step.indicator_ is not None:
            indicator = np.asarray(step.indicator_.features_).tolist()
        return {"kind": "impute", "statistics": statistics.tolist(), "keep": keep, "indicator": indicator}
    raise Unsupported(f"step {type(step).__name__}")


def _is_passthrough(step: Any) -> bool:
    if isinstance(step, str):
        return step == "passthrough"
    return isinstance(step, FunctionTransformer) and step.func is None


def _compile_onehot(encoder: Any, cols: list[str]) -> dict[str, Any]:
    if encoder.drop is not None or getattr(encoder, "_infrequent_enabled", False):
        raise Unsupported("a one-hot encoder that drops or groups categories")
    if encoder.handle_unknown != "ignore":
        raise Unsupported("a one-hot encoder that does not ignore unknown categories")
    categories = []
    for found in encoder.categories_:
        spelled: list[str | None] = []
        for category in found.tolist():
            if isinstance(category, float) and math.isnan(category):
                spelled.append(None)
            elif isinstance(category, str):
                spelled.append(category)
            else:
                raise Unsupported(f"a category that is not text: {category!r}")
        categories.append(spelled)
    return {"kind": "onehot", "columns": cols, "categories": categories}
