"""Scoring Spark data frames with painml's own predictor (the optional extra ``painml[spark]``).

:func:`score` runs :func:`painml.serving.frames.score_frame`, the core under
``painml serve batch``, on every Arrow batch of a Spark data frame through
``mapInPandas``, so a row scores the same on a cluster as in a file, bit for bit.

- The model is resolved once, on the driver; its bundle files travel with the
  task, and each executor process unpacks them once. Executors never open the
  MLflow store (they may not even reach it).
- Rows that fail validation come back as problem rows (``patient_id``, the
  input file, column, value, expected) while the job goes on; global row
  numbers do not exist in a distributed read.
- Each task scores with ``TaskContext.cpus()`` threads (``spark.task.cpus``).
- Arrow batches of :data:`ARROW_BATCH_ROWS` rows: painml validates a batch at
  a fixed cost per column, so Spark's default of 10,000 rows wastes a share of
  every batch on it. :func:`session` sets this; on another session, set
  ``spark.sql.execution.arrow.maxRecordsPerBatch`` yourself.

:func:`udf_input` serves those who prefer ``mlflow.pyfunc.spark_udf``: the
struct of record columns, cast to the record's types, to pass it. That route
has limits: one bad cell fails the whole job (the pyfunc has no side output
for problem rows), every executor downloads and loads the MLflow model, and
the result type must be spelled out (see the README).

pyspark is imported only by this package: nothing else in painml needs it.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import sys
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from painml.serving.predictor import Predictor

__all__ = ["ARROW_BATCH_ROWS", "PROBLEM_COLUMNS", "release", "score", "session", "udf_input"]

ARROW_BATCH_ROWS = 50_000
"""Rows per Arrow batch handed to one validation and scoring call (the batch command's chunk size)."""

PROBLEM_COLUMNS = ("patient_id", "source", "column", "value", "expected")

SOURCE_COLUMN = "__painml_source"
_KIND = "__painml_kind"
_PROBLEM = {name: f"__painml_problem_{name}" for name in PROBLEM_COLUMNS if name != "patient_id"}


def session(master: str = "local[*]", *, app_name: str = "painml", ui: bool = False) -> SparkSession:
    """A Spark session set up for painml: Arrow batches of :data:`ARROW_BATCH_ROWS` rows, this Python
    on local workers, and for a ``local`` master the loopback interface only and no web UI (``ui``)."""
    from pyspark.sql import SparkSession

    _quiet_pandas_warning()
    builder = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(ARROW_BATCH_ROWS))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", str(ui).lower())
        .config("spark.ui.showConsoleProgress", "false")
    )
    if master.startswith("local"):
        # local workers run this interpreter, which has painml, rather than the first python3 on the PATH
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
    return builder.getOrCreate()


def _quiet_pandas_warning() -> None:
    """pyspark warns that it does not fully support pandas 3 on every conversion, here and in each worker;
    painml's conversions are covered by its tests, so the warning says nothing to its users."""
    warnings.filterwarnings("ignore", _PANDAS_WARNING, FutureWarning)
    os.environ.setdefault("PYTHONWARNINGS", f"ignore:{_PANDAS_WARNING}:FutureWarning")


_PANDAS_WARNING = "PySpark does not yet fully support pandas"


def score(
    df: DataFrame,
    model: str | Predictor | None = None,
    reasons: int = 0,
    tracking_uri: str | None = None,
) -> tuple[DataFrame, DataFrame]:
    """``(scored, problems)``: ``df`` scored as ``painml serve batch`` scores a file, and its rejected rows.

    ``model``: a model URI (default: the registry's champion, resolved in
    ``tracking_uri`` as everywhere in painml) or a loaded
    :class:`~painml.serving.predictor.Predictor`. ``scored`` has the batch
    command's columns (``patient_id``, extra input columns, the label if
    given, the predictor's columns, ``reason_1..k``); ``problems`` one row per
    problem (:data:`PROBLEM_COLUMNS`; ``source`` is the input file when Spark
    read ``df`` from files).

    Both come from one pass over ``df``, kept in executor memory (never on
    disk: these are patient records) until ``release(scored)``.
    A problem with the data as a whole (a record column twice, no
    ``patient_id``) fails the job with painml's message.
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from painml.serving.predictor import MAX_REASONS, Predictor

    reasons = int(reasons)
    if not 0 <= reasons <= MAX_REASONS:
        raise ValueError(f"reasons must be between 0 and {MAX_REASONS}, got {reasons}")
    predictor = model if isinstance(model, Predictor) else Predictor.from_uri(model, tracking_uri=tracking_uri)
    _quiet_pandas_warning()
    if SOURCE_COLUMN not in df.columns:
        df = df.withColumn(SOURCE_COLUMN, F.input_file_name())
    shipped = _Shipped.of(predictor)
    scored_fields = _scored_schema(df, predictor, reasons)
    combined_schema = _combined_schema(scored_fields)
    scored_names = [field.name for field in scored_fields]

    def run(batches):
        from pyspark import TaskContext

        from painml.serving.frames import score_frame

        local = shipped.predictor()
        context = TaskContext.get()
        threads = max(1, context.cpus()) if context is not None else 1
        for frame in batches:
            sources = frame.pop(SOURCE_COLUMN).fillna("")
            scored, problems = score_frame(local, frame, reasons=reasons, threads=threads, source=sources)
            yield _combined(scored, problems, scored_names)

    combined = df.mapInPandas(run, combined_schema).persist(StorageLevel.MEMORY_ONLY)
    scored = combined.filter(F.col(_KIND) == "scored").select(*scored_names)
    problems = combined.filter(F.col(_KIND) == "problem").select(
        "patient_id", *(F.col(_PROBLEM[name]).alias(name) for name in PROBLEM_COLUMNS if name != "patient_id")
    )
    _CACHED[id(scored)] = combined
    return scored, problems


def release(scored: DataFrame) -> None:
    """Free the executor memory holding a :func:`score` result (``scored.unpersist()`` cannot: the cached
    frame is the one both outputs are filtered from)."""
    combined = _CACHED.pop(id(scored), None)
    if combined is not None:
        combined.unpersist()


_CACHED: dict[int, DataFrame] = {}


def udf_input(df: DataFrame) -> Column:
    """The struct ``mlflow.pyfunc.spark_udf`` needs: every record column of ``df``, cast to the record's type.

    Text findings (``"yes"``, ``"1"``, ``"t"``) become booleans as Spark casts
    them; a value Spark cannot cast becomes null, where painml's own
    :func:`score` would report it as a problem row.
    """
    from pyspark.sql import functions as F

    from painml.record.projections import mlflow_column_types

    types = mlflow_column_types()
    return F.struct(*(F.col(name).cast(types[name]).alias(name) for name in df.columns if name in types))


# --------------------------------------------------------------------------- the model, shipped


@dataclass(frozen=True)
class _Shipped:
    """A bundle folder as bytes, with the name and version the driver resolved; pickled into each task."""

    files: dict[str, bytes]
    name: str | None
    version: str | None
    key: str

    @classmethod
    def of(cls, predictor: Predictor) -> _Shipped:
        with tempfile.TemporaryDirectory(prefix="painml-bundle-") as tmp:
            folder = predictor.folder or predictor.bundle.save(Path(tmp) / "bundle")
            files = {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir()) if p.is_file()}
        digest = hashlib.sha256()
        for name, data in files.items():
            digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
        return cls(files, predictor.name, predictor.version, digest.hexdigest())

    def predictor(self) -> Predictor:
        """The executor's predictor: unpacked and loaded once per process, then reused by every task."""
        with _LOCK:
            found = _LOADED.get(self.key)
            if found is None:
                from painml.model.bundle import ModelBundle
                from painml.serving.predictor import Predictor

                folder = Path(tempfile.mkdtemp(prefix="painml-model-"))
                atexit.register(shutil.rmtree, folder, True)
                for name, data in self.files.items():
                    (folder / name).write_bytes(data)
                found = _LOADED[self.key] = Predictor(ModelBundle.load(folder), self.name, self.version, folder=folder)
            return found


_LOADED: dict[str, Any] = {}
_LOCK = threading.Lock()


# --------------------------------------------------------------------------- schemas


def _scored_schema(df: DataFrame, predictor: Predictor, reasons: int) -> list:
    """The batch command's columns with Spark types: extra input columns keep theirs, the label is text."""
    from pyspark.sql.types import BooleanType, DoubleType, StringType, StructField

    from painml.record.columns import BY_NAME, LABEL, TRUE_PREFIX
    from painml.serving.frames import output_types

    fields = [StructField("patient_id", StringType())]
    if "site" in df.columns:  # carried through, as the batch command does
        fields.append(StructField("site", StringType()))
    label = False
    for field in df.schema.fields:
        name = field.name
        if name == LABEL.name:
            label = True
        elif name not in BY_NAME and name != SOURCE_COLUMN and not name.strip().startswith(TRUE_PREFIX):
            fields.append(StructField(name, field.dataType))
    if label:
        fields.append(StructField(LABEL.name, StringType()))
    kinds = {"double": DoubleType(), "boolean": BooleanType(), "string": StringType()}
    fields += [StructField(c, kinds[t]) for c, t in output_types(predictor, reasons).items() if c != "patient_id"]
    return fields


def _combined_schema(scored_fields: list):
    from pyspark.sql.types import StringType, StructField, StructType

    problem = [StructField(column, StringType()) for column in _PROBLEM.values()]
    return StructType([StructField(_KIND, StringType()), *scored_fields, *problem])


def _combined(scored, problems, scored_names: list[str]):
    """Scored rows and problem rows as one frame of the combined schema (``mapInPandas`` has one output)."""
    import numpy as np
    import pandas as pd

    scored = scored.reindex(columns=scored_names)
    scored.insert(0, _KIND, "scored")
    lines = pd.DataFrame({_KIND: "problem", "patient_id": problems["patient_id"]}, index=problems.index)
    for name, column in _PROBLEM.items():
        lines[column] = problems[name].astype(object)
    out = pd.concat([scored, lines], ignore_index=True) if len(lines) else scored
    out = out.reindex(columns=[_KIND, *scored_names, *_PROBLEM.values()])
    for column in _PROBLEM.values():  # text or None: pyspark would turn a float column of NaN into "nan"
        out[column] = out[column].astype(object).where(out[column].notna(), None)
    # pyspark's Arrow conversion takes numpy-backed columns only (pandas 3 text columns are Arrow-backed)
    text = [c for c in out.columns if not isinstance(out[c].dtype, np.dtype)]
    return out.astype(dict.fromkeys(text, object)) if text else out
