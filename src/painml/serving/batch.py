"""Scoring a CSV or Parquet file in chunks, with bounded memory and an all-or-nothing output.

:func:`score_file` reads the input ``chunksize`` rows at a time
(:func:`painml.record.schema.iter_raw`), sets aside the rows that fail validation
(:func:`painml.record.schema.split_valid`, numbered as in the file) and scores the
others with the one :class:`painml.serving.predictor.Predictor`, so a row scores the
same here as over HTTP. Memory holds one chunk, never the file.

- Output: ``patient_id``, ``site`` when the input has it, every extra input
  column (to join back; Parquet types such as timestamps and decimals kept),
  the label if the input had one, then the predictor's columns. CSV or
  Parquet by the output's extension, streamed (pyarrow writers).
- Atomic: everything is written to a temporary file in the output's folder
  and renamed over the output only at the end. The temporary file is made
  with ``tempfile.mkstemp`` (a name nobody can predict, created exclusively,
  readable by its owner only), so a link planted beside the output cannot
  redirect the write. An exception, Ctrl-C or SIGTERM (the command turns it
  into Ctrl-C) removes the temporary files: no output, or the complete
  output, never half. A run killed outright (SIGKILL, power loss) cannot
  clean up; the next run for the same output removes what it left, since the
  temporary names carry the writing process's id.
- Rejected rows go to ``OUTPUT.errors.csv`` (row, patient_id, column, value,
  expected; one line per problem, rows numbered from 1 as in the input),
  written the same way; a stale errors file from an earlier run is removed
  when there is nothing to report.
"""

from __future__ import annotations

import csv
import glob
import math
import os
import queue
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from painml.record import schema
from painml.record.files import PARQUET_ROW_GROUP_ROWS
from painml.serving.predictor import Predictor

__all__ = ["BatchResult", "errors_path", "score_file"]

OUTPUT_KINDS = (".csv", ".parquet")
ERROR_COLUMNS = ("row", "patient_id", "column", "value", "expected")
_TEMP_SUFFIX = ".tmp"


@dataclass
class BatchResult:
    """What a batch run did: counts, where things went, how long it took."""

    output: Path
    errors: Path | None
    rows_read: int = 0
    rows_scored: int = 0
    rows_rejected: int = 0
    problems: int = 0
    seconds: float = 0.0
    notices: tuple[str, ...] = ()
    predicted: dict[str, int] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else float("nan")


def errors_path(output: str | Path) -> Path:
    """``OUTPUT.errors.csv`` next to the output (``scores.csv`` -> ``scores.csv.errors.csv``)."""
    output = Path(output)
    return output.with_name(output.name + ".errors.csv")


def score_file(
    predictor: Predictor,
    input: str | Path,
    output: str | Path,
    chunksize: int = 50_000,
    reasons: int = 0,
    progress: bool = True,
    *,
    threads: int | None = None,
    console: Any = None,
) -> BatchResult:
    """Score ``input`` into ``output``; :class:`painml.record.schema.SchemaError` if the file as a whole is unusable.

    A file-level problem (unreadable, no rows, a column twice) stops the run
    before anything is written; row-level problems only set rows aside.

    The next chunk is read and validated on a second thread while the current
    one is scored. ``threads`` splits each chunk's trees and explanations
    across that many threads (default: one per 2,000 rows of a chunk, up to
    every core).
    """
    input, output = Path(input), Path(output)
    if output.suffix.lower() not in OUTPUT_KINDS:
        raise ValueError(f"{output}: the output must end in .csv or .parquet")
    if chunksize < 1:
        raise ValueError("chunksize must be at least 1")
    if output.resolve() == input.resolve():
        raise ValueError(f"{output}: the output would overwrite the input")
    if not output.parent.is_dir():
        raise FileNotFoundError(f"{output.parent}: no such folder for the output")
    reasons = int(reasons)
    start = time.perf_counter()
    total = _count_rows(input)
    result = BatchResult(output=output, errors=None)
    err_final = errors_path(output)
    for path in (output, err_final):
        remove_stale_temporaries(path)
    tmp: Path | None = None
    err_tmp: Path | None = None
    writer: _Writer | None = None
    err_handle = None
    err_writer = None
    notices: dict[str, None] = {}
    predicted: dict[str, int] = {}
    ids = _RepeatedIds()
    try:
        with (
            _progress(progress, total, input.name, console) as advance,
            closing(_prefetch(_validated(input, chunksize, predictor.classes))) as chunks,
        ):
            for chunk_rows, records, problems in chunks:
                result.rows_read += chunk_rows
                if problems:
                    if err_writer is None:
                        fd, err_tmp = _temporary(err_final)
                        err_handle = open(fd, "w", newline="", encoding="utf-8")
                        err_writer = csv.writer(err_handle)
                        err_writer.writerow(ERROR_COLUMNS)
                    err_writer.writerows(_problem_rows(problems))
                    result.problems += len(problems)
                    result.rows_rejected += len({p.row for p in problems})
                notices.update(dict.fromkeys(n for n in records.notices if not n.startswith(schema.REPEATED_IDS)))
                ids.add(records.frame["patient_id"])
                if len(records.frame) == 0:  # every row of this chunk was set aside
                    advance(chunk_rows)
                    continue
                frame = _output_frame(predictor, records, reasons, threads)
                if writer is None:
                    fd, tmp = _temporary(output)
                    writer = _Writer(fd, output.suffix.lower(), frame)
                writer.write(frame)
                result.rows_scored += len(frame)
                for cls, count in frame["predicted_class"].value_counts().items():
                    predicted[cls] = predicted.get(cls, 0) + int(count)
                advance(chunk_rows)
        if result.rows_read == 0:
            raise schema.SchemaError([schema.Problem(None, None, None, f"{input.name} has no rows")])
        if writer is None:  # every row was rejected: still an output, with no rows
            fd, tmp = _temporary(output)
            writer = _Writer(fd, output.suffix.lower(), _empty_output(predictor, reasons))
        writer.close()
        writer = None
        if err_handle is not None:
            _close_synced(err_handle)
            err_handle = None
        os.replace(tmp, output)
        if err_writer is not None:
            os.replace(err_tmp, err_final)
            result.errors = err_final
        elif err_final.exists():  # from an earlier run of the same output
            err_final.unlink()
    except BaseException:
        if writer is not None:
            writer.abort()
        if err_handle is not None:
            err_handle.close()
        for path in (tmp, err_tmp):
            if path is not None:
                path.unlink(missing_ok=True)
        raise
    result.seconds = time.perf_counter() - start
    if ids.repeated:
        notices[ids.notice()] = None
    result.notices = tuple(notices)
    result.predicted = predicted
    return result


# --------------------------------------------------------------------------- temporary files


def _temporary(final: Path) -> tuple[int, Path]:
    """A new file beside ``final`` for writing it atomically: unpredictable name, exclusive creation, mode 0600.

    The name carries this process's id, so that a later run can tell a file
    left by a killed run (see :func:`remove_stale_temporaries`) from one being written now.
    """
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.{os.getpid()}.", suffix=_TEMP_SUFFIX, dir=final.parent)
    return fd, Path(name)


def remove_stale_temporaries(final: Path) -> list[Path]:
    """Remove temporary files of ``final`` left by runs that no longer exist (killed, or the machine stopped).

    They hold patient rows; a file whose writing process still runs is left alone.
    """
    pattern = re.compile(re.escape(f".{final.name}.") + r"(\d+)\.(?:[^/]*\.)?tmp")
    removed = []
    for candidate in glob.glob(glob.escape(str(final.parent / f".{final.name}.")) + "*" + _TEMP_SUFFIX):
        path = Path(candidate)
        match = pattern.fullmatch(path.name)
        if match is None or _alive(int(match.group(1))):
            continue
        try:
            path.unlink()
            removed.append(path)
        except FileNotFoundError:
            pass
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this run has not made its files yet: any with its id are from a run before a reboot
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


class _RepeatedIds:
    """Rows whose patient_id an earlier row of the file already had, counted across chunks.

    Only 64-bit hashes of the ids seen are kept (8 bytes a row, sorted), so
    memory stays bounded by the file's rows, not their text; a collision
    between two different ids is vanishingly unlikely and would only add a
    row to a notice.
    """

    def __init__(self) -> None:
        self.seen = np.empty(0, dtype=np.uint64)
        self.repeated = 0
        self.rows: list[int] = []

    def add(self, ids: pd.Series) -> None:
        present = ids.dropna()
        if present.empty:
            return
        hashes = pd.util.hash_array(present.to_numpy(dtype=object))
        again = pd.Series(hashes).duplicated().to_numpy()
        if len(self.seen):
            at = np.minimum(np.searchsorted(self.seen, hashes), len(self.seen) - 1)
            again = again | (self.seen[at] == hashes)
        if again.any():
            self.repeated += int(again.sum())
            self.rows.extend((present.index[again][: 10 - len(self.rows)] + 1).tolist())
        self.seen = np.union1d(self.seen, hashes)

    def notice(self) -> str:
        shown = ", ".join(map(str, self.rows)) + (", ..." if self.repeated > len(self.rows) else "")
        rows = f"{self.repeated:,} row" + ("s" if self.repeated != 1 else "")
        return f"{schema.REPEATED_IDS} in {rows} ({shown}); each row is scored on its own"


# --------------------------------------------------------------------------- pieces


def _validated(path: Path, chunksize: int, classes: list[str]) -> Iterator[tuple[int, schema.Records, list]]:
    """(rows read, valid records, problems) per chunk; a problem with the file as a whole raises."""
    for offset, chunk in schema.iter_raw(path, chunksize, truth=False):
        records, problems = schema.split_valid(chunk, classes=classes, allow_extra=True, row_offset=offset)
        if records is None:
            raise schema.SchemaError([_as_file_problem(p, path) for p in problems])
        yield len(chunk), records, problems


def _prefetch(items: Iterator[Any], depth: int = 1) -> Iterator[Any]:
    """Run ``items`` one step ahead on a thread; its exceptions are raised here, in order.

    Closing the generator (an exception or Ctrl-C in the consumer) tells the
    thread to stop after the item it is working on.
    """
    channel: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(message: tuple[bool, Any]) -> bool:
        while not stop.is_set():
            try:
                channel.put(message, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
            put((True, done))
        except BaseException as error:
            put((False, error))

    worker = threading.Thread(target=work, name="painml-batch-reader", daemon=True)
    worker.start()
    try:
        while True:
            ok, item = channel.get()
            if not ok:
                raise item
            if item is done:
                return
            yield item
    finally:
        stop.set()
        worker.join(timeout=30)


def _output_frame(
    predictor: Predictor, records: schema.Records, reasons: int, threads: int | None = None
) -> pd.DataFrame:
    """patient_id, the extra input columns, the label if given, then the prediction columns."""
    scored = predictor.score_records(records, reasons=reasons, threads=threads or None)
    out = predictor.to_frame(scored, records.frame.index, reasons)
    carried = {}
    if "site" not in records.missing_columns:
        carried["site"] = records.frame["site"]
    carried |= {c: records.frame[c] for c in records.extra_columns if c not in out.columns}
    if records.label is not None and "pain_type" not in out.columns:
        carried["pain_type"] = records.label
    if not carried:
        return out.reset_index(drop=True)
    front = pd.DataFrame({"patient_id": out["patient_id"], **carried}, index=out.index)
    return pd.concat([front, out.drop(columns=["patient_id"])], axis=1).reset_index(drop=True)


FLOAT_OUTPUTS = ("confidence", "dn4", "paindetect", "neupsig_grade")
"""Output columns besides the probabilities that hold numbers (missing as NaN in a frame)."""


def _empty_output(predictor: Predictor, reasons: int) -> pd.DataFrame:
    columns = predictor.output_columns(reasons)
    floats = {c for c in columns if c.startswith("p_") or c in FLOAT_OUTPUTS}
    return pd.DataFrame({c: pd.Series(dtype="float64" if c in floats else object) for c in columns})


def _problem_rows(problems: list[schema.Problem]) -> Iterator[tuple[Any, ...]]:
    for p in problems:
        missing = p.value is None or p.value is pd.NA or (isinstance(p.value, float) and math.isnan(p.value))
        value = "" if missing else str(p.value)
        yield ("" if p.row is None else p.row, p.patient_id or "", p.column or "", value, p.expected)


def _as_file_problem(problem: schema.Problem, path: Path) -> schema.Problem:
    if problem.row is None and problem.column is None and problem.expected.startswith("the input has no rows"):
        return schema.Problem(None, None, None, f"{path.name} has no rows")
    return problem


class _Writer:
    """A streaming CSV or Parquet writer whose column types are fixed by the first chunk."""

    def __init__(self, fd: int, kind: str, first: pd.DataFrame):
        self.handle = open(fd, "wb")
        self.schema, self.as_text = _arrow_schema(first, kind)
        self.parquet = kind == ".parquet"
        if self.parquet:
            import pyarrow.parquet as pq

            self.writer = pq.ParquetWriter(self.handle, self.schema, compression="zstd")
        else:
            import pyarrow.csv as pacsv

            self.writer = pacsv.CSVWriter(
                self.handle, self.schema, write_options=pacsv.WriteOptions(quoting_style="needed")
            )

    def write(self, frame: pd.DataFrame) -> None:
        if self.as_text:
            frame = frame.assign(**{name: _as_text(frame[name]) for name in self.as_text})
        try:
            table = pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
            raise ValueError(f"a later chunk's columns do not match the first chunk's types: {error}") from None
        if self.parquet:
            self.writer.write_table(table, row_group_size=PARQUET_ROW_GROUP_ROWS)
        else:
            self.writer.write_table(table)

    def close(self) -> None:
        self.writer.close()
        _close_synced(self.handle)

    def abort(self) -> None:
        try:
            self.writer.close()
        except Exception:
            pass
        self.handle.close()


def _arrow_schema(frame: pd.DataFrame, kind: str = ".parquet") -> tuple[pa.Schema, list[str]]:
    """Column types from the first chunk, and the columns to write as text.

    Text stays text and an all-empty column becomes text; a carried column of
    another type (a Parquet timestamp, decimal or struct such as a visit date)
    keeps it in Parquet, and is written as text in CSV when CSV cannot hold it.
    """
    fields, as_text = [], []
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_bool_dtype(column.dtype):
            arrow = pa.bool_()
        elif pd.api.types.is_integer_dtype(column.dtype):
            arrow = pa.int64()
        elif pd.api.types.is_float_dtype(column.dtype):
            arrow = pa.float64()
        elif _all_text(column):
            arrow = pa.string()
        else:
            arrow = _carried_type(column)
            if kind == ".csv" and (pa.types.is_nested(arrow) or pa.types.is_binary(arrow)):
                arrow = pa.string()
            if arrow == pa.string():
                as_text.append(str(name))
        fields.append(pa.field(str(name), arrow))
    return pa.schema(fields), as_text


def _carried_type(column: pd.Series) -> pa.DataType:
    """The Arrow type of a carried column that is neither a number, a flag nor text; text when Arrow has none."""
    try:
        arrow = pa.array(column, from_pandas=True).type
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return pa.string()
    return pa.string() if pa.types.is_null(arrow) or pa.types.is_large_string(arrow) else arrow


def _all_text(column: pd.Series) -> bool:
    """Text or missing in every row (pandas' own inference, in C: columns are long)."""
    if not pd.api.types.is_object_dtype(column.dtype):
        return pd.api.types.is_string_dtype(column.dtype)
    return pd.api.types.infer_dtype(column, skipna=True) in ("string", "empty")


def _as_text(column: pd.Series) -> pd.Series:
    return column.map(lambda v: v if v is None or isinstance(v, str) else str(v), na_action="ignore")


def _close_synced(handle) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()


def _count_rows(path: Path) -> int | None:
    """Rows in the file, for the progress bar: Parquet metadata, or newlines in a CSV (an estimate)."""
    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).metadata.num_rows
        if path.suffix.lower() == ".csv":
            lines = 0
            last = b"\n"
            with open(path, "rb") as handle:
                while block := handle.read(1 << 24):
                    lines += block.count(b"\n")
                    last = block[-1:]
            return max(0, lines - 1 + (last != b"\n"))
    except Exception:  # only a progress estimate: the reader reports an unreadable file, naming it
        return None
    return None


class _progress:
    """A rich progress bar on stderr (rows, rate, time left), or nothing."""

    def __init__(self, enabled: bool, total: int | None, name: str, console: Any):
        self.enabled = enabled
        self.total = total
        self.name = name
        self.console = console

    def __enter__(self):
        if not self.enabled:
            return lambda n: None
        console = self.console or Console(stderr=True)
        self.bar = Progress(
            TextColumn("[bold]scoring[/] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.bar.__enter__()
        task = self.bar.add_task(self.name, total=self.total)
        return lambda n: self.bar.advance(task, n)

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.bar.__exit__(*exc)


def read_output(path: str | Path) -> pd.DataFrame:
    """Read a batch output back (tests, the README's example)."""
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype={"patient_id": str}, keep_default_na=False, na_values=[""])
