"""The one-record gate: decides the common case of one JSON record without pandas.

:class:`RecordChecker` accepts a record only when it can prove that
:func:`painml.record.schema.load_records` would accept it and produce the same
values (plain JSON types, numbers in range, known category spellings); for
anything else it answers None and the caller runs the schema, which then
reports every problem in its own words. A record the checker accepts is
therefore never one the schema would reject. Kept free of pandas so that one
patient is scored without importing it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from painml.record.columns import (
    BOOLEAN_WORDS,
    BY_NAME,
    INPUT_COLUMNS,
    LABEL,
    TRUE_PREFIX,
)

__all__ = ["CheckedRecord", "RecordChecker", "columns_of"]

# Numbers written as text: only plain integers are decided here; anything else
# ("7.5", "1e2") goes to the schema, whose parser may round differently from float().
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]{1,15}")


@dataclass(frozen=True)
class CheckedRecord:
    """A record the schema would accept, in the schema's canonical form: one scalar per record column.

    Findings and numbers are floats (NaN when missing), categories and ids
    text (NaN when missing), as in ``Records.frame``.
    """

    values: dict[str, Any]
    extras: dict[str, Any]
    label: str | None


class RecordChecker:
    """Decides the common case of one record without pandas; None means "ask the schema".

    Only ``str``, ``int``, ``float``, ``bool`` and ``None`` values are decided.
    """

    def __init__(self, classes: Sequence[str], allow_extra: bool) -> None:
        self.allow_extra = allow_extra
        self._label = {c.lower(): c for c in classes}
        self._specs = [(c.name, c.kind, c.low, c.high, {a.lower(): a for a in c.allowed}) for c in INPUT_COLUMNS]
        self._known = frozenset(BY_NAME)
        self._known_lower = frozenset(name.lower() for name in BY_NAME)

    def check(self, record: Mapping[str, Any]) -> CheckedRecord | None:
        values: dict[str, Any] = {}
        for key, value in record.items():
            if not isinstance(key, str):
                return None
            name = key.strip()
            if name in values:  # two keys naming one column after stripping
                return None
            values[name] = value
        extras = {}
        for name, value in values.items():
            if name not in self._known and not name.startswith(TRUE_PREFIX):
                if not self.allow_extra or name.lower() in self._known_lower:  # the schema matches any case
                    return None
                extras[name] = value
        out: dict[str, Any] = {}
        for name, kind, low, high, allowed in self._specs:
            parsed = _parse(values.get(name), kind, low, high, allowed)
            if parsed is _BAD:
                return None
            out[name] = parsed
        label = None
        if LABEL.name in values:
            label = _parse(values[LABEL.name], "category", None, None, self._label)
            if label is _BAD:
                return None
            label = None if isinstance(label, float) else label
        return CheckedRecord(out, extras, label)


_BAD = object()


def _parse(value: Any, kind: str, low: float | None, high: float | None, allowed: Mapping[str, str]) -> Any:
    """The canonical value (float, or text / NaN for categories and ids), or _BAD when undecided."""
    if value is None:
        return math.nan
    t = type(value)
    if t is float and value != value:
        return math.nan
    if kind == "binary":
        if t is bool:
            return 1.0 if value else 0.0
        if t is int or t is float:
            return float(value) if value in (0, 1) else _BAD
        if t is str:
            text = value.strip()
            if not text:
                return math.nan
            return BOOLEAN_WORDS.get(text.lower(), _BAD)
        return _BAD
    if kind in ("integer", "number"):
        if t is int or t is float:
            x = float(value) if abs(value) < 1e300 else math.inf
        elif t is str:
            text = value.strip()
            if not text:
                return math.nan
            if not _INTEGER_TEXT.fullmatch(text):
                return _BAD
            x = float(int(text))
        else:
            return _BAD
        if not math.isfinite(x):
            return _BAD
        if (low is not None and x < low) or (high is not None and x > high):
            return _BAD
        if kind == "integer" and x % 1 != 0:
            return _BAD
        return x
    if kind == "category":
        if t is not str:
            return _BAD
        text = value.strip()
        if not text:
            return math.nan
        return allowed.get(text.lower(), _BAD)
    # id: text as written, stripped; a whole number is shown as pandas would (str of the int)
    if t is str:
        text = value.strip()
        return text if text else math.nan
    if t is int:
        return str(value)
    return _BAD


def columns_of(frame: Any) -> dict[str, np.ndarray]:
    """The record columns of a validated frame (``Records.frame``) as arrays, without copies."""
    return {c.name: frame[c.name].to_numpy() for c in INPUT_COLUMNS}
