"""The labelled data a config names, validated, and its split into disjoint parts.

The split is computed once per run and handed to every stage that needs it
(fitting, calibration, conformal threshold, evaluation, report).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from painml.config import FileData, TrainConfig
from painml.record.files import file_sha256
from painml.record.schema import Records, load_records
from painml.simulator.simulate import simulate

SPLITS = ("train", "calibration", "conformal", "test")


@dataclass
class Dataset:
    records: Records
    lineage: dict[str, Any]
    source: str

    @property
    def X(self) -> pd.DataFrame:
        return self.records.features

    @property
    def y(self) -> np.ndarray:
        return self.records.label.to_numpy(dtype=object)


def load_dataset(cfg: TrainConfig) -> Dataset:
    """The training data named by the config, validated against the schema (labels required)."""
    if isinstance(cfg.data, FileData):
        path = Path(cfg.data.path)
        records = load_records(path, require_label=True, classes=cfg.labels)
        lineage = {
            "source": "file",
            "path": str(path.resolve()),
            "sha256": file_sha256(path),
            "rows": len(records.frame),
        }
        return Dataset(records, lineage, str(path))
    d = cfg.data
    frame = simulate(d.preset, d.n, d.seed)
    records = load_records(frame, require_label=True, classes=cfg.labels)
    lineage = {"source": "simulate", "preset": d.preset, "n": d.n, "seed": d.seed, "rows": len(frame)}
    return Dataset(records, lineage, f"simulator preset={d.preset} n={d.n} seed={d.seed}")


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
