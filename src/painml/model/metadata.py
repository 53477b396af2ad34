"""The train-to-serve contract: what a saved model knows besides its estimator (``metadata.json``).

Frozen and typed, as :class:`painml.config.TrainConfig` is: training builds
it once the conformal threshold, profile and metrics are known, the bundle
writes it as JSON, and every reader (predictor, explanations, report,
promotion) reads attributes, never string keys. Files written before this
record existed have the same keys and load unchanged; a key this version
does not know is an error that names it (a newer painml wrote the file).
Free of pandas and scikit-learn: scoring one patient reads it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class TrainingProfile:
    """What the training rows looked like, to flag unfamiliar inputs at prediction time."""

    numeric_ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    categories: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    blocks_seen: tuple[str, ...] | None = None
    """Optional blocks (questionnaires, examination, tests) the training data recorded; None: unknown."""
    sites: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrainingProfile:
        seen = data.get("blocks_seen")
        return cls(
            numeric_ranges={k: (float(lo), float(hi)) for k, (lo, hi) in (data.get("numeric_ranges") or {}).items()},
            categories={k: tuple(v) for k, v in (data.get("categories") or {}).items()},
            blocks_seen=None if seen is None else tuple(seen),
            sites=tuple(data.get("sites") or ()),
        )


@dataclass(frozen=True)
class BundleMetadata:
    """Everything the predictor needs besides the estimator, and where the model came from."""

    classes: tuple[str, ...]
    family: str
    registered_model: str = "painml"
    config: str | None = None
    lineage: Mapping[str, Any] = field(default_factory=dict)
    conformal_confidence: float | None = None
    conformal_qhat: float | None = None
    """Split-conformal threshold: class k is in a row's set when p_k >= 1 - qhat (None: no sets)."""
    conformal_qhat_by_class: tuple[float, ...] | None = None
    """Class-conditional (Mondrian) thresholds in class order; used instead of ``conformal_qhat`` when set."""
    validation: str = "holdout"
    """How the reported metrics were estimated: holdout, or cv (out-of-fold, model refitted on all rows)."""
    training_profile: TrainingProfile = field(default_factory=TrainingProfile)
    temperature_factor: float | None = None
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    """Test-set metrics, so a model folder outside any store still reports them."""
    feature_means: Mapping[str, float] = field(default_factory=dict)
    """Training mean per encoded column, the linear model's SHAP background when it is not 0 by scaling."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(self.classes))
        if self.conformal_qhat_by_class is not None:
            object.__setattr__(self, "conformal_qhat_by_class", tuple(float(q) for q in self.conformal_qhat_by_class))

    @property
    def thresholds(self) -> float | tuple[float, ...] | None:
        """What prediction sets are cut at: the per-class thresholds when fitted, else the single one."""
        return self.conformal_qhat_by_class if self.conformal_qhat_by_class is not None else self.conformal_qhat

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str = "metadata") -> BundleMetadata:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{where}: unknown keys {unknown}; was this model saved by a newer painml?")
        missing = [k for k in ("classes", "family") if k not in data]
        if missing:
            raise ValueError(f"{where}: missing keys {missing}")
        values = dict(data)
        values["training_profile"] = TrainingProfile.from_json(values.get("training_profile") or {})
        for key in ("lineage", "hyperparameters", "metrics", "feature_means"):
            values[key] = values.get(key) or {}
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=_jsonable)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
