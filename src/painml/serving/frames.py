"""Scoring data frames as they come, whatever engine delivers them: the core under Spark and MLflow's pyfunc.

:func:`score_frame` scores one frame exactly as ``painml serve batch`` scores one chunk
of a file (same validation, same columns, same values: both go through
:func:`painml.serving.batch.score_file`'s own chunk shaping), and returns the rows that fail
validation beside it. An engine that splits its input across machines has no
global row numbers, so a problem row is keyed by the row's ``patient_id`` and the
file it came from instead.

:func:`json_frame` shapes scored rows for MLflow's pyfunc: the JSON rows of painml's
HTTP (missing scores as null, prediction sets and flags as lists, the model
version), as a frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pandas as pd

from painml.record import schema
from painml.record.columns import TRUE_PREFIX
from painml.serving.batch import FLOAT_OUTPUTS, _empty_output, _output_frame, _problem_rows
from painml.serving.predictor import Predictor, Scored

__all__ = ["PROBLEM_COLUMNS", "json_frame", "output_types", "score_frame", "score_frames"]

PROBLEM_COLUMNS = ("patient_id", "source", "column", "value", "expected")
"""One line per problem: whose row, which input file, which cell, what it held and what was expected."""

BOOLEAN_OUTPUTS = ("too_little_recorded",)


def score_frame(
    predictor: Predictor,
    frame: pd.DataFrame,
    *,
    reasons: int = 0,
    threads: int | None = None,
    source: str | pd.Series = "",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(scored, problems)`` of one frame of raw patient records.

    ``source`` names where the rows came from (one name, or one per row).
    Simulator ``true_*`` columns are ignored, as the batch command does. A
    problem with the frame as a whole (a record column twice, no
    ``patient_id``) raises :class:`painml.record.schema.SchemaError`: nothing of
    an input not understood is scored.
    """
    raw = frame.loc[:, [c for c in frame.columns if not str(c).strip().startswith(TRUE_PREFIX)]]
    raw = raw.reset_index(drop=True)
    sources = source.reset_index(drop=True) if isinstance(source, pd.Series) else pd.Series(source, index=raw.index)
    if raw.empty:
        return _empty_output(predictor, reasons), _problem_frame([], raw, sources)
    records, problems = schema.split_valid(raw, classes=predictor.classes, allow_extra=True)
    if records is None:
        raise schema.SchemaError(problems)
    scored = (
        _output_frame(predictor, records, reasons, threads) if len(records.frame) else _empty_output(predictor, reasons)
    )
    return scored, _problem_frame(problems, raw, sources)


def score_frames(
    predictor: Predictor, frames: Iterable[pd.DataFrame], *, reasons: int = 0, threads: int | None = None
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """:func:`score_frame` over a stream of frames, one at a time (memory holds one frame)."""
    for frame in frames:
        yield score_frame(predictor, frame, reasons=reasons, threads=threads)


def output_types(predictor: Predictor, reasons: int) -> dict[str, str]:
    """Each predictor output column's type, ``double``, ``boolean`` or ``string`` (for engines that need it up
    front)."""
    return {
        c: "double" if c.startswith("p_") or c in FLOAT_OUTPUTS else "boolean" if c in BOOLEAN_OUTPUTS else "string"
        for c in predictor.output_columns(reasons)
    }


def _problem_frame(problems: list[schema.Problem], raw: pd.DataFrame, sources: pd.Series) -> pd.DataFrame:
    """Problems keyed by patient and input file (``Problem.row`` counts from 1 within ``raw``)."""
    ids = raw["patient_id"] if "patient_id" in raw.columns else pd.Series(None, index=raw.index, dtype=object)
    rows = []
    for row, _, column, value, expected in _problem_rows(problems):
        patient = ids.iloc[row - 1]
        rows.append((None if pd.isna(patient) else str(patient), str(sources.iloc[row - 1]), column, value, expected))
    return pd.DataFrame(rows, columns=list(PROBLEM_COLUMNS), dtype=object)


def json_frame(predictor: Predictor, scored: Scored) -> pd.DataFrame:
    """The scored rows as painml's HTTP answers them, one column per field (lists stay lists, null stays null).

    Probabilities and confidence are float columns; every other column holds
    Python objects, so that a missing score is ``None`` rather than NaN, which
    is not JSON.
    """
    rows = predictor.json_rows(scored)
    names = list(rows[0]) if rows else [c for c in predictor.output_columns() if c != "patient_id"]
    if not rows:
        names = ["patient_id", *names]
    out: dict[str, Any] = {}
    for name in names:
        values = [row[name] for row in rows]
        floats = name.startswith("p_") or name == "confidence"
        out[name] = np.asarray(values, dtype=float) if floats else pd.Series(values, dtype=object)
    return pd.DataFrame(out, index=pd.RangeIndex(len(rows)))
