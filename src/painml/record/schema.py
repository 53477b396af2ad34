"""Reading and validating patient records: the one gate every entry point passes.

Training files, simulator output, batch files and HTTP requests all come through
``load_records`` (or ``split_valid`` when bad rows should be set aside rather
than stop the run), so every stage downstream sees the same canonical frame:
binary, integer and number columns as float64 with NaN for missing, categories
and identifiers as object columns of ``str`` or NaN, in the order of
``columns.INPUT_COLUMNS``. The rules come from the column table in
:mod:`painml.record.columns`; the pandera checks and ``data/README.md`` are
projections of the same table (:mod:`painml.record.projections`).

Parsing is done here with vectorised pandas because the contract accepts more
spellings than pandera coerces (``yes``/``no``, ``3.0`` for an integer); the
range, whole-number and allowed-value checks are a pandera schema built from the
table, run lazily so that every problem in a file is reported at once.
"""

from __future__ import annotations

import difflib
import json
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console

from painml.record.columns import (
    BLOCKS,
    BOOLEAN_WORDS,
    BY_NAME,
    DEFAULT_CLASSES,
    FEATURE_COLUMNS,
    INPUT_COLUMNS,
    LABEL,
    TRUE_PREFIX,
    Column,
)
from painml.record.files import LINE_PROBLEMS, canonical_name, iter_raw, read_raw
from painml.record.labels import relabel
from painml.record.pandera_import import SchemaErrors
from painml.record.problems import Problem, SchemaError, _count, _missing, _python
from painml.record.projections import pandera_schema

__all__ = [
    "FileCheck",
    "Problem",
    "Records",
    "REPEATED_IDS",
    "SchemaError",
    "iter_raw",
    "load_records",
    "read_raw",
    "split_valid",
    "check_file",
    "problem_dict",
    "summarize",
    "validate_file",
]

Source = str | Path | pd.DataFrame | Mapping[str, Any] | Sequence[Mapping[str, Any]]

_ORDER = {name: i for i, name in enumerate(BY_NAME)}


@dataclass(frozen=True, eq=False)
class Records:
    """A validated input: canonical record columns plus anything carried alongside them.

    ``frame`` holds the record columns in schema order, then unknown extra
    columns untouched; ``label`` and ``truth`` are kept out of it so that
    neither can leak into the features.
    """

    frame: pd.DataFrame
    label: pd.Series | None = None
    truth: pd.DataFrame | None = None
    missing_columns: tuple[str, ...] = ()
    extra_columns: tuple[str, ...] = ()
    notices: tuple[str, ...] = ()

    def subset(self, rows: np.ndarray, *, keep_index: bool = False) -> Records:
        """The same records restricted to ``rows`` (a boolean mask or positions)."""

        def take(part: Any) -> Any:
            if part is None:
                return None
            part = part.iloc[rows]
            return part if keep_index else part.reset_index(drop=True)

        return Records(
            frame=take(self.frame),
            label=take(self.label),
            truth=take(self.truth),
            missing_columns=self.missing_columns,
            extra_columns=self.extra_columns,
            notices=self.notices,
        )

    @property
    def features(self) -> pd.DataFrame:
        """The model inputs only: no identifiers, extras, label or simulator truth."""
        return self.frame.loc[:, list(FEATURE_COLUMNS)]


def load_records(
    source: Source,
    *,
    require_label: bool = False,
    classes: Sequence[str] = DEFAULT_CLASSES,
    allow_extra: bool = True,
) -> Records:
    """Read and validate a whole input; raise ``SchemaError`` listing every problem."""
    checked = _check(_to_frame(source), require_label, classes, allow_extra, 0, _noun(source))
    if checked.problems:
        raise SchemaError(checked.problems)
    return checked.records


def split_valid(
    source: Source,
    *,
    require_label: bool = False,
    classes: Sequence[str] = DEFAULT_CLASSES,
    allow_extra: bool = True,
    row_offset: int = 0,
) -> tuple[Records | None, list[Problem]]:
    """Keep the rows without problems and report the others, so a batch can score what it can.

    Returns ``(None, problems)`` when a problem concerns the input as a whole
    (no rows, a required column absent, unreadable file). ``row_offset`` is added
    to every row number, for inputs read in chunks. Kept rows keep their index.
    """
    try:
        raw = _to_frame(source)
    except SchemaError as error:
        return None, error.problems
    checked = _check(raw, require_label, classes, allow_extra, row_offset, _noun(source))
    if any(p.row is None for p in checked.problems):
        return None, checked.problems
    return checked.records.subset(~checked.bad, keep_index=True), checked.problems


def summarize(records: Records) -> str:
    """Rows, columns, share of missing cells per block and class shares: what to glance at before training."""
    frame, n = records.frame, len(records.frame)
    extra = f", {len(records.extra_columns)} extra carried through" if records.extra_columns else ""
    present = len(INPUT_COLUMNS) - len(records.missing_columns)
    lines = [f"{_count(n, 'row')}, {present} of {len(INPUT_COLUMNS)} record columns present{extra}"]
    if not n:
        return lines[0]
    lines.append("missing cells by block:")
    width = max(map(len, BLOCKS))
    for block, names in BLOCKS.items():
        share = frame.loc[:, list(names)].isna().to_numpy().mean()
        absent = " (not recorded)" if set(names) <= set(records.missing_columns) else ""
        lines.append(f"  {block:<{width}} {share:6.1%}{absent}")
    if records.label is not None:
        counts = records.label.fillna("(missing)").value_counts()
        shares = ", ".join(f"{name} {k:,} ({k / n:.1%})" for name, k in counts.items())
        lines.append(f"classes: {shares}")
    return "\n".join(lines)


@dataclass(frozen=True)
class FileCheck:
    """What ``painml validate`` found in a file: the summary, notices and problems, for a person or a script."""

    file: str
    records: Records | None
    problems: list[Problem]
    notices: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: counts, column lists, notices and every problem (values cut to 1,000 characters)."""
        records = self.records
        out: dict[str, Any] = {"file": self.file, "valid": self.valid}
        if records is not None:
            out |= {
                "rows": len(records.frame),
                "record_columns_present": len(INPUT_COLUMNS) - len(records.missing_columns),
                "missing_columns": list(records.missing_columns),
                "extra_columns": list(records.extra_columns),
            }
            if records.label is not None:
                out["classes"] = {str(k): int(v) for k, v in records.label.value_counts().items()}
        out["notices"] = list(self.notices)
        out["problems"] = [problem_dict(p) for p in self.problems]
        return out


def problem_dict(problem: Problem) -> dict[str, Any]:
    """One problem as JSON: row, patient_id, column, value (as text), expected, and the sentence a person reads."""
    value = None if _missing(problem.value) else _python(problem.value)
    if isinstance(value, str) and len(value) > 1_000:
        value = value[:1_000]
    elif value is not None and not isinstance(value, (int, float, bool, str)):
        value = str(value)[:1_000]
    if isinstance(value, float) and not np.isfinite(value):
        value = str(value)
    return {
        "row": problem.row,
        "patient_id": problem.patient_id,
        "column": problem.column,
        "value": value,
        "expected": problem.expected,
        "message": str(problem),
    }


def check_file(
    path: str | Path,
    require_label: bool = False,
    *,
    classes: Sequence[str] = DEFAULT_CLASSES,
    label_map: Mapping[str, str] | None = None,
    label_drop: Sequence[str] = (),
) -> FileCheck:
    """Everything ``validate`` reports about a file; bad input is collected, never raised.

    Labels are read through the map and drop rules of a training config when
    given, as training reads them.
    """
    try:
        raw = read_raw(path)
    except SchemaError as error:
        return FileCheck(Path(path).name, None, error.problems)
    raw, rules = relabel(raw, classes, label_map, label_drop, source=f"file {Path(path).name}", report_unknown=True)
    checked = _check(raw, require_label, classes, True, 0, "file")
    problems = [*rules.problems, *checked.problems] if rules.problems else checked.problems
    notices = (*rules.summary(), *checked.records.notices)
    return FileCheck(Path(path).name, checked.records.subset(rules.keep, keep_index=True), problems, notices)


def validate_file(
    path: str | Path,
    require_label: bool = False,
    *,
    classes: Sequence[str] = DEFAULT_CLASSES,
    label_map: Mapping[str, str] | None = None,
    label_drop: Sequence[str] = (),
    as_json: bool = False,
) -> int:
    """Print a summary, notices and every problem of a file (or all of it as JSON); exit code 0 if valid, else 1.

    Meant for ``painml validate FILE``. Lines are never wrapped, so that they can be searched in logs.
    """
    found = check_file(path, require_label, classes=classes, label_map=label_map, label_drop=label_drop)
    if as_json:
        sys.stdout.write(json.dumps(found.as_dict(), ensure_ascii=False) + "\n")
        return 0 if found.valid else 1
    console = Console(highlight=False, soft_wrap=True)
    if found.records is None:
        console.print(str(SchemaError(found.problems)), markup=False, style="red")
        return 1
    console.print(summarize(found.records), markup=False)
    for notice in found.notices:
        console.print(f"note: {notice}", markup=False, style="yellow")
    if found.problems:
        console.print(SchemaError(found.problems).report(), markup=False, style="red")
        return 1
    console.print(f"{found.file}: valid", markup=False, style="bold green")
    return 0


@dataclass(frozen=True)
class _Checked:
    records: Records
    problems: list[Problem]
    bad: np.ndarray


def _check(
    raw: pd.DataFrame,
    require_label: bool,
    classes: Sequence[str],
    allow_extra: bool,
    row_offset: int,
    noun: str,
) -> _Checked:
    """Coerce every known column, check it, and collect problems for all rows at once."""
    classes = tuple(classes)
    problems: list[Problem] = []
    lines: dict[int, str] = raw.attrs.get(LINE_PROBLEMS) or {}
    names = [canonical_name(name) for name in raw.columns]
    raw = raw.set_axis(names, axis=1)
    repeated = _repeated(names)
    if repeated:
        problems.extend(Problem(None, name, None, "this column appears more than once") for name in repeated)
        raw = raw.loc[:, ~raw.columns.duplicated()]
    n = len(raw)
    if n == 0:
        problems.append(Problem(None, None, None, f"the {noun} has no rows"))

    truth_names = [c for c in raw.columns if c.startswith(TRUE_PREFIX)]
    extras = tuple(c for c in raw.columns if c not in BY_NAME and not c.startswith(TRUE_PREFIX))
    missing = tuple(c.name for c in INPUT_COLUMNS if c.name not in raw.columns)
    if extras and not allow_extra:
        problems.extend(
            Problem(None, name, None, "unknown column; the patient record's columns are listed in data/README.md")
            for name in extras
        )
    elif extras:
        problems.extend(_misspelled(extras))
    has_label = LABEL.name in raw.columns
    if require_label and not has_label:
        message = f"training data needs a {LABEL.name} column with one of: {', '.join(classes)}"
        problems.append(Problem(None, LABEL.name, None, message))

    positional = raw.set_axis(pd.RangeIndex(n), axis=0)
    work: dict[str, Any] = {}
    unparsed: dict[str, np.ndarray] = {}
    for column in INPUT_COLUMNS:
        if column.name in positional.columns:
            work[column.name], bad = _PARSERS[column.kind](positional[column.name], column)
            if bad is not None and bad.any():
                unparsed[column.name] = bad
        else:
            work[column.name] = pd.Series(np.nan, index=positional.index, dtype=_DTYPES[column.kind])
    if has_label:
        work[LABEL.name] = _choice(positional[LABEL.name], classes)
    coerced = pd.DataFrame(work, index=positional.index)

    found: dict[tuple[int, str], Problem] = {}
    for name, bad in unparsed.items():
        _add_cells(found, positional, name, np.flatnonzero(bad), BY_NAME[name].expected, row_offset)
    try:
        pandera_schema(classes, require_label).validate(coerced, lazy=True)
    except SchemaErrors as error:
        label_expected = f"one of {', '.join(classes)}"
        if require_label:
            label_expected += " (training data needs a label in every row)"
        cases = error.failure_cases
        for name, group in cases.groupby("column", sort=False):
            index = group["index"]
            if index.isna().any():
                problems.append(Problem(None, str(name), None, "; ".join(map(str, group["check"].unique()))))
            expected = label_expected if name == LABEL.name else BY_NAME[str(name)].expected
            _add_cells(found, positional, str(name), index.dropna().to_numpy(dtype=np.int64), expected, row_offset)
    for row, why in lines.items():
        position = row - row_offset - 1
        for name in list(positional.columns):
            found.pop((row, name), None)
        found[(row, "")] = Problem(row, None, None, why, _patient_id(positional, position))
    problems.extend(found.values())
    problems.sort(key=lambda p: (p.row is not None, p.row or 0, _ORDER.get(p.column or "", len(_ORDER))))

    bad_rows = np.zeros(n, dtype=bool)
    bad_rows[[row - row_offset - 1 for row, _ in found]] = True
    notices = _notices(missing, truth_names, extras if allow_extra else (), noun)
    repeated_ids = _repeated_ids(coerced["patient_id"], row_offset)
    if repeated_ids:
        notices = (*notices, repeated_ids)

    label = coerced.pop(LABEL.name).set_axis(raw.index) if has_label else None
    frame = pd.concat([coerced.set_axis(raw.index), raw.loc[:, list(extras)]], axis=1)
    truth = _truth(raw, truth_names) if truth_names else None
    records = Records(
        frame=frame,
        label=label,
        truth=truth,
        missing_columns=missing,
        extra_columns=extras,
        notices=notices,
    )
    return _Checked(records, problems, bad_rows)


def _repeated(names: list[str]) -> list[str]:
    """Names that occur more than once, in order of first occurrence (linear: headers can be very wide)."""
    counts = Counter(names)
    return [name for name, k in counts.items() if k > 1]


_KNOWN_LOWER = tuple(BY_NAME)
REPEATED_IDS = "patient_id repeats an earlier row's"
SUGGESTED_COLUMNS = 1_000
"""Unknown columns examined for a likely misspelling, so that a header of 100,000 names is checked in linear time."""


def _key(name: str) -> str:
    """A header name as a column name would be spelled: lower case, words joined by underscores."""
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def _suggestion(name: str) -> str | None:
    """The record column an unknown name most likely meant (``Pain Intensity``, ``brush_alodynia``), if any.

    The cutoff (0.9) catches one wrong letter in a name of ten or more, but not a clinic's own columns that merely
    look alike (``pain_score`` beside ``pain_course``, ``sites`` beside ``site``), which are carried through."""
    key = _key(name)
    if key in BY_NAME:
        return key
    if not 3 <= len(key) <= 60:
        return None
    close = difflib.get_close_matches(key, _KNOWN_LOWER, n=1, cutoff=0.9)
    return close[0] if close else None


@lru_cache(maxsize=8)
def _misspelled(extras: tuple[str, ...]) -> tuple[Problem, ...]:
    """An unknown column that closely matches a record column is a problem, not an extra to carry: every
    patient would silently be "not examined" for the finding the column meant. Cached: a batch asks once per chunk."""
    out = []
    for name in extras[:SUGGESTED_COLUMNS]:
        meant = _suggestion(name)
        if meant is not None:
            message = f"unknown column; did you mean {meant!r}? (rename it; other unknown columns are carried through)"
            out.append(Problem(None, name, None, message))
    return tuple(out)


def _patient_id(positional: pd.DataFrame, position: int) -> str | None:
    if "patient_id" not in positional.columns or not 0 <= position < len(positional):
        return None
    value = positional["patient_id"].iat[position]
    return None if _missing(value) else str(value)


def _repeated_ids(ids: pd.Series, row_offset: int) -> str | None:
    """A notice naming the rows (never the identifiers) whose patient_id occurred in an earlier row."""
    present = ids.dropna()
    again = present.duplicated(keep="first")
    if not again.any():
        return None
    rows = (np.flatnonzero(ids.notna().to_numpy())[again.to_numpy()] + 1 + row_offset).tolist()
    shown = ", ".join(map(str, rows[:10])) + (", ..." if len(rows) > 10 else "")
    return f"{REPEATED_IDS} in {_count(len(rows), 'row')} ({shown}); each row is scored on its own"


def _add_cells(
    found: dict[tuple[int, str], Problem],
    raw: pd.DataFrame,
    name: str,
    positions: np.ndarray,
    expected: str,
    row_offset: int,
) -> None:
    """One problem per bad cell, showing the value as the caller wrote it; a cell failing two checks counts once."""
    values = raw[name].to_numpy(dtype=object)[positions]
    ids = raw["patient_id"].to_numpy(dtype=object)[positions] if "patient_id" in raw.columns else [None] * len(values)
    for position, value, patient in zip(positions.tolist(), values, ids):
        row = position + 1 + row_offset
        if (row, name) not in found:
            found[(row, name)] = Problem(
                row, name, _python(value), expected, None if _missing(patient) else str(patient)
            )


def _text(values: pd.Series) -> pd.Series:
    """Stripped text with NaN for missing: an empty cell means 'not recorded'."""
    text = values.astype(str).str.strip()
    return text.mask(text == "")


def _recode(values: pd.Series, recode: Callable[[str], Any], missing: Any, dtype: Any) -> np.ndarray:
    """Apply ``recode`` to the stripped text of each distinct value only: columns have few values, rows are many.

    Blank text counts as missing. Looking values up per distinct value is what
    keeps this fast; ``Series.map`` on Arrow strings works cell by cell, and
    so does converting a column of Python objects to text first (a CSV column
    of true/false with blanks arrives as objects). Unhashable JSON values
    (lists, objects) are compared as their text.
    """
    try:
        codes, uniques = pd.factorize(values)
    except TypeError:
        codes, uniques = pd.factorize(values.astype(str))
    table = [missing if not (text := str(value).strip()) else recode(text) for value in uniques]
    return np.array([*table, missing], dtype=dtype)[codes]


def _is_number(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype)


def _floats(values: pd.Series) -> np.ndarray:
    return values.to_numpy(dtype="float64", na_value=np.nan, copy=True)


def _parse_binary(values: pd.Series, column: Column) -> tuple[np.ndarray, np.ndarray]:
    if pd.api.types.is_numeric_dtype(values.dtype):
        x = _floats(values)
        bad = ~np.isnan(x) & (x != 0) & (x != 1)
    else:
        x = _recode(values, lambda text: BOOLEAN_WORDS.get(text.lower(), -1.0), np.nan, "float64")
        bad = x == -1.0
    x[bad] = np.nan
    return x, bad


def _parse_number(values: pd.Series, column: Column) -> tuple[np.ndarray, np.ndarray]:
    if _is_number(values):
        x = _floats(values)
        present = ~np.isnan(x)
    else:
        text = _text(values)
        present = text.notna().to_numpy()
        x = pd.to_numeric(text, errors="coerce").to_numpy(dtype="float64", na_value=np.nan, copy=True)
    bad = present & ~np.isfinite(x)
    x[bad] = np.nan
    return x, bad


def _choice(values: pd.Series, allowed: Sequence[str]) -> pd.Series:
    """Canonical spelling for known values (any case); unknown values keep their text for the check to report."""
    canonical = {value.lower(): value for value in allowed}
    return pd.Series(_recode(values, lambda text: canonical.get(text.lower(), text), np.nan, object), dtype=object)


def _parse_category(values: pd.Series, column: Column) -> tuple[pd.Series, None]:
    return _choice(values, column.allowed), None


def _parse_id(values: pd.Series, column: Column) -> tuple[pd.Series, None]:
    return _text(values).astype(object), None


_PARSERS: dict[str, Callable[[pd.Series, Column], tuple[Any, np.ndarray | None]]] = {
    "binary": _parse_binary,
    "integer": _parse_number,
    "number": _parse_number,
    "category": _parse_category,
    "id": _parse_id,
}
_DTYPES = {"binary": "float64", "integer": "float64", "number": "float64", "category": object, "id": object}


def _truth(raw: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Simulator ground truth, numeric where every present value is a number (CSV reads them as text)."""
    out: dict[str, Any] = {}
    for name in names:
        values = raw[name]
        if _is_number(values):
            out[name] = _floats(values)
            continue
        text = _text(values)
        numbers = pd.to_numeric(text, errors="coerce")
        numeric = text.notna().any() and bool((numbers.notna() == text.notna()).all())
        out[name] = numbers.to_numpy(dtype="float64", na_value=np.nan) if numeric else text.astype(object)
    return pd.DataFrame(out, index=raw.index)


def _notices(missing: tuple[str, ...], truth: list[str], extras: tuple[str, ...], noun: str) -> tuple[str, ...]:
    notices = []
    for block, names in BLOCKS.items():
        absent = [name for name in names if name in missing]
        if absent:
            size = f"{len(absent)} columns" if len(absent) == len(names) else f"{len(absent)} of {len(names)} columns"
            notices.append(
                f"not recorded by this {noun} (treated as missing): {block} block ({size}: {', '.join(absent)})"
            )
    if truth:
        notices.append(f"simulator-only columns set aside, never used as inputs: {', '.join(truth)}")
    if extras:
        known = len(INPUT_COLUMNS) - len(missing)
        if len(extras) > known:
            shown = ", ".join(_with_guess(name) for name in extras[:20]) + (", ..." if len(extras) > 20 else "")
            notices.append(
                f"most columns ({len(extras):,} of {len(extras) + known:,}) are not patient-record columns; "
                f"check the header: {shown}"
            )
        else:
            notices.append(
                f"extra columns carried through untouched, not used as features: {', '.join(map(_short, extras))}"
            )
    return tuple(notices)


def _short(name: str, limit: int = 40) -> str:
    return name if len(name) <= limit else f"{name[:limit]}... ({len(name):,} characters)"


def _with_guess(name: str) -> str:
    """The name, and the record column it may have meant when one is roughly similar."""
    key = _key(name)
    close = difflib.get_close_matches(key, _KNOWN_LOWER, n=1, cutoff=0.6) if len(key) <= 60 else []
    return _short(name) + (f" (perhaps {close[0]}?)" if close else "")


def _to_frame(source: Source) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        return source
    if isinstance(source, (str, Path)):
        return read_raw(source)
    if isinstance(source, Mapping):
        return pd.DataFrame([source])
    if isinstance(source, Sequence):
        records = list(source)
        wrong = [i + 1 for i, record in enumerate(records) if not isinstance(record, Mapping)]
        if wrong:
            shown = ", ".join(map(str, wrong[:10])) + (", ..." if len(wrong) > 10 else "")
            message = f"each record must be an object of column: value pairs; these are not: {shown}"
            raise SchemaError([Problem(None, None, None, message)])
        return pd.DataFrame(records)
    raise TypeError(f"cannot read patient records from {type(source).__name__}")


def _noun(source: Source) -> str:
    return "file" if isinstance(source, (str, Path)) else "input"
