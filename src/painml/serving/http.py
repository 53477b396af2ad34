"""The HTTP endpoint: one FastAPI app around one :class:`painml.serving.predictor.Predictor`.

- ``POST /predict`` takes one patient record (a JSON object) or a list of
  them, and answers one prediction object or a list in the same order.
  ``?reasons=K`` (0-10) adds the K largest SHAP contributions to each.
- ``GET /health``, ``GET /model`` (name, version, classes, conformal level,
  training-data lineage, metrics), and the OpenAPI docs at ``/docs``.

Bad requests are answered 4xx with a body saying what is wrong, never 500:
400 for a body that is not JSON (``NaN``/``Infinity``, nesting deeper than
the parser recurses, duplicate keys included), 408 for a body that does not
arrive within the body timeout, 413 for a body over the size limit, 415 for
a body that is not ``application/json``, 422 for anything the patient record
schema rejects (unknown fields, numbers out of range such as ``1e400`` or
integers of thousands of digits), each problem as ``{"row", "field",
"value", "problem"}``. A list of records, and any record the fast checker
does not pass plainly (pandas and pandera then run), is scored on a worker
thread under the time limit and answered 503 when it runs over; a plainly
valid record is scored inline (a fraction of a millisecond, less than the
thread hand-off would cost). A 500 means a bug, and its traceback is logged;
a client that hangs up mid-upload is one short log line.

Two guards stand in front of every route (:class:`Guard`): the ``Host``
header must name one of ``allowed_hosts`` (against DNS rebinding: a web page
on another origin cannot reach a server on localhost), and with a ``token``
every request must carry ``Authorization: Bearer <token>`` (compared in
constant time). Both are off in :func:`create_app` unless given; ``painml
serve http`` always sets the host list and requires a token off loopback.

The body is read and parsed by hand rather than through a pydantic model:
the record schema (:mod:`painml.record.schema`) is the one gate for every entry
point, and a one-record request then costs well under a millisecond more
than the prediction itself.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from painml.record.columns import INPUT_COLUMNS
from painml.record.gate import RecordChecker
from painml.record.problems import SchemaError
from painml.record.projections import record_json_schema
from painml.serving.page import explain_record, mount_page
from painml.serving.predictor import MAX_REASONS, Predictor

__all__ = [
    "DEFAULT_BODY_TIMEOUT_S",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_TIMEOUT_S",
    "LOOPBACK_HOSTS",
    "create_app",
    "host_name",
    "is_loopback",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 1_000_000
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_WORKERS = 2
DEFAULT_BODY_TIMEOUT_S = 30.0
MAX_DIGITS = 30
"""Longest integer literal read; no field of a patient record needs more digits (identifiers included,
as the record's JSON schema declares)."""
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


class RequestProblem(Exception):
    """A request we refuse, with its status code and the problems to show."""

    def __init__(self, status: int, detail: str, problems: list[dict[str, Any]] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.problems = problems or []


def create_app(
    predictor: Predictor,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    workers: int = DEFAULT_WORKERS,
    inline_single: bool = True,
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S,
    allowed_hosts: Iterable[str] | None = None,
    token: str | None = None,
) -> FastAPI:
    """A FastAPI app serving ``predictor``; see the module docstring for the contract.

    ``allowed_hosts``: host names the ``Host`` header may carry (``*`` for any;
    None: no check); ``token``: the bearer token every request must carry (None: none).
    """
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="painml-predict")
    checker = RecordChecker(predictor.classes, allow_extra=False)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:  # before the first request, not during it (one-record requests run on the event loop)
            predictor.warm_up()
        except Exception:
            log.exception("warming up the model failed")
        yield
        executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="painml",
        version=str(predictor.version or ""),
        summary="Classify chronic pain as nociceptive, neuropathic or mixed from the clinical record.",
        description=(
            f"Model **{predictor.name}** version {predictor.version or '(unregistered)'}; classes "
            f"{', '.join(predictor.classes)}. Send patient records as in `data/README.md`; "
            "missing fields mean not recorded."
        ),
        lifespan=lifespan,
        docs_url=None,  # Swagger UI loads from a CDN; mount_page serves a /docs page that needs no network
        redoc_url=None,
    )
    app.state.predictor = predictor
    mount_page(app, predictor)

    @app.exception_handler(RequestProblem)
    async def _problem(request: Request, exc: RequestProblem) -> JSONResponse:
        return _error(exc.status, exc.detail, exc.problems)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {
                "row": None,
                "field": ".".join(str(p) for p in e.get("loc", ()) if p not in ("query", "body")),
                "value": e.get("input"),
                "problem": e.get("msg", "invalid"),
            }
            for e in exc.errors()
        ]
        return _error(422, "the request's parameters are not valid", problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = _error(exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})  # 405 carries Allow
        return response

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, exc: ClientDisconnect) -> Response:
        client = f"{request.client.host}:{request.client.port}" if request.client else "a client"
        log.info("%s hung up before sending the whole body of %s %s", client, request.method, request.url.path)
        return Response(status_code=400)  # nobody reads it

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(500, "internal error: this is a bug in painml, not a problem with the request")

    @app.get("/health", summary="Liveness and the model being served")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": predictor.name, "version": predictor.version}

    @app.get("/model", summary="The model: name, version, classes, conformal level, lineage and metrics")
    async def model() -> dict[str, Any]:
        # the run's metrics are read from the store once: off the event loop
        return _public(await run_in_threadpool(predictor.describe))

    @app.post(
        "/predict",
        summary="Predict the pain type of one patient record or a list of them",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "oneOf": [
                                {"$ref": "#/components/schemas/PatientRecord"},
                                {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/PatientRecord"},
                                    "minItems": 1,
                                },
                            ]
                        }
                    }
                },
            },
            "responses": {
                "200": {
                    "description": "One prediction per record, in the request's shape (object or list)",
                    "content": {
                        "application/json": {
                            "schema": {
                                "oneOf": [
                                    {"$ref": "#/components/schemas/Prediction"},
                                    {"type": "array", "items": {"$ref": "#/components/schemas/Prediction"}},
                                ]
                            }
                        }
                    },
                },
                "400": _declared("The body is not valid JSON"),
                "408": _declared("The body did not arrive within the body timeout"),
                "413": _declared("The body is over the size limit"),
                "415": _declared("The body is not application/json"),
                "422": _declared("Records the patient-record schema rejects (each problem listed)"),
                "503": _declared("The prediction took longer than the time limit"),
            },
        },
    )
    async def predict(
        request: Request,
        reasons: int = Query(0, ge=0, le=MAX_REASONS, description="Top reasons (SHAP) per prediction"),
    ) -> Response:
        payload = _parse(await _read_body(request, max_body_bytes, body_timeout_s))
        single = isinstance(payload, dict)
        records = [payload] if single else payload
        if len(records) == 1 and inline_single and checker.check(records[0]) is not None:
            # One plainly valid record takes well under a millisecond: handing it to a worker
            # thread and back costs more than that on a busy machine, so it is scored right here.
            # Anything else goes through pandas and pandera (tens of milliseconds): off the loop.
            rows = _score(predictor, records, reasons)
        else:
            # The time limit counts waiting for a free worker too; a prediction that overruns
            # finishes in its thread, but the client gets its answer on time.
            future = asyncio.get_running_loop().run_in_executor(executor, _score, predictor, records, reasons)
            try:
                rows = await asyncio.wait_for(future, timeout_s)
            except TimeoutError:
                raise RequestProblem(503, f"the prediction took longer than the limit of {timeout_s:g} s") from None
        body = json.dumps(rows[0] if single else rows, separators=(",", ":"))
        return Response(content=body, media_type="application/json")

    @app.post(
        "/explain",
        summary="Why: the waterfall of one record's prediction and what recording a missing finding would change",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PatientRecord"}}},
            }
        },
        responses={
            400: _declared("The body is not valid JSON"),
            413: _declared("The body is over the size limit"),
            422: _declared("Not one record, or a record the patient-record schema rejects"),
            503: _declared("The explanation took longer than the time limit"),
        },
    )
    async def explain(request: Request) -> Response:
        payload = _parse(await _read_body(request, max_body_bytes, body_timeout_s))
        if not isinstance(payload, dict):
            raise RequestProblem(422, "send one patient record (a JSON object) to explain")
        future = asyncio.get_running_loop().run_in_executor(executor, _explain, predictor, payload)
        try:
            answer = await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            raise RequestProblem(503, f"the explanation took longer than the limit of {timeout_s:g} s") from None
        return Response(content=json.dumps(answer, separators=(",", ":")), media_type="application/json")

    _add_schemas(app, predictor)
    if allowed_hosts is not None or token is not None:
        app.add_middleware(Guard, allowed_hosts=allowed_hosts, token=token)
    return app


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or address to bind) is reachable from this machine only."""
    import ipaddress

    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The host of a ``Host`` header, without its port, lower case (``[::1]:8000`` -> ``::1``)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class Guard:
    """ASGI middleware: refuse a ``Host`` not on the allow-list (400), and requests without the token (401)."""

    def __init__(self, app: Any, allowed_hosts: Iterable[str] | None = None, token: str | None = None) -> None:
        self.app = app
        hosts = None if allowed_hosts is None else {host_name(h) for h in allowed_hosts}
        self.hosts = None if hosts is None or "*" in hosts else hosts
        self.token = None if token is None else f"Bearer {token}".encode()

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[dict]], send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        if self.hosts is not None:
            host = headers.get(b"host", b"").decode("latin-1")
            if host_name(host) not in self.hosts:
                shown = host[:100] or "(none)"
                await _error(400, f"this server does not answer to Host {shown}")(scope, receive, send)
                return
        if self.token is not None and not hmac.compare_digest(headers.get(b"authorization", b""), self.token):
            response = _error(401, "send the server's token as Authorization: Bearer <token>")
            response.headers["WWW-Authenticate"] = 'Bearer realm="painml"'
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _score(predictor: Predictor, records: list[dict[str, Any]], reasons: int) -> list[dict[str, Any]]:
    try:
        if len(records) == 1:
            return [predictor.predict_one(records[0], reasons=reasons, allow_extra=False)]
        return predictor.predict_many(records, reasons=reasons, allow_extra=False)
    except SchemaError as error:
        raise RequestProblem(
            422, error.report(limit=0).splitlines()[0] + ": see problems", [_problem(p) for p in error.problems]
        ) from None


def _explain(predictor: Predictor, record: dict[str, Any]) -> dict[str, Any]:
    try:
        return explain_record(predictor, record)
    except SchemaError as error:
        raise RequestProblem(
            422, error.report(limit=0).splitlines()[0] + ": see problems", [_problem(p) for p in error.problems]
        ) from None


def _public(described: dict[str, Any]) -> dict[str, Any]:
    """``describe()`` without paths of this machine: the training file by name (and hash) only."""
    lineage = dict(described.get("lineage") or {})
    if isinstance(lineage.get("path"), str):
        lineage["path"] = lineage["path"].replace("\\", "/").rsplit("/", 1)[-1]
    uri = described.get("uri")
    if isinstance(uri, str) and "://" not in uri and ":/" not in uri:
        uri = uri.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]  # a model folder: its name
    return {**described, "lineage": lineage, "uri": uri}


def _problem(p: Any) -> dict[str, Any]:
    value = p.value
    if isinstance(value, float) and not math.isfinite(value):
        value = None if value != value else str(value)
    problem = p.expected if p.row is None and p.value is None else f"expected {p.expected}"
    if p.column and p.row is None and p.value is None and p.expected.startswith("unknown column"):
        problem = "unknown field; the patient record's fields are listed in data/README.md"
    return {"row": p.row, "field": p.column, "value": _jsonable(value), "problem": problem}


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return str(value)


async def _read_body(request: Request, limit: int, timeout_s: float) -> bytes:
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type not in ("application/json", "", "text/json") and not content_type.endswith("+json"):
        raise RequestProblem(415, f"send the records as application/json, not {content_type}")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestProblem(413, f"the body is {int(declared):,} bytes; the limit is {limit:,}")
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise RequestProblem(413, f"the body is over the limit of {limit:,} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise RequestProblem(408, f"the body did not arrive within {timeout_s:g} s") from None
    return b"".join(chunks)


class _NotJson(ValueError):
    """A value JSON parsers accept that a patient record cannot hold (NaN, Infinity, duplicate keys)."""


class _OutOfRange(ValueError):
    """A number no field can hold: a float that overflows to infinity, an integer of many digits."""


def _no_constant(name: str) -> Any:
    raise _NotJson(f"{name} is not a number JSON allows; leave the field out (or null) when not recorded")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _OutOfRange(f"the number {text[:40]} is out of range")
    return value


def _short_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_DIGITS:
        raise _OutOfRange(f"an integer of {digits:,} digits is out of range")
    return int(text)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    record = dict(pairs)
    if len(record) != len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise _NotJson(f"the field {twice[:100]!r} appears twice in one object")
    return record


def _parse(body: bytes) -> Any:
    if not body.strip():
        raise RequestProblem(400, "the body is empty; send one patient record (a JSON object) or a list of them")
    try:
        payload = json.loads(
            body.decode("utf-8"),
            parse_constant=_no_constant,
            parse_float=_finite,
            parse_int=_short_int,
            object_pairs_hook=_unique_keys,
        )
    except UnicodeDecodeError:
        raise RequestProblem(400, "the body is not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise RequestProblem(
            400, f"the body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except _NotJson as error:
        raise RequestProblem(400, f"the body is not valid JSON: {error}") from None
    except _OutOfRange as error:
        raise RequestProblem(422, f"{error}: no field of a patient record holds it") from None
    except RecursionError:
        raise RequestProblem(400, "the body nests too deeply; a patient record is one JSON object") from None
    if isinstance(payload, dict):
        return _scalars([payload])[0]
    if isinstance(payload, list):
        if not payload:
            raise RequestProblem(422, "the list of records is empty")
        wrong = [i + 1 for i, r in enumerate(payload) if not isinstance(r, dict)]
        if wrong:
            shown = ", ".join(map(str, wrong[:10])) + (", ..." if len(wrong) > 10 else "")
            raise RequestProblem(
                422,
                f"each record must be a JSON object of field: value pairs; these are not: {shown}",
                [{"row": i, "field": None, "value": None, "problem": "not a JSON object"} for i in wrong[:50]],
            )
        return _scalars(payload)
    raise RequestProblem(
        422, f"expected a patient record (a JSON object) or a list of them, got {type(payload).__name__}"
    )


_ID_FIELDS = frozenset(c.name for c in INPUT_COLUMNS if c.kind == "id")


def _scalars(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``records`` when every value is a scalar, identifiers (``patient_id``, ``site``) as text.

    A field holding an object or a list is a 422 naming it; an identifier sent
    as a whole number is read as its digits (a list would otherwise turn ``5``
    into ``5.0``), as true/false or a fraction it is a 422.
    """
    problems = []
    for row, record in enumerate(records, start=1):
        for field, value in record.items():
            if isinstance(value, dict | list):
                kind = "object" if isinstance(value, dict) else "list"
                problems.append(_nested(row, field, f"expected a single value, not a JSON {kind}"))
            elif field in _ID_FIELDS and value is not None and not isinstance(value, str):
                if isinstance(value, int) and not isinstance(value, bool):
                    record[field] = str(value)
                elif isinstance(value, float) and value.is_integer():  # JSON Schema's integers include 5.0
                    record[field] = str(int(value))
                else:
                    problems.append({**_nested(row, field, "expected text or a whole number"), "value": value})
    if problems:
        raise RequestProblem(422, "some fields hold values no patient record field can: see problems", problems[:50])
    return records


def _nested(row: int, field: str, problem: str) -> dict[str, Any]:
    return {"row": row, "field": field, "value": None, "problem": problem}


def _error(status: int, detail: str, problems: list[dict[str, Any]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"detail": detail}
    if problems:
        body["problems"] = [{**p, "value": _jsonable(p.get("value"))} for p in problems]
    return JSONResponse(body, status_code=status)


def _declared(description: str) -> dict[str, Any]:
    """An error response as the OpenAPI document declares it: every 4xx/5xx body is a :func:`_error`."""
    return {"description": description, "content": {"application/json": {"schema": {"$ref": _ERROR_REF}}}}


_ERROR_REF = "#/components/schemas/Error"
_ERROR_SCHEMA = {
    "type": "object",
    "title": "Error",
    "required": ["detail"],
    "properties": {
        "detail": {"type": "string", "description": "what is wrong, in one sentence"},
        "problems": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["row", "field", "value", "problem"],
                "properties": {
                    "row": {"type": ["integer", "null"], "description": "1-based record in a list"},
                    "field": {"type": ["string", "null"]},
                    "value": {"description": "the value sent (non-finite numbers as text)"},
                    "problem": {"type": "string"},
                },
            },
        },
    },
}


# --------------------------------------------------------------------------- OpenAPI


def _prediction_schema(predictor: Predictor) -> dict[str, Any]:
    props: dict[str, Any] = {"patient_id": {"type": ["string", "null"]}}
    for c in predictor.classes:
        props[f"p_{c}"] = {"type": "number", "description": f"calibrated probability of {c}"}
    props |= {
        "predicted_class": {"type": "string", "enum": list(predictor.classes)},
        "confidence": {"type": "number"},
        "prediction_set": {
            "type": "array",
            "items": {"type": "string"},
            "description": f"conformal set at {predictor.confidence} confidence",
        },
        "dn4": {"type": ["number", "null"]},
        "paindetect": {"type": ["number", "null"]},
        "neupsig_grade": {"type": ["number", "null"], "description": "0 unlikely, 1 possible, 2 probable, 3 definite"},
        "too_little_recorded": {
            "type": "boolean",
            "description": "fewer recorded findings than a class needs to mean anything; the set is every class",
        },
        "flags": {
            "type": "array",
            "items": {"type": "string"},
            "description": "ways the record is unlike the training data",
        },
        "reasons": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "feature": {"type": "string"},
                    "label": {"type": "string"},
                    "value": {},
                    "direction": {"type": "string", "enum": ["towards", "away from"]},
                    "class_name": {"type": "string"},
                    "size": {"type": "number", "description": "calibrated log-odds"},
                },
            },
        },
        "model": {"type": "string"},
        "model_version": {"type": "string"},
    }
    return {"type": "object", "title": "Prediction", "properties": props}


def _add_schemas(app: FastAPI, predictor: Predictor) -> None:
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["PatientRecord"] = record_json_schema(list(predictor.classes))
        components["Prediction"] = _prediction_schema(predictor)
        components["Error"] = _ERROR_SCHEMA
        # Parameter errors are answered in the same Error shape, not FastAPI's default one.
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                if "HTTPValidationError" in json.dumps(operation.get("responses", {}).get("422", {})):
                    operation["responses"]["422"] = _declared("The request is not valid (each problem listed)")
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
