"""What is wrong with an input: one :class:`Problem` per bad cell or file, all raised together.

Every reader and check of the record reports through these two types, so a
person sees the row (1-based, header not counted), the column, the value and
what was expected, and can fix a file in one pass.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

REPORT_LIMIT = 50


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input; ``row`` is 1-based (first data row = 1), None for the whole input."""

    row: int | None
    column: str | None
    value: object
    expected: str
    patient_id: str | None = None
    """The row's patient_id, for the errors file of a batch; never printed (outputs only, not logs)."""

    def __str__(self) -> str:
        where = ", ".join(
            part
            for part in (
                None if self.row is None else f"row {self.row}",
                None if self.column is None else f"column {_clip(self.column)!r}",
            )
            if part
        )
        if self.value is None and (self.row is None or self.column is None):
            message = self.expected
        else:
            message = f"got {_show(self.value)}, expected {self.expected}"
        return f"{where}: {message}" if where else message


class SchemaError(ValueError):
    """Every problem found in an input, so a person can fix a file in one pass."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        super().__init__(self.report())

    def report(self, limit: int = REPORT_LIMIT) -> str:
        """Headline, one line per problem up to ``limit``, then counts per column for the rest."""
        problems = self.problems
        rows = {p.row for p in problems if p.row is not None}
        whole = sum(p.row is None for p in problems)
        headline = _count(len(problems), "problem")
        if rows:
            headline += f" in {_count(len(rows), 'row')}"
            if whole:
                headline += f", plus {whole:,} with the input as a whole"
        lines = [headline, *(f"  {p}" for p in problems[:limit])]
        rest = problems[limit:]
        if rest:
            per_column = Counter(p.column or "(whole input)" for p in rest)
            counts = ", ".join(f"{column} {n:,}" for column, n in per_column.most_common())
            lines.append(f"  ... and {len(rest):,} more: {counts}")
        return "\n".join(lines)

    def to_frame(self) -> pd.DataFrame:
        """The problems as a table (value as text), for writing an errors file next to the input."""
        import pandas as pd  # this module is on the one-patient path, which does not import pandas

        return pd.DataFrame(
            {
                "row": pd.array([p.row for p in self.problems], dtype="Int64"),
                "patient_id": pd.Series([p.patient_id for p in self.problems], dtype=object),
                "column": pd.Series([p.column for p in self.problems], dtype=object),
                "value": pd.Series([None if _missing(p.value) else str(p.value) for p in self.problems], dtype=object),
                "expected": pd.Series([p.expected for p in self.problems], dtype=object),
            }
        )


def _python(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value


def _missing(value: object) -> bool:
    return value is None or type(value).__name__ == "NAType" or (isinstance(value, float) and math.isnan(value))


SHOWN_CHARACTERS = 60


def _clip(text: str) -> str:
    """Long text cut for display, saying how long it was: a 10 MB cell must not become a 10 MB line."""
    if len(text) <= SHOWN_CHARACTERS:
        return text
    return f"{text[:SHOWN_CHARACTERS]}... ({len(text):,} characters)"


def _show(value: object) -> str:
    if _missing(value):
        return "an empty value"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(_clip(value)) if isinstance(value, str) else _clip(str(value))


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")
