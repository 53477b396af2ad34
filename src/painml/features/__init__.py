"""From a record to model inputs: the screening questionnaires' scores and the encoders."""

from __future__ import annotations


def __getattr__(name: str) -> object:
    """Models saved before the package split name ``painml.features.ScreeningScores``; it lives in
    :mod:`painml.features.encoding`, imported only when such a model is loaded (it needs scikit-learn,
    which scoring one patient does not import)."""
    if name == "ScreeningScores":
        from painml.features.encoding import ScreeningScores

        return ScreeningScores
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
