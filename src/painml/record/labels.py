"""Labels as clinics record them: mapped onto the configured classes, dropped, or refused in one line each.

A clinic's export rarely uses exactly the classes a model is trained on: a
third label on a few rows, a synonym ("both" for mixed), a placeholder
("unknown"). :func:`apply_label_rules` turns the raw label column into the
configured classes before the record is validated, and says what it did with
counts, so nothing is dropped silently and an unknown spelling costs one line
("label 'neuropatic' in 2,117 rows ...") rather than one per row.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from painml.record.columns import LABEL
from painml.record.problems import Problem, SchemaError


@dataclass(frozen=True)
class LabelOutcome:
    """What the rules did: rows kept, and counts of mapped, dropped and missing labels."""

    keep: np.ndarray
    """Boolean per input row: False for rows whose label was dropped."""
    labels: pd.Series
    """The configured class of every kept row (the input's index)."""
    mapped: dict[str, int]
    """``"both -> mixed"``: rows."""
    dropped: dict[str, int]
    problems: tuple[Problem, ...] = ()
    """Unknown values, one problem each, when they were reported rather than raised."""

    def summary(self) -> list[str]:
        """Lines for the console and the run, empty when nothing was changed."""
        lines = [f"label {rule} in {n:,} rows" for rule, n in self.mapped.items()]
        lines += [f"label {value!r} dropped: {n:,} rows" for value, n in self.dropped.items()]
        return lines


def resolve(value: str, mapping: Mapping[str, str]) -> str:
    """Follow the map from a recorded value to its class (``both -> mixed -> neuropathic``)."""
    seen = [value]
    while value in mapping:
        value = mapping[value]
        if value in seen:
            raise ValueError(f"the label map loops: {' -> '.join([*seen, value])}")
        seen.append(value)
    return value


def apply_label_rules(
    raw: pd.DataFrame,
    classes: Sequence[str],
    mapping: Mapping[str, str] | None = None,
    drop: Sequence[str] = (),
    *,
    source: str = "input",
    report_unknown: bool = False,
) -> LabelOutcome:
    """Map and drop the raw ``pain_type`` values; a value neither known nor handled is a SchemaError with one
    problem per distinct value (its row count and the ways out). Case and surrounding spaces are ignored, as the
    schema ignores them; an empty label is left to the schema, which reports its rows.

    ``report_unknown``: the problems are returned in the outcome instead (those rows are not kept), so a
    file check can list them beside every other problem."""
    mapping = {k.strip().lower(): v for k, v in (mapping or {}).items()}
    dropped_values = {d.strip().lower() for d in drop}
    if LABEL.name not in raw.columns:
        return LabelOutcome(np.ones(len(raw), dtype=bool), pd.Series(index=raw.index, dtype=object), {}, {})
    text = raw[LABEL.name].astype("string").str.strip()
    lower = text.str.lower()
    known = {c.lower(): c for c in classes}
    out = text.astype(object).copy()
    keep = np.ones(len(raw), dtype=bool)
    mapped: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    unknown: Counter[str] = Counter()
    where: dict[str, np.ndarray] = {}
    for value, count in lower.dropna().value_counts().items():
        if value == "":
            continue
        rows = (lower == value).fillna(False).to_numpy()
        if value in dropped_values:
            keep &= ~rows
            dropped[value] += int(count)
            continue
        target = resolve(value, mapping).lower()
        if target in dropped_values:
            keep &= ~rows
            dropped[value] += int(count)
        elif target in known:
            out[rows] = known[target]
            if target != value:
                mapped[f"{value!r} -> {known[target]}"] += int(count)
        else:
            unknown[value] += int(count)
            where[value] = np.flatnonzero(rows)[:5] + 1
            keep &= ~rows
    choices = ", ".join(classes)
    problems = tuple(
        Problem(
            None,
            LABEL.name,
            None,
            f"label {value!r} in {n:,} rows of the {source} ({_rows(where[value], n)}) is not one of {choices}; "
            "map it to a class or drop it in the config's labels",
        )
        for value, n in unknown.most_common()
    )
    if problems and not report_unknown:
        raise SchemaError(problems)
    return LabelOutcome(keep, out[keep], dict(mapped), dict(dropped), problems)


def relabel(
    raw: pd.DataFrame,
    classes: Sequence[str],
    mapping: Mapping[str, str] | None = None,
    drop: Sequence[str] = (),
    *,
    source: str = "input",
    report_unknown: bool = False,
) -> tuple[pd.DataFrame, LabelOutcome]:
    """``raw`` with its labels mapped, for validation before the dropped rows leave (they carry a placeholder
    class meanwhile, so every row keeps the number it has in the file); drop ``outcome.keep`` afterwards."""
    outcome = apply_label_rules(raw, classes, mapping, drop, source=source, report_unknown=report_unknown)
    if outcome.mapped or outcome.dropped or outcome.problems:
        labels = outcome.labels.reindex(raw.index).where(outcome.keep, classes[0])
        raw = raw.assign(**{LABEL.name: labels})
    return raw, outcome


def _rows(first: np.ndarray, n: int) -> str:
    """ "row 2", "rows 2, 5, 9", "rows 2, 5, 9, 11, 14, ..." (1-based, as the schema numbers rows)."""
    shown = ", ".join(str(r) for r in first.tolist()) + (", ..." if n > len(first) else "")
    return f"row {shown}" if n == 1 else f"rows {shown}"
