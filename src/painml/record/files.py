"""Reading record files (CSV, Parquet) as they are, before any judgement, and pinning them by hash.

A file that cannot be read at all raises :class:`painml.record.problems.SchemaError`
with one whole-input problem; everything else is judged by :mod:`painml.record.schema`.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.parquet as pq

from painml.record.columns import BY_NAME, FEATURE_COLUMNS, TRUE_PREFIX
from painml.record.problems import Problem, SchemaError

__all__ = ["DELIMITERS", "LINE_PROBLEMS", "canonical_name", "file_sha256", "iter_raw", "read_raw"]

_HASH_BLOCK = 1 << 20
PARQUET_ROW_GROUP_ROWS = 128_000
"""Most rows in one Parquet row group written by painml: Spark and other engines split a file into tasks by
row group, and a million rows in one group would be read by one task."""
_SCAN_BLOCK = 1 << 24

DELIMITERS = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}
"""The field separators a CSV file may use; the one that splits the header into known columns is chosen."""

LINE_PROBLEMS = "painml_line_problems"
"""``DataFrame.attrs`` key: {data row (1-based): why the line is not a record}, for lines pandas would mis-read."""

_LOWER = {name.lower(): name for name in BY_NAME}


def canonical_name(name: object) -> str:
    """A header name as the record knows it: trimmed, and a known column's spelling whatever its case."""
    text = str(name).strip()
    return _LOWER.get(text.lower(), text)


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a whole file, read in 1 MiB blocks.

    MLflow's dataset digest only covers the first rows; this pins the exact data.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def read_raw(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file without judging it; ``SchemaError`` only if it cannot be read at all.

    In CSV, identifiers, categories and unknown columns stay text as written
    (leading zeros kept); numeric columns are left to pandas' fast inference,
    since the parsers accept either.
    """
    path = Path(path)
    kind = _file_kind(path)
    try:
        if kind == "CSV":
            header, lines, options = _csv_options(path)
            frame = _named(pd.read_csv(path, **options), header)
            frame.attrs[LINE_PROBLEMS] = lines
            return frame
        frame = pd.read_parquet(path)
        _require_feature(path, list(frame.columns), "Parquet columns")
        return frame
    except SchemaError:
        raise
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except FileNotFoundError:
        raise SchemaError([Problem(None, None, None, f"no such file: {path}")]) from None
    except (OSError, ValueError, csv.Error, pyarrow.lib.ArrowException) as error:
        raise SchemaError([_unreadable(path, kind, error)]) from None


def iter_raw(path: str | Path, chunksize: int, *, truth: bool = True) -> Iterator[tuple[int, pd.DataFrame]]:
    """Yield ``(row_offset, chunk)`` read as ``read_raw`` does, for ``split_valid(chunk, row_offset=...)``.

    ``truth=False`` does not read simulator ``true_*`` columns at all (scoring
    has no use for them, and parsing them costs as much as a dozen findings).
    """
    path = Path(path)
    kind = _file_kind(path)
    offset = 0
    wanted = (lambda name: True) if truth else (lambda name: not str(name).strip().lower().startswith(TRUE_PREFIX))
    try:
        if kind == "CSV":
            header, lines, options = _csv_options(path)
            keep = [i for i, name in enumerate(header) if wanted(name)]
            usecols = [options["names"][i] for i in keep]
            if len(options["names"]) == len(header):  # pandas refuses usecols when a line is longer than the header
                options["usecols"] = usecols
            header = [header[i] for i in keep]
            for chunk in pd.read_csv(path, chunksize=chunksize, **options):
                chunk = _named(chunk.loc[:, usecols], header)
                chunk.attrs[LINE_PROBLEMS] = {
                    row: why for row, why in lines.items() if offset < row <= offset + len(chunk)
                }
                yield offset, chunk
                offset += len(chunk)
        else:
            parquet = pq.ParquetFile(path)
            _require_feature(path, parquet.schema_arrow.names, "Parquet columns")
            names = [name for name in parquet.schema_arrow.names if wanted(name)]
            for batch in parquet.iter_batches(batch_size=chunksize, columns=names):
                chunk = batch.to_pandas()
                yield offset, chunk.set_axis(pd.RangeIndex(offset, offset + len(chunk)), axis=0)
                offset += len(chunk)
    except SchemaError:
        raise
    except pd.errors.EmptyDataError:
        return
    except FileNotFoundError:
        raise SchemaError([Problem(None, None, None, f"no such file: {path}")]) from None
    except (OSError, ValueError, csv.Error, pyarrow.lib.ArrowException) as error:
        raise SchemaError([_unreadable(path, kind, error, offset)]) from None


def _file_kind(path: Path) -> str:
    kinds = {".csv": "CSV", ".parquet": "Parquet"}
    if path.suffix.lower() not in kinds:
        raise SchemaError([Problem(None, None, None, f"cannot read {path.name}: expected a .csv or .parquet file")])
    return kinds[path.suffix.lower()]


def _csv_options(path: Path) -> tuple[list[str], dict[int, str], dict[str, Any]]:
    """The header as written, the lines that are not records (see ``_scan_lines``) and pandas' read options.

    The delimiter is the one that splits the header into known columns. A
    file whose header names no feature column under any delimiter is refused
    here, saying how the header was read: scoring it would make every row an
    all-missing patient. pandas reads columns by position (``c0``, ``c1``, ...
    plus room for the longest line), so that a line with an extra field can
    neither shift the columns (pandas would take the first as an index) nor
    stop the read; ``_named`` puts the header back.
    """
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))  # a wide header or a long cell is not an error
    with path.open(encoding="utf-8-sig", newline="") as handle:
        first = handle.readline()
    best, header, known = ",", [], -1
    for delimiter in DELIMITERS:
        names = next(csv.reader([first], delimiter=delimiter), [])
        count = sum(canonical_name(name) in BY_NAME for name in names)
        if count > known:
            best, header, known = delimiter, names, count
    if header:
        seen = (
            f"{DELIMITERS[best]}-separated header"
            if len(header) > 1
            else "header with no comma, tab, semicolon or pipe"
        )
        _require_feature(path, header, seen)
    if not header:
        raise pd.errors.EmptyDataError("no header")
    lines, widest = _scan_lines(path, best, len(header))
    names = [f"c{i}" for i in range(max(widest, len(header)))]
    text = {names[i]: str for i, name in enumerate(header) if _kept_as_text(canonical_name(name))}
    options = {
        "names": names,
        "header": None,
        "skiprows": 1,
        "index_col": False,
        "dtype": text,
        "encoding": "utf-8-sig",
        "sep": best,
    }
    return header, lines, options


_FEATURES = frozenset(FEATURE_COLUMNS)


def _require_feature(path: Path, names: list[str], how: str) -> None:
    """Refuse a file that names no feature column: scoring it would make every row an all-missing patient."""
    if any(canonical_name(name) in _FEATURES for name in names):
        return
    shown = ", ".join(repr(str(name)[:40]) for name in names[:8]) + (", ..." if len(names) > 8 else "")
    message = (
        f"{path.name}: no patient-record column recognised ({how}: {shown or 'none'}); painml reads CSV (comma, "
        "tab, semicolon or pipe separated) or Parquet files whose columns are the record's (data/README.md)"
    )
    raise SchemaError([Problem(None, None, None, message)])


def _scan_lines(path: Path, delimiter: str, width: int) -> tuple[dict[int, str], int]:
    """Lines pandas would silently mend, as {data row: reason} (rows numbered as pandas numbers them), and
    the largest number of fields on a line.

    pandas pads a short line with empty cells, drops nothing visible for a
    ``#`` comment or a line of NUL bytes (they become a patient) and skips
    blank lines. This pass counts the fields of every line the way pandas
    splits them, so such a line is reported with its line number instead of
    being scored. Files without quotes are scanned as bytes (``_ByteScan``);
    quoted files with the ``csv`` module.
    """
    blank = " \t\r".replace(delimiter, "")
    scan = _ByteScan(delimiter.encode(), blank.encode(), width)
    tail = b""
    with open(path, "rb") as handle:
        while True:
            block = handle.read(_SCAN_BLOCK)
            if b'"' in block:
                break  # quoting can hide separators and newlines: the csv module decides
            data = tail + block
            cut = data.rfind(b"\n") + 1 if block else len(data)
            data, tail = data[:cut], data[cut:]
            if data:
                scan.lines(data if data.endswith(b"\n") else data + b"\n")
            if not block:
                return scan.found, scan.widest
    found: dict[int, str] = {}
    row = widest = 0
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        next(reader, None)
        start = reader.line_num + 1
        for fields in reader:
            line_no, start = start, reader.line_num + 1
            if not fields or (len(fields) == 1 and not fields[0].strip(blank)):
                continue
            row += 1
            widest = max(widest, len(fields))
            why = _line_problem(len(fields), width, fields[0].lstrip(blank)[:1] == "#", any("\0" in f for f in fields))
            if why:
                found[row] = f"line {line_no}: {why}"
    return found, widest


class _ByteScan:
    """``_scan_lines`` for a file without quotes, a block of whole lines at a time.

    Fields per line are counted with numpy (separators summed per line);
    only the lines that may be wrong (a field count other than the header's,
    a ``#`` or a NUL byte somewhere in them, blank lines) are looked at one by
    one. An ordinary file is therefore scanned at a fraction of pandas'
    reading time.
    """

    def __init__(self, sep: bytes, space: bytes, width: int):
        self.sep, self.space, self.width = sep, space, width
        self.found: dict[int, str] = {}
        self.widest = 0
        self.row = 0  # data rows before this block (blank lines and the header not counted)
        self.line = 0  # lines before this block

    def lines(self, data: bytes) -> None:
        arr = np.frombuffer(data, dtype=np.uint8)
        ends = np.flatnonzero(arr == 10)
        starts = np.concatenate(([0], ends[:-1] + 1))
        counts = np.add.reduceat(arr == self.sep[0], starts, dtype=np.int64)
        self.widest = max(self.widest, int(counts.max()) + 1)
        look = counts != self.width - 1 if self.width > 1 else np.ones(len(ends), dtype=bool)
        for special in (b"#", b"\0"):
            if special in data:
                look[np.searchsorted(ends, np.flatnonzero(arr == special[0]))] = True
        if self.line == 0:
            look[0] = True  # the header
        blanks = 0
        for i in np.flatnonzero(look).tolist():
            number = self.line + i + 1
            if number == 1:
                blanks += 1  # not a data row either
                continue
            text = data[starts[i] : ends[i]]
            if not text.strip(self.space):
                blanks += 1
                continue
            why = _line_problem(int(counts[i]) + 1, self.width, text.lstrip(self.space)[:1] == b"#", b"\0" in text)
            if why:
                self.found[self.row + i + 1 - blanks] = f"line {number}: {why}"
        self.row += len(ends) - blanks
        self.line += len(ends)


def _line_problem(fields: int, width: int, comment: bool, nul: bool) -> str | None:
    if comment:
        return "a '#' comment line; CSV has no comments, remove it"
    if nul:
        return "NUL bytes in the line"
    if fields < width:
        return f"{fields} field{'s' if fields != 1 else ''} where the header has {width} (a short or broken line)"
    if fields > width:
        return f"{fields} fields where the header has {width} (an extra field, perhaps an unquoted separator)"
    return None


def _kept_as_text(name: str) -> bool:
    column = BY_NAME.get(name)
    if column is None:
        return not name.lower().startswith(TRUE_PREFIX)
    return column.kind in ("id", "category")


def _named(frame: pd.DataFrame, header: list[str]) -> pd.DataFrame:
    """The header's names on the columns pandas read by position; room left for long lines is dropped.

    Repeated names stay repeated, so they are reported, not carried.
    """
    if frame.shape[1] > len(header):
        frame = frame.iloc[:, : len(header)]
    return frame.set_axis(header, axis=1)


def _unreadable(path: Path, kind: str, error: Exception, offset: int = 0) -> Problem:
    detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    where = f" after row {offset}" if offset else ""
    return Problem(None, None, None, f"cannot read {path.name} as {kind}{where}: {detail}")
