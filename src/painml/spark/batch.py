"""``painml serve batch --engine spark``: files matching a pattern scored by Spark into a folder of part files.

The output folder holds Parquet part files of the batch command's columns and,
when some rows were rejected, ``_errors/`` (CSV: ``patient_id``, ``source``,
``column``, ``value``, ``expected``). Everything is written to a hidden folder
beside the output and renamed into place at the end: the output is complete or
absent, never half written (on a local or mounted file system; object stores
have no rename to make it so).
"""

from __future__ import annotations

import glob
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from painml.record.columns import TRUE_PREFIX
from painml.record.problems import Problem, SchemaError
from painml.serving.predictor import Predictor

ERRORS_FOLDER = "_errors"


class SparkJobError(RuntimeError):
    """The Spark job failed; the message is the Python or Spark error that stopped it, without the JVM trace."""


@dataclass
class SparkBatchResult:
    """What a Spark batch run did."""

    output: Path
    errors: Path | None
    files: int
    rows_scored: int = 0
    problems: int = 0
    rows_rejected: int = 0
    seconds: float = 0.0
    predicted: dict[str, int] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        rows = self.rows_scored + self.rows_rejected
        return rows / self.seconds if self.seconds > 0 else float("nan")


def input_files(pattern: str) -> list[str]:
    """The local files ``pattern`` matches; :class:`SchemaError` when none, or when CSV and Parquet mix."""
    files = sorted(p for p in glob.glob(os.path.expanduser(pattern)) if os.path.isfile(p))
    if not files:
        raise SchemaError([Problem(None, None, None, f"{pattern}: no file matches")])
    kinds = {Path(p).suffix.lower() for p in files}
    if not kinds <= {".csv", ".parquet"} or len(kinds) > 1:
        shown = ", ".join(sorted(kinds))
        message = f"{pattern}: expected only .csv or only .parquet files, found {shown}"
        raise SchemaError([Problem(None, None, None, message)])
    return files


def score_files(
    predictor: Predictor,
    pattern: str,
    output: str | Path,
    *,
    reasons: int = 0,
    master: str = "local[*]",
) -> SparkBatchResult:
    """Score every file ``pattern`` matches into the folder ``output``, all or nothing."""
    from pyspark.errors import PySparkException
    from pyspark.sql import functions as F

    from painml import spark as painml_spark

    files = input_files(pattern)
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise ValueError(f"{output}: exists and is not a folder")
    if not output.parent.is_dir():
        raise FileNotFoundError(f"{output.parent}: no such folder for the output")
    try:
        spark = painml_spark.session(master)
    except PySparkException as error:
        raise SparkJobError(f"Spark did not start on {master} (Java 17+ installed?): {_last_error(error)}") from None
    start = time.perf_counter()  # from here on, as the batch command counts: reading, checking, scoring, writing
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    old = output.with_name(f".{output.name}.{os.getpid()}.old")
    result = SparkBatchResult(output=output, errors=None, files=len(files))
    scored = None
    try:
        if Path(files[0]).suffix.lower() == ".csv":
            # every cell as text, as the batch command reads record columns: painml parses them itself
            df = spark.read.csv(files, header=True, inferSchema=False, encoding="UTF-8")
        else:
            df = spark.read.parquet(*files)
        df = df.select(*(F.col(f"`{c}`") for c in df.columns if not c.strip().startswith(TRUE_PREFIX)))
        scored, problems = painml_spark.score(df, predictor, reasons=reasons)
        scored.write.mode("error").parquet(str(tmp))
        result.problems = problems.count()
        if result.problems:
            problems.coalesce(1).write.csv(str(tmp / ERRORS_FOLDER), header=True)
            result.rows_rejected = problems.select("patient_id", "source").distinct().count()
            result.errors = output / ERRORS_FOLDER
        counts = scored.groupBy("predicted_class").count().collect()
        result.predicted = {row["predicted_class"]: int(row["count"]) for row in counts}
        result.rows_scored = sum(result.predicted.values())
        if output.exists():
            output.rename(old)
        tmp.rename(output)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException as error:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not output.exists():
            old.rename(output)
        if isinstance(error, PySparkException):
            raise SparkJobError(_last_error(error)) from None
        raise
    finally:
        if scored is not None:
            painml_spark.release(scored)
    result.seconds = time.perf_counter() - start
    return result


def _last_error(error: Exception) -> str:
    """The innermost error line of a Spark failure (a worker's Python exception is the last one)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip() and not line.startswith((" ", "\t"))]
    errors = [line for line in lines if "Error" in line.split(":", 1)[0] or "Exception" in line.split(":", 1)[0]]
    return (errors or lines or [type(error).__name__])[-1]
