"""Reading patient records sent as JSON: strictly, with a message a person can act on.

Python's ``json`` module accepts what JSON does not (``NaN``, ``Infinity``) and
silently keeps the last of two equal keys; it also fails with a traceback on
very deep nesting, integers of thousands of digits and text that is not UTF-8.
Every way in that reads JSON from a user (``serve predict``, and any server
that wants the same rules) goes through :func:`parse_json`. Free of pandas,
for the one-patient path.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["parse_json"]


def parse_json(data: bytes, source: str) -> Any:
    """Strict JSON from bytes, or ``ValueError`` with a message for a person.

    Refused, naming the field where there is one: text that is not UTF-8
    (UTF-16 is recognised and named), ``NaN`` and ``Infinity`` (not JSON; a
    missing value is ``null``), a key given twice in one object (JSON parsers
    disagree on which wins), nesting too deep to read, integers of thousands
    of digits, and lone surrogates (text that cannot be written out again).
    """
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise ValueError(f"{source} is UTF-16 text; save it as UTF-8")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{source} is not UTF-8 text (byte {error.start + 1} cannot be read); save it as UTF-8"
        ) from None
    if not text.strip():
        raise ValueError(f"{source} is empty: expected one patient record (a JSON object) or a list of them")
    constants: list[_Constant] = []

    def constant(name: str) -> _Constant:
        constants.append(_Constant(name))
        return constants[-1]

    try:
        payload = json.loads(text, parse_constant=constant, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{source} is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except RecursionError:
        raise ValueError(f"{source}: the JSON is nested too deeply (a patient record is one level of fields)") from None
    except ValueError as error:  # integers beyond Python's digit limit, repeated keys
        raise ValueError(f"{source}: {error}") from None
    if constants:
        where, found = _find_constant(payload)
        raise ValueError(
            f"{source}: {where} is {found.name}, which is not a JSON value; "
            "write null for a value that was not recorded"
        )
    try:
        json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{source} holds a lone surrogate (\\ud800-\\udfff): not valid Unicode text") from None
    except RecursionError:
        raise ValueError(f"{source}: the JSON is nested too deeply (a patient record is one level of fields)") from None
    return payload


class _Constant:
    """Stands for ``NaN`` / ``Infinity`` / ``-Infinity`` while parsing, so the field holding it can be named."""

    def __init__(self, name: str):
        self.name = name


def _find_constant(payload: Any) -> tuple[str, _Constant]:
    """The first non-JSON constant and where it is (``field 'age'``, ``record 2, field 'age'``); no recursion."""
    stack: list[tuple[str, Any]] = [("the value", payload)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, _Constant):
            return where, value
        if isinstance(value, dict):
            prefix = "" if where == "the value" else f"{where}, "
            stack.extend((f"{prefix}field {str(k)[:60]!r}", v) for k, v in reversed(list(value.items())))
        elif isinstance(value, list):
            prefix = "" if where == "the value" else f"{where}, "
            stack.extend((f"{prefix}record {i + 1}", v) for i, v in reversed(list(enumerate(value))))
    raise AssertionError("a constant was parsed but not found")  # pragma: no cover


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"field {key[:60]!r} is given twice in one record; keep one")
        out[key] = value
    return out
