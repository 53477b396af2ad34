"""From the validated record to the model's input matrix, per model family.

The boosted model keeps missing values as they are (LightGBM learns where to
send them, which is how informative missingness, such as a nerve conduction
study that was never ordered, reaches it). The logistic model needs numbers
everywhere: medians plus a missing-value indicator per column, then scaling.
Both one-hot encode categories with "not recorded" as a category of its own,
and both get the screening scores as features.

:func:`feature_sources` maps every output column back to the record column
(or screening score) it came from, using the encoders' own fitted state, so
explanations can be folded back into the clinician's vocabulary.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils import Tags
from sklearn.utils.validation import check_is_fitted, validate_data

from painml.features.screening import (
    SCORE_COLUMNS,
    SCORE_NAMES,
    check_score_names,
    compute_scores,
)
from painml.record.columns import BLOCKS, BY_NAME

SCREENING_GROUP = "screening"


def record_columns(groups: Sequence[str]) -> tuple[str, ...]:
    """Record columns in the chosen feature groups, in schema order."""
    return tuple(col for group in groups if group != SCREENING_GROUP for col in BLOCKS[group])


def screening_scores(groups: Sequence[str]) -> tuple[str, ...]:
    """Screening scores computable from the chosen groups alone.

    A questionnaire-only model must not see examination findings through the
    back door of the full DN4 or LANSS, so a score is kept only when every
    item it reads is in a chosen group.
    """
    if SCREENING_GROUP not in groups:
        return ()
    chosen = set(record_columns(groups))
    return tuple(s for s in SCORE_NAMES if chosen.issuperset(SCORE_COLUMNS[s]))


def build_features(family: str, groups: Sequence[str], missing_indicators: bool = True) -> ColumnTransformer:
    """The ColumnTransformer for one model family; pandas output, readable names."""
    columns = record_columns(groups)
    categorical = [c for c in columns if BY_NAME[c].kind == "category"]
    numeric = [c for c in columns if BY_NAME[c].kind != "category"]
    scores = screening_scores(groups if family != "screening" else (*groups, SCREENING_GROUP))
    score_inputs = sorted({c for s in scores for c in SCORE_COLUMNS[s]})
    onehot = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    if family == "screening":  # the questionnaires' totals only, whatever else the groups hold
        categorical, numeric = [], []
        if not scores:
            raise ValueError(f"the screening family needs a questionnaire among the feature groups, got {list(groups)}")
    if family in ("logistic", "screening"):

        def dense(step: str) -> Pipeline:
            return Pipeline(
                [
                    (
                        f"{step}_impute",
                        SimpleImputer(strategy="median", add_indicator=missing_indicators, keep_empty_features=True),
                    ),
                    (f"{step}_scale", StandardScaler()),
                ]
            )

        numeric_step, score_step = (
            dense("numeric"),
            Pipeline([("scores", ScreeningScores(scores)), *dense("score").steps]),
        )
        category_step = Pipeline([("onehot", onehot), ("onehot_scale", StandardScaler())])
    elif family == "gbm":
        numeric_step, score_step, category_step = "passthrough", ScreeningScores(scores), onehot
    else:
        raise ValueError(f"unknown model family {family!r}")
    # a step with no columns is never fitted, and reading its output names would fail: leave it out
    transformers = [
        (name, step, cols)
        for name, step, cols in (("numeric", numeric_step, numeric), ("categorical", category_step, categorical))
        if cols
    ]
    if scores:
        transformers.append(("screening", score_step, score_inputs))
    features = ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)
    return features.set_output(transform="pandas")


def feature_sources(features: ColumnTransformer) -> dict[str, str]:
    """Output column -> the record column or screening score it stands for.

    Uses the fitted encoders (``OneHotEncoder.categories_``, the imputer's
    indicator features), never string splitting, so category values that
    contain underscores fold back correctly.
    """
    sources: dict[str, str] = {}
    for name, step, cols in features.transformers_:
        if name == "remainder" or step == "drop":
            continue
        out = (
            list(features.named_transformers_[name].get_feature_names_out(cols))
            if step != "passthrough"
            else list(cols)
        )
        inputs = list(cols)
        if isinstance(step, Pipeline) and isinstance(step.steps[0][1], ScreeningScores):
            inputs = list(step.steps[0][1].get_feature_names_out())
        encoder = _first(step, OneHotEncoder)
        imputer = _first(step, SimpleImputer)
        origin: list[str] = []
        if encoder is not None:
            for col, cats in zip(inputs, encoder.categories_):
                origin += [col] * len(cats)
        elif isinstance(step, ScreeningScores):
            origin = list(step.get_feature_names_out())
        else:
            origin = list(inputs)
            if imputer is not None and imputer.indicator_ is not None:
                origin += [inputs[i] for i in imputer.indicator_.features_]
        if len(origin) != len(out):
            raise RuntimeError(f"cannot trace the columns of step {name!r} back to the record")
        sources.update(zip(out, origin))
    return sources


def _first(step: object, kind: type) -> object | None:
    if isinstance(step, kind):
        return step
    if isinstance(step, Pipeline):
        return next((s for _, s in step.steps if isinstance(s, kind)), None)
    return None


class ScreeningScores(TransformerMixin, BaseEstimator):
    """The published screening scores as a scikit-learn transformer.

    Stateless apart from input bookkeeping: ``fit`` only validates ``scores``
    and records the input columns, so it can sit in a ``Pipeline`` or
    ``ColumnTransformer``. A DataFrame is read by column name; an array is read
    by the column names seen in ``fit`` (position), and an array fitted without
    names has no known items, so every score is NaN.

    Parameters
    ----------
    scores : tuple of str, default=None
        Scores to output, in this order; None means all of :data:`SCORE_NAMES`.

    Attributes
    ----------
    scores_ : tuple of str
        The validated selection, the output columns.
    n_features_in_ : int
        Number of input columns seen in ``fit``.
    feature_names_in_ : ndarray of str
        Input column names seen in ``fit``, when they were all strings.
    """

    def __init__(self, scores: tuple[str, ...] | None = None) -> None:
        self.scores = scores

    def fit(self, X: pd.DataFrame | np.ndarray, y: object = None) -> ScreeningScores:
        """Validate ``scores`` and record the input columns; ``y`` is ignored."""
        self.scores_ = check_score_names(self.scores)
        self._as_frame(X, reset=True)
        if not hasattr(self, "feature_names_in_"):
            warnings.warn(
                "ScreeningScores was fitted on data without (string) column names: "
                "no item is known, every score is NaN",
                UserWarning,
                stacklevel=2,
            )
        return self

    def transform(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """The selected scores as a float64 array (n_samples, len(scores_))."""
        check_is_fitted(self)
        frame = self._as_frame(X, reset=False)
        return compute_scores(frame, self.scores_).to_numpy(dtype=np.float64)

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> np.ndarray:
        """The score names; ``input_features`` is only checked against ``fit``."""
        check_is_fitted(self)
        if input_features is not None:
            input_features = np.asarray(input_features, dtype=object)
            names_in = getattr(self, "feature_names_in_", None)
            if names_in is not None and not np.array_equal(names_in, input_features):
                raise ValueError("input_features is not equal to feature_names_in_")
            if len(input_features) != self.n_features_in_:
                raise ValueError(
                    f"input_features should have length equal to number of features "
                    f"({self.n_features_in_}), got {len(input_features)}"
                )
        return np.asarray(self.scores_, dtype=object)

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing findings are normal
        tags.input_tags.string = True  # category columns arrive as text
        tags.input_tags.categorical = True  # pandas category columns are read by value
        tags.transformer_tags.preserves_dtype = ["float64"]  # output is always float64
        return tags

    def _as_frame(self, X: object, *, reset: bool) -> pd.DataFrame:
        """Validate ``X`` and return it as a frame with the record's column names.

        DataFrames skip ``check_array``: converting a mixed-type record to one
        object array would cost more than scoring it.
        """
        if isinstance(X, pd.DataFrame):
            validate_data(self, X, reset=reset, skip_check_array=True)
            return X
        array = validate_data(self, X, reset=reset, dtype=None, ensure_all_finite=False, accept_sparse=False)
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            return pd.DataFrame(index=pd.RangeIndex(array.shape[0]))
        return pd.DataFrame(array, columns=names, copy=False)
