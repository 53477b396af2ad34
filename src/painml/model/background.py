"""The training mean of each encoded column: the background of the logistic model's exact linear SHAP.

Shared by the compile step (stored in ``compiled.npz``) and by
:mod:`painml.explain.shap`; scikit-learn is imported only to read a fitted transformer.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def known_means(stored: Mapping[str, float], transformer: Any, names: Sequence[str]) -> np.ndarray:
    """Training mean of each encoded column: ``stored`` (the bundle's ``feature_means``), else 0 after
    a centring ``StandardScaler``, else NaN (unknown)."""
    centred = _standardised_outputs(transformer)
    mean = np.full(len(names), np.nan)
    for j, name in enumerate(names):
        if name in stored:
            mean[j] = float(stored[name])
        elif name in centred:
            mean[j] = 0.0
    return mean


def _standardised_outputs(transformer: Any) -> set[str]:
    from sklearn.pipeline import (
        Pipeline,  # the runtime imports this module and must not import scikit-learn
    )
    from sklearn.preprocessing import StandardScaler

    out: set[str] = set()
    for name, step, cols in transformer.transformers_:
        last = step.steps[-1][1] if isinstance(step, Pipeline) else step
        if isinstance(last, StandardScaler) and last.with_mean:
            out.update(str(c) for c in transformer.named_transformers_[name].get_feature_names_out(cols))
    return out


def fill_unknown_means(mean: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The linear explanation's background with unknown (NaN) training means replaced by the rows' mean."""
    unknown = np.flatnonzero(np.isnan(mean))
    if len(unknown):
        warnings.warn(
            f"no training mean known for {len(unknown)} encoded columns; using the explained rows' mean "
            "(store the bundle's feature_means at training time to fix this)",
            UserWarning,
            stacklevel=3,
        )
        mean = mean.copy()
        mean[unknown] = matrix[:, unknown].mean(axis=0)
    return mean
