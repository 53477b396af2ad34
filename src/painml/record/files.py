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

import pandas as pd
import pyarrow
import pyarrow.parquet as pq

from painml.record.columns import BY_NAME, TRUE_PREFIX
from painml.record.problems import Problem, SchemaError

_HASH_BLOCK = 1 << 20
PARQUET_ROW_GROUP_ROWS = 128_000
"""Most rows in one Parquet row group written by painml: Spark and other engines split a file into tasks by
row group, and a million rows in one group would be read by one task."""


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
            header, options = _csv_options(path)
            return _named(pd.read_csv(path, **options), header)
        return pd.read_parquet(path)
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
    wanted = (lambda name: True) if truth else (lambda name: not str(name).strip().startswith(TRUE_PREFIX))
    try:
        if kind == "CSV":
            header, options = _csv_options(path)
            header = [name for name in header if wanted(name)]
            for chunk in pd.read_csv(path, chunksize=chunksize, usecols=wanted, **options):
                yield offset, _named(chunk, header)
                offset += len(chunk)
        else:
            parquet = pq.ParquetFile(path)
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


def _csv_options(path: Path) -> tuple[list[str], dict[str, Any]]:
    """The header as written and the read options; refuses a semicolon-separated file early."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        header = next(csv.reader(handle), [])
    if len(header) == 1 and ";" in header[0]:
        raise SchemaError(
            [Problem(None, None, None, f"{path.name} looks semicolon-separated; painml reads comma-separated CSV")]
        )
    text = {name: str for name in header if _kept_as_text(name.strip())}
    return header, {"dtype": text, "encoding": "utf-8-sig"}


def _kept_as_text(name: str) -> bool:
    column = BY_NAME.get(name)
    if column is None:
        return not name.startswith(TRUE_PREFIX)
    return column.kind in ("id", "category")


def _named(frame: pd.DataFrame, header: list[str]) -> pd.DataFrame:
    """Restore repeated column names that pandas renamed (``age.1``), so they are reported, not carried."""
    return frame.set_axis(header, axis=1) if len(header) == frame.shape[1] else frame


def _unreadable(path: Path, kind: str, error: Exception, offset: int = 0) -> Problem:
    detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    where = f" after row {offset}" if offset else ""
    return Problem(None, None, None, f"cannot read {path.name} as {kind}{where}: {detail}")
