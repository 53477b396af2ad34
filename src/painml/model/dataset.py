"""The labelled data a config names, validated, and its split into disjoint parts.

The split is computed once per run and handed to every stage that needs it
(fitting, calibration, conformal threshold, evaluation, report).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from painml.config import FileData, TrainConfig
from painml.model.conformal import MONDRIAN_MIN_ROWS
from painml.record.columns import LABEL
from painml.record.files import file_sha256, read_raw
from painml.record.labels import relabel
from painml.record.problems import Problem, SchemaError
from painml.record.schema import Records, load_records
from painml.simulator.simulate import simulate

SPLITS = ("train", "calibration", "conformal", "test")


@dataclass
class Dataset:
    """Validated training records, where they came from, and what the label rules did to them."""

    records: Records
    lineage: dict[str, Any]
    source: str
    label_notes: tuple[str, ...] = ()
    """Mapped and dropped labels with their counts, for the console and the run."""

    def class_counts(self, classes: tuple[str, ...]) -> dict[str, int]:
        """Rows per class, every configured class included (zero when absent)."""
        counts = self.records.label.value_counts()
        return {c: int(counts.get(c, 0)) for c in classes}

    @property
    def X(self) -> pd.DataFrame:
        return self.records.features

    @property
    def y(self) -> np.ndarray:
        return self.records.label.to_numpy(dtype=object)


def load_dataset(cfg: TrainConfig) -> Dataset:
    """The training data named by the config, its labels mapped and dropped by the config's rules, then
    validated against the schema (labels required)."""
    if isinstance(cfg.data, FileData):
        path = Path(cfg.data.path)
        lineage: dict[str, Any] = {"source": "file", "path": str(path.resolve()), "sha256": file_sha256(path)}
        return load_labelled(read_raw(path), cfg, lineage, str(path), f"file {path.name}")
    d = cfg.data
    lineage = {"source": "simulate", "preset": d.preset, "n": d.n, "seed": d.seed}
    overrides = {k: v for k, v in (("label", d.label), ("response_level", d.response_level)) if v is not None}
    lineage |= overrides
    source = f"simulator preset={d.preset} n={d.n} seed={d.seed}"
    cohort = simulate(d.preset, d.n, d.seed, **overrides)
    return load_labelled(cohort, cfg, lineage, source, "simulated cohort")


def load_labelled(
    raw: pd.DataFrame, cfg: TrainConfig, lineage: dict[str, Any], source: str, noun: str = "input"
) -> Dataset:
    """Labelled records read as ``cfg`` reads them (any labelled file: training data, a held-out file,
    a fresh simulated cohort): the label rules applied, then the schema."""
    raw, rules = relabel(raw, cfg.classes, cfg.labels.map, cfg.labels.drop, source=noun)
    records = load_records(raw, require_label=True, classes=cfg.classes)
    if not rules.keep.all():
        records = records.subset(rules.keep)
    lineage = {**lineage, "rows": len(records.frame)}
    if rules.mapped or rules.dropped:
        lineage["labels_mapped"] = rules.mapped
        lineage["labels_dropped"] = rules.dropped
    return Dataset(records, lineage, source, tuple(rules.summary()))


def split_rows(y: np.ndarray, cfg: TrainConfig) -> dict[str, np.ndarray]:
    """Disjoint train / calibration / conformal / test row positions; deterministic for a seed.

    The calibration share of the config is halved between temperature
    calibration and the conformal threshold, which must not see the same rows.
    """
    s, seed = cfg.split, cfg.seed
    idx = np.arange(len(y))

    def cut(rows: np.ndarray, share: float) -> tuple[np.ndarray, np.ndarray]:
        strat = y[rows] if s.stratify else None
        a, b = train_test_split(rows, test_size=share, stratify=strat, random_state=seed)
        return np.sort(a), np.sort(b)

    rest, test = cut(idx, s.test_size)
    train, held = cut(rest, s.calibration_size / (1 - s.test_size))
    calibration, conformal = cut(held, 0.5)
    return {"train": train, "calibration": calibration, "conformal": conformal, "test": test}


def check_class_counts(counts: dict[str, int], method: str, cfg: TrainConfig) -> list[str]:
    """Refuse, before any fitting, a class too small for the chosen validation (one problem naming the class,
    its count and the ways out); return warnings for classes that are rare but usable."""
    folds = cfg.validation.folds
    if method == "holdout":
        smallest_share = min(cfg.split.test_size, cfg.split.calibration_size / 2)
        needed, why = math.ceil(2 / smallest_share), "a holdout split that puts two of its rows in every part"
    else:
        needed, why = max(2 * folds, 10), f"{folds}-fold cross-validation with an inner split in every fold"
    problems = [
        Problem(
            None,
            LABEL.name,
            None,
            f"class {c!r} has {n:,} rows; {why} needs at least {needed}. Map it to another class, drop it "
            "(labels: map / drop in the config), or choose another validation"
            + (" (validation: cv)" if method == "holdout" else f" (fewer folds than {folds})"),
        )
        for c, n in counts.items()
        if n < needed
    ]
    if problems:
        raise SchemaError(problems)
    return [
        f"class {c!r} is rare ({n:,} rows): its conformal coverage is reported on its own, and class-conditional "
        f"prediction sets need {MONDRIAN_MIN_ROWS} rows of every class"
        for c, n in counts.items()
        if n < MONDRIAN_MIN_ROWS
    ]
