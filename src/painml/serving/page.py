"""The page at ``/``: try a patient in a browser and see what the model makes of the record.

A form generated from the column table (:mod:`painml.record.columns`), one fieldset per block, every field
optional and limited to the values the schema allows. The page sends the record to ``POST /predict`` (the same
answer any client gets: probabilities, prediction set, screening scores) and to ``POST /explain`` for the
waterfall of the predicted class and what recording a missing finding would change
(:func:`painml.explain.shap.waterfall`, :func:`painml.explain.shap.what_if_recorded`). Everything the page needs is
served from the package (``templates/``, ``static/``): no CDN, so it works on a clinic network without internet.
``/docs`` is a plain documentation page of the endpoints for the same reason (Swagger UI loads from a CDN).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from painml.evaluation.plots import class_colours
from painml.explain import shap
from painml.features import screening
from painml.record.columns import BLOCKS, BY_NAME
from painml.record.vocabulary import block_title, display_name, display_value
from painml.serving.predictor import Predictor

"""One record is a few kilobytes; anything larger is not one record."""
STATIC = {"page.js": "text/javascript; charset=utf-8", "page.css": "text/css; charset=utf-8"}


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("painml.serving", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def form_blocks() -> list[dict[str, Any]]:
    """The form's fieldsets: every input column of the record by block, with its allowed values in words."""
    blocks = []
    for block, names in BLOCKS.items():
        if block == "identification":
            continue
        words = block_title(block)
        fields = []
        for name in names:
            column = BY_NAME[name]
            field: dict[str, Any] = {
                "name": name,
                "label": display_name(name),
                "help": column.meaning,
                "kind": column.kind,
            }
            if column.kind == "binary":
                field["options"] = [(1, display_value(name, 1.0)), (0, display_value(name, 0.0))]
            elif column.kind == "category":
                field["options"] = [(v, display_value(name, v)) for v in column.allowed]
            else:
                field |= {"low": column.low, "high": column.high, "step": 1 if column.kind == "integer" else "any"}
            fields.append(field)
        blocks.append({"key": block, "heading": words.heading, "note": words.note, "fields": fields})
    return blocks


def page_settings(predictor: Predictor) -> dict[str, Any]:
    """What the script needs to read the answers: the classes and the screening tools' published cut-offs."""
    return {
        "classes": list(predictor.classes),
        "colours": class_colours(predictor.classes),
        "confidence": predictor.confidence,
        "dn4_positive": screening.DN4_POSITIVE,
        "paindetect_negative_max": screening.PAINDETECT_NEGATIVE_MAX,
        "paindetect_positive": screening.PAINDETECT_POSITIVE,
        "neupsig_grades": list(screening.NEUPSIG_GRADES),
    }


def explain_record(predictor: Predictor, record: dict[str, Any]) -> dict[str, Any]:
    """The waterfall of the predicted class and the findings whose recording would change the prediction most."""
    from painml.record import schema

    records = schema.load_records([record], classes=predictor.classes, allow_extra=False)
    bundle = predictor.bundle
    explanation = shap.explain(bundle, records.features, records.frame)
    w = shap.waterfall(explanation, 0)
    return {
        "waterfall": {
            "class_name": w.class_name,
            "base": w.base,
            "total": w.total,
            "base_probability": w.base_probability,
            "probability": w.probability,
            "bars": [
                {
                    "label": b.label,
                    "value": b.value,
                    "missing": b.missing,
                    "group": b.group,
                    "features": list(b.features),
                }
                for b in w.bars
            ],
        },
        "reasons": [b.sentence(w.class_name) for b in w.shown[:5] if not b.missing],
        "absences": [b.sentence(w.class_name) for b in w.shown[:5] if b.missing],
        "what_if": [change.as_dict() for change in shap.what_if_recorded(bundle, records.frame, top=5)],
    }


def mount_page(app: FastAPI, predictor: Predictor) -> None:
    """Add ``/``, ``/static/<file>`` and a ``/docs`` page that needs no network to ``app``
    (``POST /explain``, which the page calls, is :mod:`painml.serving.http`'s, with its body checks)."""
    # JSON inside <script>: not entity-escaped (the browser does not decode entities there), but "<", ">" and "&"
    # written as JSON escapes so that no value can close the element
    text = json.dumps(page_settings(predictor))
    settings = Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))
    page = (
        _environment()
        .get_template("page.html")
        .render(
            name=predictor.name, version=predictor.version or "unregistered", blocks=form_blocks(), settings=settings
        )
    )
    assets = {name: resources.files("painml.serving").joinpath("static", name).read_bytes() for name in STATIC}

    @app.get("/", include_in_schema=False)
    async def home() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in assets:
            return JSONResponse({"detail": f"no file {name}"}, status_code=404)
        return Response(assets[name], media_type=STATIC[name], headers={"Cache-Control": "no-cache"})

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        schema = app.openapi()
        endpoints = [
            {"method": method.upper(), "path": path, "summary": op.get("summary", ""), "doc": op.get("description", "")}
            for path, ops in schema.get("paths", {}).items()
            for method, op in ops.items()
        ]
        html = (
            _environment()
            .get_template("docs.html")
            .render(title=schema["info"]["title"], info=schema["info"], endpoints=endpoints, blocks=form_blocks())
        )
        return HTMLResponse(html)
