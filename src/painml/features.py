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

from collections.abc import Sequence

from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from painml.columns import BLOCKS, BY_NAME
from painml.screening import SCORE_COLUMNS, SCORE_NAMES, ScreeningScores

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
    scores = screening_scores(groups)
    score_inputs = sorted({c for s in scores for c in SCORE_COLUMNS[s]})
    onehot = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    if family == "logistic":
        def dense(step: str) -> Pipeline:
            return Pipeline([
                (f"{step}_impute", SimpleImputer(strategy="median", add_indicator=missing_indicators,
                                                 keep_empty_features=True)),
                (f"{step}_scale", StandardScaler()),
            ])

        numeric_step, score_step = dense("numeric"), Pipeline([("scores", ScreeningScores(scores)), *dense("score").steps])
        category_step = Pipeline([("onehot", onehot), ("onehot_scale", StandardScaler())])
    elif family == "gbm":
        numeric_step, score_step, category_step = "passthrough", ScreeningScores(scores), onehot
    else:
        raise ValueError(f"unknown model family {family!r}")
    transformers = [("numeric", numeric_step, numeric), ("categorical", category_step, categorical)]
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
        out = list(features.named_transformers_[name].get_feature_names_out(cols)) if step != "passthrough" else list(cols)
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
