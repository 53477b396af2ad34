"""A trained painml model on disk: the calibrated estimator plus what it knows.

The estimator is stored with skops, which refuses to load any type that is
not on :data:`TRUSTED_TYPES` (a pickle can run arbitrary code on load). The
metadata JSON carries everything the predictor needs besides the estimator:
the label set, the conformal threshold, the ranges seen in training (to flag
unfamiliar inputs), the evaluation metrics and the data lineage.

Next to them, :data:`COMPILED_FILE` holds the same fitted model as plain
arrays (:class:`painml.fastpath.CompiledModel`): scoring reads that, so
serving one patient never imports scikit-learn, LightGBM or skops, and the
estimator itself is only loaded when something asks for it (explanations
through SHAP, reports, models the compiled form does not cover).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from painml.fastpath import CompiledModel

log = logging.getLogger(__name__)

ESTIMATOR_FILE = "model.skops"
METADATA_FILE = "metadata.json"
COMPILED_FILE = "compiled.npz"

TRUSTED_TYPES = [
    "collections.OrderedDict",
    "numpy.dtype",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMClassifier",
    "painml.features.ScreeningScores",
    "painml.screening.ScreeningScores",  # models saved before it moved to painml.features
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._TemperatureScaling",
    "sklearn.calibration._SigmoidCalibration",
]


class ModelBundle:
    """A calibrated classifier and its metadata; ``pipeline`` is the uncalibrated features + model.

    Built from an estimator in memory (training), or from a folder
    (:meth:`load`), in which case the estimator is read on first use.
    """

    def __init__(self, estimator: Any = None, metadata: dict[str, Any] | None = None, *, folder: Path | None = None):
        if estimator is None and folder is None:
            raise ValueError("a bundle needs an estimator or a folder to load it from")
        self._estimator = estimator
        self.metadata: dict[str, Any] = metadata if metadata is not None else {}
        self.folder = folder
        self._compiled: CompiledModel | None | bool = False  # False: not looked for yet
        self._lock = threading.RLock()  # compiling reads the estimator under the same lock

    @property
    def estimator(self) -> Any:
        if self._estimator is None:
            with self._lock:
                if self._estimator is None:
                    self._estimator = _load_estimator(self.folder)
        return self._estimator

    @property
    def classes(self) -> list[str]:
        return list(self.metadata["classes"])

    @property
    def pipeline(self) -> Pipeline:
        """The fitted features + model pipeline inside the calibration wrapper (what SHAP explains)."""
        est = self.estimator
        if hasattr(est, "calibrated_classifiers_"):
            est = est.calibrated_classifiers_[0].estimator
        return getattr(est, "estimator", est)

    @property
    def temperature_factor(self) -> float | None:
        """Calibrated logits are the raw ones times this factor, when calibration is by temperature."""
        est = self.estimator
        if not hasattr(est, "calibrated_classifiers_"):
            return 1.0
        calibrators = est.calibrated_classifiers_[0].calibrators
        if len(calibrators) == 1 and hasattr(calibrators[0], "beta_"):
            return float(calibrators[0].beta_)
        return None

    def compiled(self) -> CompiledModel | None:
        """The model as plain arrays: read from the folder when saved there for this very estimator
        file, else compiled from the estimator; None when the estimator has a step the compiled form
        does not cover (scoring then goes through scikit-learn)."""
        if self._compiled is False:
            with self._lock:
                if self._compiled is False:
                    self._compiled = self._read_compiled() or self._compile()
        return self._compiled  # type: ignore[return-value]

    def _read_compiled(self) -> CompiledModel | None:
        """``compiled.npz`` if present, readable and made from the ``model.skops`` beside it; else None, with
        a warning when there was a file that could not serve (the estimator is compiled instead)."""
        from painml import fastpath

        path = None if self.folder is None else self.folder / COMPILED_FILE
        if path is None or not path.exists():
            return None
        try:
            compiled = fastpath.CompiledModel.load(path)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, fastpath.Unsupported) as error:
            log.warning("%s cannot be read (%s); compiling %s instead", path, error, ESTIMATOR_FILE)
            return None
        if compiled.spec.get("estimator_sha256") != _sha256(self.folder / ESTIMATOR_FILE):
            log.warning("%s was made for another %s; compiling the estimator instead", path, ESTIMATOR_FILE)
            return None
        return compiled

    def _compile(self) -> CompiledModel | None:
        from painml import fastpath

        try:
            return fastpath.CompiledModel.from_estimator(self.estimator, self.classes, self.metadata)
        except fastpath.Unsupported as why:
            log.info("scoring through scikit-learn (no compiled form): %s", why)
            return None

    def save(self, folder: str | Path) -> Path:
        """Estimator, metadata and (when the model has one) its compiled form, which names the
        estimator file it was made from; a stale compiled file is replaced or removed."""
        import skops.io as sio

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        sio.dump(self.estimator, folder / ESTIMATOR_FILE)
        (folder / METADATA_FILE).write_text(json.dumps(self.metadata, indent=2, default=_jsonable))
        compiled = self.compiled()
        target = folder / COMPILED_FILE
        if compiled is None:
            target.unlink(missing_ok=True)
            return folder
        compiled.spec["estimator_sha256"] = _sha256(folder / ESTIMATOR_FILE)
        partial = folder / f".{COMPILED_FILE}.{os.getpid()}.tmp.npz"
        try:
            compiled.save(partial)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> ModelBundle:
        """The metadata now; the estimator when first used (``ValueError`` then if it holds untrusted types)."""
        folder = Path(folder)
        metadata = json.loads((folder / METADATA_FILE).read_text())
        if not (folder / ESTIMATOR_FILE).exists():
            raise FileNotFoundError(f"{folder}: no {ESTIMATOR_FILE}")
        return cls(metadata=metadata, folder=folder)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _load_estimator(folder: Path | None) -> Any:
    import skops.io as sio

    file = Path(folder) / ESTIMATOR_FILE
    untrusted = set(sio.get_untrusted_types(file=file)) - set(TRUSTED_TYPES)
    if untrusted:
        raise ValueError(f"{folder}: refusing to load untrusted types {sorted(untrusted)}")
    return sio.load(file, trusted=TRUSTED_TYPES)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
