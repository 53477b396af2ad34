"""``painml serve``: the three ways in to the one predictor (one patient, a file, HTTP).

- ``predict``: one patient (or a list) as JSON from ``--input FILE`` or stdin,
  or as ``FIELD=VALUE`` arguments; a readable summary, or JSON with ``--json``;
- ``batch``: a CSV or Parquet file in chunks, output written atomically,
  rejected rows to ``OUTPUT.errors.csv``;
- ``http``: the FastAPI app (:mod:`painml.serving.http`) under uvicorn (:mod:`painml.serving.server`),
  on 127.0.0.1 by default; a token is required to listen anywhere else.

Every command takes ``--model`` (default ``models:/painml-pain-type@champion``)
and ``--tracking-uri`` (else ``$MLFLOW_TRACKING_URI``, else ``./mlflow.db``).
Exit codes: 0 done, 1 the input has problems (listed on stderr: invalid or
unreadable JSON, bad values, rows set aside), 2 usage or environment: no such
model, bad options, no such input file, a full disk; 130 interrupted (Ctrl-C
or SIGTERM), with nothing left behind. Identifiers are always printed as
written, never as console markup.
"""

from __future__ import annotations

import errno
import json
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from painml.record.json_input import parse_json
from painml.record.problems import SchemaError
from painml.record.vocabulary import NEUPSIG_GRADES, reason_sentence
from painml.tracking.registry import DEFAULT_MODEL_URI

serve_app = typer.Typer(
    name="serve",
    help="Score patients with a trained painml model: one patient, a file, or over HTTP.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

ModelOption = Annotated[
    str,
    typer.Option("--model", "-m", help="models:/NAME@ALIAS, models:/NAME/VERSION, runs:/RUN/PATH or a model folder."),
]
TrackingOption = Annotated[
    str | None,
    typer.Option("--tracking-uri", help="MLflow tracking URI; else $MLFLOW_TRACKING_URI, else ./mlflow.db."),
]
DEFAULT_MODEL = DEFAULT_MODEL_URI


def _load(model: str, tracking_uri: str | None):
    # lazy: each command imports only what it runs (a one-patient command starts in well under a second)
    from painml.model.bundle import ModelFolderError
    from painml.serving.predictor import ModelNotFound, Predictor
    from painml.tracking.store import StoreUnavailable

    try:
        return Predictor.from_uri(model, tracking_uri=tracking_uri)
    except (StoreUnavailable, ModelFolderError) as error:
        err.print(str(error), markup=False)
        raise typer.Exit(2) from None
    except ModelNotFound as error:
        err.print(Text.assemble(("no model", "red"), f": {error}"))
        if error.absent:
            err.print("Train and register one first: painml train --config configs/default.yaml", markup=False)
        raise typer.Exit(2) from None


@serve_app.command()
def predict(
    fields: Annotated[
        list[str] | None,
        typer.Argument(
            help="The patient as FIELD=VALUE pairs (e.g. age=70 brush_allodynia=true); else JSON input.",
            show_default=False,
        ),
    ] = None,
    model: ModelOption = DEFAULT_MODEL,
    input: Annotated[
        Path | None, typer.Option("--input", "-i", help="JSON file: one record (object) or a list; default stdin.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the predictions as JSON.")] = False,
    reasons: Annotated[int, typer.Option("--reasons", "-k", min=0, max=10, help="Top reasons (SHAP) per patient.")] = 3,
    tracking_uri: TrackingOption = None,
) -> None:
    """Predict one patient (or a list) from JSON or FIELD=VALUE arguments."""
    payload = _read_payload(fields, input)
    predictor = _load(model, tracking_uri)
    records = payload if isinstance(payload, list) else [payload]
    try:
        rows = predictor.predict_many(records, reasons=reasons)
    except SchemaError as error:
        err.print("[red]the patient record is not valid[/]")
        err.print(error.report(), markup=False)
        raise typer.Exit(1) from None
    except RecursionError:
        err.print("the patient record is not valid: a value is nested too deeply (expected plain values)")
        raise typer.Exit(1) from None
    if as_json:
        sys.stdout.write(json.dumps(rows[0] if isinstance(payload, dict) else rows, indent=2) + "\n")
        return
    for i, row in enumerate(rows):
        if i:
            out.print()
        _summary(row, predictor)


def _read_payload(fields: list[str] | None, input: Path | None) -> Any:
    if fields:
        if input is not None:
            err.print("give the patient either as FIELD=VALUE arguments or with --input, not both")
            raise typer.Exit(2)
        record: dict[str, Any] = {}
        for item in fields:
            name, sep, value = item.partition("=")
            if not sep or not name.strip():
                err.print(f"{item!r}: expected FIELD=VALUE (e.g. age=70)", markup=False)
                raise typer.Exit(2)
            record[name.strip()] = value
        try:
            json.dumps(record, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            err.print("an argument is not valid text in this terminal's encoding", markup=False)
            raise typer.Exit(1) from None
        return record
    if input is not None:
        try:
            data = input.read_bytes()
        except OSError as error:
            err.print(f"cannot read {input}: {error.strerror or error}", markup=False)
            raise typer.Exit(2) from None
        source = str(input)
    else:
        if sys.stdin.isatty():
            err.print("reading one patient as JSON from stdin (Ctrl-D to end); see --help for other ways")
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
        source = "stdin"
    try:
        payload = parse_json(data, source)
    except ValueError as error:
        err.print(str(error), markup=False)
        raise typer.Exit(1) from None
    if isinstance(payload, list) and payload and all(isinstance(r, dict) for r in payload):
        return payload
    if isinstance(payload, dict):
        return payload
    err.print(f"{source}: expected one patient record (a JSON object) or a non-empty list of them", markup=False)
    raise typer.Exit(1)


def _summary(row: dict[str, Any], predictor) -> None:
    who = str(row.get("patient_id") or "(no patient_id)")
    out.print(Text.assemble((who, "bold"), "  ", (f"{row['model']} v{row['model_version'] or '-'}", "dim")))
    classes = predictor.classes
    probs = "  ".join(f"{c} {row[f'p_{c}']:.2f}" for c in classes)
    out.print(f"  predicted [bold]{row['predicted_class']}[/] (p = {row['confidence']:.2f});  {probs}")
    if row.get("prediction_set") is not None:
        level = f"{predictor.confidence:.0%} " if predictor.confidence else ""
        members = ", ".join(row["prediction_set"])
        note = "" if len(row["prediction_set"]) == 1 else "  (the model cannot tell these apart at this level)"
        out.print(f"  {level}prediction set: {{{members}}}{note}")
    grade = row.get("neupsig_grade")
    shown = [
        f"DN4 {_num(row.get('dn4'))}/10",
        f"painDETECT {_num(row.get('paindetect'))}",
        "NeuPSIG " + ("-" if grade is None else NEUPSIG_GRADES[int(grade)]),
    ]
    out.print("  screening: " + ", ".join(shown))
    for flag in row.get("flags") or []:
        out.print(Text.assemble("  ", ("flag", "yellow"), ": ", flag))
    for reason in row.get("reasons") or []:
        sign = "+" if reason["size"] >= 0 else "-"
        sentence = reason_sentence(reason["label"], reason["direction"], reason["class_name"], reason["size"])
        out.print(f"  {sign} {sentence}", markup=False)


def _num(value: Any) -> str:
    if value is None:
        return "-"
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


@serve_app.command()
def batch(
    input: Annotated[Path, typer.Option("--input", "-i", help="CSV or Parquet file of patient records.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output file, .csv or .parquet.")],
    model: ModelOption = DEFAULT_MODEL,
    reasons: Annotated[int, typer.Option("--reasons", "-k", min=0, max=10, help="Top reasons per row.")] = 0,
    chunksize: Annotated[int, typer.Option("--chunksize", min=1, help="Rows per chunk (bounds memory).")] = 50_000,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            min=0,
            help="Threads for trees and explanations (0 = one per 2,000 rows of a chunk, up to every core).",
        ),
    ] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
    tracking_uri: TrackingOption = None,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="local: one file in this process; spark: every file matching INPUT (a glob) into the folder "
            "OUTPUT, with Spark (pip install 'painml[spark]').",
        ),
    ] = "local",
    spark_master: Annotated[
        str, typer.Option("--spark-master", help="Spark master URL for --engine spark, e.g. local[4], yarn.")
    ] = "local[*]",
) -> None:
    """Score a CSV or Parquet file; rows that fail validation go to OUTPUT.errors.csv."""
    # lazy: each command imports only what it runs (a one-patient command starts in well under a second)
    from painml.serving.batch import OUTPUT_KINDS, score_file

    if engine not in ("local", "spark"):
        err.print(f"--engine {engine}: expected local or spark")
        raise typer.Exit(2)
    if engine == "spark":
        _batch_spark(str(input), output, model, reasons, spark_master, tracking_uri)
        return
    if output.suffix.lower() not in OUTPUT_KINDS:
        err.print(f"{output}: the output must end in .csv or .parquet")
        raise typer.Exit(2)
    if not input.exists():
        err.print(f"{input}: no such file", markup=False)
        raise typer.Exit(2)
    predictor = _load(model, tracking_uri)
    try:
        with _sigterm_as_interrupt() as stopped:
            result = score_file(
                predictor,
                input,
                output,
                chunksize=chunksize,
                reasons=reasons,
                progress=progress,
                threads=threads,
                console=err,
            )
    except SchemaError as error:
        err.print(Text.assemble((f"{input.name} cannot be scored", "red"), "; no output was written"))
        err.print(error.report(), markup=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err.print(f"{stopped.name or 'interrupted'}: stopped; no output was written and no temporary file is left")
        raise typer.Exit(130) from None
    except OSError as error:
        if error.errno == errno.ENOSPC:
            err.print(f"no space left on the device while writing {output}; no output was written", markup=False)
        else:
            where = error.filename or output
            err.print(f"cannot write {where}: {error.strerror or error}; no output was written", markup=False)
        raise typer.Exit(2) from None
    except ValueError as error:
        err.print(f"{error}", markup=False)
        raise typer.Exit(2) from None
    shares = ", ".join(f"{c} {n / max(1, result.rows_scored):.0%}" for c, n in sorted(result.predicted.items()))
    out.print(
        Text.assemble(
            f"scored {result.rows_scored:,} of {result.rows_read:,} rows in {result.seconds:.1f} s "
            f"({result.rows_per_second:,.0f} rows/s) -> ",
            (str(output), "bold"),
        )
    )
    if shares:
        out.print(f"predicted: {shares}", markup=False)
    for notice in result.notices:
        out.print(f"note: {notice}", markup=False, style="dim")
    if result.errors is not None:
        err.print(
            Text.assemble(
                (f"{result.rows_rejected:,} rows set aside", "yellow"),
                f" ({result.problems:,} problems): see {result.errors}",
            )
        )
        raise typer.Exit(1)


def _batch_spark(pattern: str, output: Path, model: str, reasons: int, master: str, tracking_uri: str | None) -> None:
    """``batch --engine spark``: files matching ``pattern`` into the folder ``output``, problems in ``_errors/``."""
    import importlib.util

    if importlib.util.find_spec("pyspark") is None:
        err.print("--engine spark needs pyspark and Java 17+: pip install 'painml[spark]'")
        raise typer.Exit(2)
    # lazy: pyspark is an optional extra, imported only for this engine
    from painml.spark.batch import SparkJobError, input_files, score_files

    try:
        input_files(pattern)
    except SchemaError as error:
        err.print(error.report(), markup=False)
        raise typer.Exit(2) from None
    predictor = _load(model, tracking_uri)
    try:
        result = score_files(predictor, pattern, output, reasons=reasons, master=master)
    except SchemaError as error:
        err.print(f"[red]{pattern} cannot be scored[/]; no output was written")
        err.print(error.report(), markup=False)
        raise typer.Exit(1) from None
    except SparkJobError as error:
        err.print("[red]the Spark job failed[/]; no output was written")
        err.print(str(error), markup=False)
        raise typer.Exit(1) from None
    except (ValueError, FileNotFoundError) as error:
        err.print(f"{error}")
        raise typer.Exit(2) from None
    out.print(
        f"scored {result.rows_scored:,} rows of {result.files:,} files in {result.seconds:.1f} s "
        f"({result.rows_per_second:,.0f} rows/s) -> [bold]{output}[/]"
    )
    if result.errors is not None:
        err.print(
            f"[yellow]{result.rows_rejected:,} rows set aside[/] ({result.problems:,} problems): see {result.errors}"
        )
        raise typer.Exit(1)


class _Stop:
    name = ""


@contextmanager
def _sigterm_as_interrupt() -> Iterator[_Stop]:
    """SIGTERM (systemd, Docker, Kubernetes) handled like Ctrl-C, so a stopped run cleans up after itself."""
    stop = _Stop()

    def handler(signum: int, frame: Any) -> None:
        stop.name = signal.Signals(signum).name
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, previous)


@serve_app.command()
def http(
    model: ModelOption = DEFAULT_MODEL,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    max_body_bytes: Annotated[
        int, typer.Option("--max-body-bytes", min=1, help="Larger requests get 413.")
    ] = 1_000_000,
    timeout: Annotated[float, typer.Option("--timeout", min=0.01, help="Seconds per request before 503.")] = 10.0,
    header_timeout: Annotated[
        float, typer.Option("--header-timeout", min=0.1, help="Seconds for a request's headers to arrive.")
    ] = 10.0,
    body_timeout: Annotated[
        float, typer.Option("--body-timeout", min=0.1, help="Seconds for a request's body to arrive (else 408).")
    ] = 30.0,
    max_connections: Annotated[
        int, typer.Option("--max-connections", min=1, help="Connections served at once; beyond, 503.")
    ] = 100,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            help="Host name clients use to reach the server (repeatable; '*' for any). "
            "Default: the --host address and localhost.",
        ),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file",
            help="File holding the bearer token clients must send; else $PAINML_HTTP_TOKEN. "
            "Required unless --host is loopback.",
        ),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Server processes (one per core).")] = 1,
    access_log: Annotated[
        bool, typer.Option("--access-log/--no-access-log", help="Log every request (method, path, status).")
    ] = False,
    tracking_uri: TrackingOption = None,
) -> None:
    """Serve POST /predict, POST /explain, GET /health, GET /model, the page at / and the docs (/docs) with uvicorn."""
    import os

    # lazy: each command imports only what it runs (a one-patient command starts in well under a second)
    from painml.serving.http import LOOPBACK_HOSTS, create_app, is_loopback
    from painml.serving.server import TOKEN_ENV, ServerSettings, run

    token = _read_token(token_file, os.environ.get(TOKEN_ENV))
    if token is None and not is_loopback(host):
        err.print(
            f"listening on {host} makes the server reachable from other machines: give it a token "
            f"(--token-file FILE or ${TOKEN_ENV}) and put it behind a TLS reverse proxy (see the README)",
            markup=False,
        )
        raise typer.Exit(2)
    hosts = tuple(allowed_host or ()) or _default_hosts(host, LOOPBACK_HOSTS)
    settings = ServerSettings(
        model=model,
        tracking_uri=tracking_uri,
        host=host,
        port=port,
        allowed_hosts=hosts,
        max_body_bytes=max_body_bytes,
        timeout_s=timeout,
        body_timeout_s=body_timeout,
        header_timeout_s=header_timeout,
        max_connections=max_connections,
        workers=workers,
        access_log=access_log,
    )
    predictor = _load(model, tracking_uri)  # also in the parent with workers: a wrong URI fails here, once
    app = None
    if workers == 1:
        app = create_app(
            predictor,
            max_body_bytes=max_body_bytes,
            timeout_s=timeout,
            body_timeout_s=body_timeout,
            allowed_hosts=hosts,
            token=token,
        )
    shown = "any host name" if "*" in hosts else ", ".join(hosts)
    err.print(
        f"serving {predictor.name} v{predictor.version or '-'} on http://{host}:{port} "
        "(try a patient at /, docs at /docs); "
        f"answering Host {shown}" + ("; bearer token required" if token else ""),
        markup=False,
    )
    run(settings, token, app)


def _read_token(token_file: Path | None, from_env: str | None) -> str | None:
    """The bearer token from ``--token-file`` (first line, trimmed), else the environment; None without."""
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            err.print(f"cannot read the token file {token_file}: {getattr(error, 'strerror', None) or error}")
            raise typer.Exit(2) from None
        source = str(token_file)
    elif from_env is not None and from_env.strip():
        token, source = from_env.strip(), "the environment"
    else:
        return None
    if len(token) < 16 or any(c.isspace() or not c.isprintable() for c in token):
        err.print(f"the token in {source} must be at least 16 printable characters without spaces", markup=False)
        raise typer.Exit(2)
    return token


def _default_hosts(host: str, loopback: tuple[str, ...]) -> tuple[str, ...]:
    """The bound address and localhost; for a wildcard bind also this machine's names."""
    names = [host.strip("[]"), *loopback]
    if host in ("0.0.0.0", "::", "[::]"):
        import socket

        names += [socket.gethostname(), socket.getfqdn()]
    return tuple(dict.fromkeys(n.lower() for n in names if n))


def main() -> None:  # pragma: no cover - console entry
    serve_app()
