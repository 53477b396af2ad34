"""The column table seen from each tool that needs it: pandera checks, JSON Schema, MLflow column types,
and the Markdown datasheet (``data/README.md``).

:mod:`painml.record.columns` is the single source of truth; every projection is
derived here, so a new column needs no edit anywhere else. Regenerate the
datasheet with ``python -m painml.record.projections > data/README.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from painml.record.columns import (
    BLOCKS,
    BY_NAME,
    DEFAULT_CLASSES,
    INPUT_COLUMNS,
    LABEL,
    TRUE_PREFIX,
    Column,
)
from painml.record.pandera_import import pa
from painml.record.vocabulary import block_title


@lru_cache(maxsize=16)
def pandera_schema(classes: tuple[str, ...], require_label: bool) -> pa.DataFrameSchema:
    """The value checks, built from the column table so a new column needs no edit here.

    Binary and id columns are left out: the parser already decides them
    completely, and each pandera column costs about a millisecond per call,
    which a one-record HTTP request pays in full.
    """
    columns = {column.name: _pandera_column(column) for column in INPUT_COLUMNS if column.kind not in ("binary", "id")}
    columns[LABEL.name] = pa.Column(object, pa.Check.isin(classes), nullable=not require_label, required=False)
    return pa.DataFrameSchema(columns, name="patient record", strict=False, coerce=False)


def _pandera_column(column: Column) -> pa.Column:
    if column.kind == "category":
        return pa.Column(object, pa.Check.isin(column.allowed), nullable=True)
    checks = []
    if column.low is not None and column.high is not None:
        checks.append(pa.Check.in_range(column.low, column.high))
    elif column.low is not None:
        checks.append(pa.Check.ge(column.low))
    elif column.high is not None:
        checks.append(pa.Check.le(column.high))
    if column.kind == "integer":
        checks.append(pa.Check(lambda values: values % 1 == 0, name="whole_number"))
    return pa.Column("float64", checks, nullable=True)


def schema_markdown() -> str:
    """The data contract as Markdown, rendered from the column table (``data/README.md``)."""
    parts = [_MD_INTRO]
    for block, names in BLOCKS.items():
        words = block_title(block)
        parts.append(f"## {words.heading}\n")
        if words.note:
            parts.append(f"{words.note}\n")
        parts.append(_md_table([BY_NAME[name] for name in names]))
    parts.append("## Label\n")
    parts.append(
        "Required in every row of training data (`load_records(..., require_label=True)`);"
        " optional elsewhere. The label set is read from the training configuration, so a"
        " site can add a class (for example nociplastic) without code changes; the default"
        " set is shown.\n"
    )
    parts.append(_md_table([LABEL]))
    parts.append(_MD_TRUTH)
    rows = ["| column | type | meaning |", "|---|---|---|", *("| " + " | ".join(row) + " |" for row in _TRUTH_COLUMNS)]
    parts.append("\n".join(rows) + "\n")
    return "\n".join(parts)


_TYPE_WORDS = {"id": "text", "binary": "binary", "integer": "integer", "number": "number", "category": "category"}


_MD_INTRO = """\
# The patient record

<!-- Generated from src/painml/record/columns.py by `python -m painml.record.projections > data/README.md`;
edit the table there, not this file. -->

One row is one patient's assessment of one chronic pain complaint. Every entry
point (training files, the simulator's output, batch files, CLI and HTTP
requests) accepts this record and checks it with `painml.record.schema`;
`painml validate FILE` checks a file by hand and lists every problem in it.

## Conventions

- Files are CSV (UTF-8, one header row; comma, tab, semicolon or pipe
  separated: the separator that splits the header into known columns is used)
  or Parquet; HTTP requests send the same columns as JSON records. A file
  whose header names no feature column is refused, saying how it was read.
- Column names are snake_case, as below; they are matched in any case and
  with surrounding spaces trimmed (`Age ` is `age`). An unknown column that
  closely resembles a known one (`brush_alodynia`, `Pain Intensity`) is a
  problem with a suggestion, not an extra column.
- A CSV line that is not a record (fewer or more fields than the header, a
  `#` comment, NUL bytes) is a problem of its row, named with its line
  number; blank lines are skipped.
- Binary findings are `true`/`false`; `1`/`0`, `yes`/`no`, `t`/`f` and `y`/`n`
  are accepted too, in any case.
- Integers are whole numbers (`3` and `3.0`, not `3.5`); integers and numbers
  lie in the range shown.
- Categories take one of the values listed, in any case; they are stored in
  lower case.
- An empty cell means "not recorded / not examined / test not done" (CSV also
  reads `NA`, `N/A`, `null` and `nan` as empty). Missing is normal in clinical
  data and never an error: a column left out entirely is treated as missing in
  every row, and a notice names it.
- `patient_id` and `site` are carried through to outputs but are never model
  features. A `patient_id` never appears in logs, MLflow runs or artifacts;
  site names appear only in per-site aggregate metrics.
- Unknown extra columns are carried through untouched in batch files and
  rejected in HTTP requests; they are never used as features.
- Problems are reported all at once, each with its row (the first data row is
  row 1, the header is not counted), column, value and what was expected.
  A `patient_id` that repeats an earlier row's is noticed (by row number).
"""


_MD_TRUTH = f"""\
## Simulator-only columns (never inputs)

A simulated cohort carries its ground truth in columns prefixed with
`{TRUE_PREFIX}`. Loading any input removes every `{TRUE_PREFIX}` column from the
record and keeps them aside (`Records.truth`), so evaluation can compare a
model with the generating model while no feature can see them.
"""


_TRUTH_COLUMNS = [
    (
        "true_condition",
        "text",
        "the underlying condition, e.g. painful_diabetic_neuropathy, postherpetic_neuralgia,"
        " lumbar_radiculopathy, knee_osteoarthritis",
    ),
    ("true_pain_type", "category", "the label before label noise"),
    ("true_severity", "category", "how plainly the condition shows in the record: borderline, typical, marked"),
    *(
        (
            f"true_p_{c}",
            "number, 0-1",
            f"exact posterior probability that the recorded label is {c}, given everything recorded"
            " (the Bayes ceiling for any classifier)",
        )
        for c in DEFAULT_CLASSES
    ),
]


def _md_table(columns: Sequence[Column]) -> str:
    lines = ["| column | type | allowed | meaning |", "|---|---|---|---|"]
    for column in columns:
        cells = (column.name, _TYPE_WORDS[column.kind], _md_allowed(column), column.meaning)
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def _md_allowed(column: Column) -> str:
    if column.kind == "binary":
        return "true, false"
    if column.kind == "category":
        return ", ".join(column.allowed)
    if column.low is not None and column.high is not None:
        return f"{column.low:g}-{column.high:g}"
    if column.low is not None:
        return f">= {column.low:g}"
    if column.high is not None:
        return f"<= {column.high:g}"
    return "any"


_MLFLOW_TYPES = {"id": "string", "binary": "boolean", "integer": "long", "number": "double", "category": "string"}


def mlflow_column_types() -> dict[str, str]:
    """The MLflow (and Spark) type of every record column: the type it really has, as painml's own Parquet
    files store it (findings boolean, counts and scores long, measurements double, the rest text)."""
    return {c.name: _MLFLOW_TYPES[c.kind] for c in INPUT_COLUMNS}


def record_json_schema(classes: list[str] | None = None) -> dict[str, Any]:
    """JSON Schema of one patient record, from the column table (for the docs; the schema module decides)."""
    properties: dict[str, Any] = {}
    for column in INPUT_COLUMNS:
        properties[column.name] = _field_schema(column)
    label = _field_schema(LABEL)
    if classes:
        label["enum"] = list(classes)
    properties[LABEL.name] = label
    return {
        "type": "object",
        "title": "PatientRecord",
        "description": "One patient's assessment; every field is optional (missing = not recorded).",
        "properties": properties,
        "additionalProperties": False,
    }


def _field_schema(column: Column) -> dict[str, Any]:
    out: dict[str, Any] = {"description": column.meaning}
    if column.kind == "binary":
        # JSON clients send true/false or 1/0; both are read as the same finding.
        out["anyOf"] = [{"type": "boolean"}, {"type": "integer", "enum": [0, 1]}, {"type": "null"}]
    elif column.kind in ("integer", "number"):
        out["type"] = ["integer" if column.kind == "integer" else "number", "null"]
        if column.low is not None:
            out["minimum"] = column.low
        if column.high is not None:
            out["maximum"] = column.high
    elif column.kind == "category":
        out["type"] = ["string", "null"]
        out["enum"] = [*column.allowed, None]
    elif column.kind == "id":
        out["type"] = ["string", "integer", "null"]  # a whole number is read as its digits
        out["minimum"], out["maximum"] = -(10**30 - 1), 10**30 - 1  # up to 30 digits
    else:
        out["type"] = ["string", "null"]
    return out


if __name__ == "__main__":
    print(schema_markdown(), end="")
