"""The HTTP endpoint: one FastAPI app around one :class:`painml.serving.predictor.Predictor`.

- ``POST /predict`` takes one patient record (a JSON object) or a list of
  them, and answers one prediction object or a list in the same order.
  ``?reasons=K`` (0-10) adds the K largest SHAP contributions to each.
- ``GET /health``, ``GET /model`` (name, version, classes, conformal level,
  training-data lineage, metrics), and the OpenAPI docs at ``/docs``.

Bad requests are answered 4xx with a body saying what is wrong, never 500:
400 for a body that is not JSON, 413 for a body over the size limit, 415
for a body that is not ``application/json``, 422 for anything the patient
record schema rejects (unknown fields included), each problem as
``{"row", "field", "value", "problem"}``. A list of records is scored on a
worker thread under the time limit, and answered 503 when it runs over; one
record is scored inline (a fraction of a millisecond, less than the thread
hand-off would cost). A 500 means a bug, and its traceback is logged.

The body is read and parsed by hand rather than through a pydantic model:
the record schema (:mod:`painml.record.schema`) is the one gate for every entry
point, and a one-record request then costs well under a millisecond more
than the prediction itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from painml.record.problems import SchemaError
from painml.record.projections import record_json_schema
from painml.serving.predictor import MAX_REASONS, Predictor

__all__ = ["DEFAULT_MAX_BODY_BYTES", "DEFAULT_TIMEOUT_S", "create_app"]

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 1_000_000
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_WORKERS = 2


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
) -> FastAPI:
    """A FastAPI app serving ``predictor``; see the module docstring for the contract."""
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="painml-predict")

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
    )
    app.state.predictor = predictor

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
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(500, "internal error: this is a bug in painml, not a problem with the request")

    @app.get("/health", summary="Liveness and the model being served")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": predictor.name, "version": predictor.version}

    @app.get("/model", summary="The model: name, version, classes, conformal level, lineage and metrics")
    async def model() -> dict[str, Any]:
        return predictor.describe()

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
                "400": {"description": "The body is not valid JSON"},
                "413": {"description": "The body is over the size limit"},
                "415": {"description": "The body is not application/json"},
                "422": {"description": "Records the patient-record schema rejects (each problem listed)"},
                "503": {"description": "The prediction took longer than the time limit"},
            },
        },
    )
    async def predict(
        request: Request,
        reasons: int = Query(0, ge=0, le=MAX_REASONS, description="Top reasons (SHAP) per prediction"),
    ) -> Response:
        payload = _parse(await _read_body(request, max_body_bytes))
        single = isinstance(payload, dict)
        records = [payload] if single else payload
        if len(records) == 1 and inline_single:
            # One record takes well under a millisecond: handing it to a worker thread and
            # back costs more than that on a busy machine, so it is scored right here.
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

    _add_schemas(app, predictor)
    return app


def _score(predictor: Predictor, records: list[dict[str, Any]], reasons: int) -> list[dict[str, Any]]:
    try:
        if len(records) == 1:
            return [predictor.predict_one(records[0], reasons=reasons, allow_extra=False)]
        return predictor.predict_many(records, reasons=reasons, allow_extra=False)
    except SchemaError as error:
        raise RequestProblem(
            422, error.report(limit=0).splitlines()[0] + ": see problems", [_problem(p) for p in error.problems]
        ) from None


def _problem(p: Any) -> dict[str, Any]:
    value = p.value
    if isinstance(value, float) and value != value:
        value = None
    problem = p.expected if p.row is None and p.value is None else f"expected {p.expected}"
    if p.column and p.row is None and p.value is None and p.expected.startswith("unknown column"):
        problem = "unknown field; the patient record's fields are listed in data/README.md"
    return {"row": p.row, "field": p.column, "value": _jsonable(value), "problem": problem}


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return str(value)


async def _read_body(request: Request, limit: int) -> bytes:
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type not in ("application/json", "", "text/json") and not content_type.endswith("+json"):
        raise RequestProblem(415, f"send the records as application/json, not {content_type}")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestProblem(413, f"the body is {int(declared):,} bytes; the limit is {limit:,}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestProblem(413, f"the body is over the limit of {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(body: bytes) -> Any:
    if not body.strip():
        raise RequestProblem(400, "the body is empty; send one patient record (a JSON object) or a list of them")
    try:
        payload = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise RequestProblem(400, "the body is not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise RequestProblem(
            400, f"the body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    if isinstance(payload, dict):
        return payload
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
        return payload
    raise RequestProblem(
        422, f"expected a patient record (a JSON object) or a list of them, got {type(payload).__name__}"
    )


def _error(status: int, detail: str, problems: list[dict[str, Any]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"detail": detail}
    if problems:
        body["problems"] = problems
    return JSONResponse(body, status_code=status)


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
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
