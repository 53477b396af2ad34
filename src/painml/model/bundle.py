"""A trained painml model on disk: the calibrated estimator plus what it knows.

The estimator is stored with skops, which refuses to load any type that is
not on :data:`TRUSTED_TYPES` (a pickle can run arbitrary code on load). The
metadata JSON carries everything the predictor needs besides the estimator:
the label set, the conformal threshold, the ranges seen in training (to flag
unfamiliar inputs), the evaluation metrics and the data lineage.

Next to them, :data:`COMPILED_FILE` holds the same fitted model as plain
arrays (:class:`painml.model.compiled.runtime.CompiledModel`): scoring reads that, so
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
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from painml.model import calibration
from painml.model.compiled.runtime import CompiledModel, Damaged, Unsupported
from painml.model.metadata import BundleMetadata
from painml.record.columns import BY_NAME, FEATURE_COLUMNS

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

log = logging.getLogger(__name__)

ESTIMATOR_FILE = "model.skops"
METADATA_FILE = "metadata.json"
COMPILED_FILE = "compiled.npz"

TRUSTED_TYPES = [
    "collections.OrderedDict",
    "numpy.dtype",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMClassifier",
    "painml.features.encoding.ScreeningScores",
    "painml.features.ScreeningScores",  # models saved before the package split
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._TemperatureScaling",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.model_selection._split.StratifiedKFold",  # the inner folds of a penalty chosen by cross-validation
]


class ModelFolderError(ValueError):
    """A model folder that cannot serve: a file missing, unreadable, damaged or of untrusted content.

    The message names the file and what is wrong with it.
    """


class ModelBundle:
    """A calibrated classifier and its metadata; ``pipeline`` is the uncalibrated features + model.

    Built from an estimator in memory (training), or from a folder
    (:meth:`load`), in which case the estimator is read on first use.
    """

    def __init__(self, estimator: Any = None, metadata: BundleMetadata | None = None, *, folder: Path | None = None):
        if estimator is None and folder is None:
            raise ValueError("a bundle needs an estimator or a folder to load it from")
        if metadata is None:
            raise ValueError("a bundle needs its metadata")
        self._estimator = estimator
        self.metadata = metadata
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
    def has_estimator(self) -> bool:
        """Whether the estimator is in memory or its file is beside the metadata."""
        return self._estimator is not None or (self.folder is not None and (self.folder / ESTIMATOR_FILE).exists())

    @property
    def classes(self) -> list[str]:
        return list(self.metadata.classes)

    @property
    def pipeline(self) -> Pipeline:
        """The fitted features + model pipeline inside the calibration wrapper (what SHAP explains)."""
        return calibration.uncalibrated(self.estimator)

    @property
    def temperature_factor(self) -> float | None:
        """Calibrated logits are the raw ones times this factor, when calibration is by temperature."""
        return calibration.temperature_factor(self.estimator)

    def with_metadata(self, **changes: Any) -> ModelBundle:
        """The same estimator with some metadata replaced (the compiled form is kept when the model is)."""
        bundle = ModelBundle(self._estimator, replace(self.metadata, **changes), folder=self.folder)
        if "feature_means" not in changes and "classes" not in changes:
            bundle._compiled = self._compiled
        return bundle

    def predict_proba(self, features: Any) -> np.ndarray:
        """Calibrated probabilities of ``Records.features``, columns in :attr:`classes` order: through
        the compiled model when there is one (the numbers every serving path gives), else scikit-learn."""
        compiled = self.compiled()
        if compiled is not None and _canonical(features):
            columns = {name: features[name].to_numpy() for name in FEATURE_COLUMNS}
            n = len(features)
            return compiled.proba(compiled.encode(columns, n, compiled.scores(columns, n)))
        return self.sklearn_proba(features)

    def sklearn_proba(self, features: Any) -> np.ndarray:
        """The estimator's own probabilities, columns in :attr:`classes` order."""
        est = self.estimator
        proba = est.predict_proba(features)
        order = [list(est.classes_).index(c) for c in self.classes]
        return proba[:, order]

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
        """``compiled.npz`` if present and made from the ``model.skops`` beside it; else None (the estimator
        is compiled instead, with a warning when a file was there).

        A file whose contents do not match the SHA-256 recorded at save is refused
        (:class:`ModelFolderError`). A file made for another estimator file is
        replaced by compiling that estimator, unless the estimator cannot be
        loaded: then it is damaged, and the compiled model serves alone.
        """
        path = None if self.folder is None else self.folder / COMPILED_FILE
        if path is None or not path.exists():
            return None
        try:
            compiled = CompiledModel.load(path)
        except Damaged as error:
            raise ModelFolderError(str(error)) from None
        except Unsupported as error:
            if not self.has_estimator:
                raise ModelFolderError(f"{error}, and there is no {ESTIMATOR_FILE} to compile instead") from None
            log.warning("%s cannot be used (%s); compiling %s instead", path, error, ESTIMATOR_FILE)
            return None
        estimator_file = self.folder / ESTIMATOR_FILE
        if not estimator_file.exists():
            log.warning("%s is missing: scoring from %s alone", estimator_file, COMPILED_FILE)
            return compiled
        if compiled.spec.get("estimator_sha256") == _sha256(estimator_file):
            return compiled
        try:
            self.estimator  # noqa: B018 - loads it, or finds it damaged
        except ModelFolderError as error:
            log.warning("%s; scoring from %s, which was saved with the original", error, COMPILED_FILE)
            return compiled
        log.warning("%s was made for another %s; compiling the estimator instead", path, ESTIMATOR_FILE)
        return None

    def _compile(self) -> CompiledModel | None:
        # lazy: serving a compiled model reads neither scikit-learn nor skops
        from painml.model.compiled.compile import compile_estimator

        try:
            return compile_estimator(self.estimator, self.classes, self.metadata)
        except Unsupported as why:
            log.info("scoring through scikit-learn (no compiled form): %s", why)
            return None

    def save(self, folder: str | Path) -> Path:
        """Estimator, metadata and (when the model has one) its compiled form, which names the
        estimator file it was made from; a stale compiled file is replaced or removed."""
        # lazy: serving a compiled model reads neither scikit-learn nor skops
        import skops.io as sio

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        sio.dump(self.estimator, folder / ESTIMATOR_FILE)
        (folder / METADATA_FILE).write_text(self.metadata.to_json())
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
        """The metadata now; the estimator when first used. :class:`ModelFolderError` names the file
        when the metadata is missing or invalid, or neither the estimator nor its compiled form is there."""
        folder = Path(folder)
        file = folder / METADATA_FILE
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelFolderError(f"{file}: missing; every model folder has one") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ModelFolderError(f"{file}: not readable JSON ({error})") from None
        if not isinstance(data, dict):
            raise ModelFolderError(f"{file}: expected a JSON object, found {type(data).__name__}")
        try:
            metadata = BundleMetadata.from_json(data, str(file))
        except (TypeError, ValueError) as error:
            raise ModelFolderError(str(error) if str(file) in str(error) else f"{file}: {error}") from None
        if not metadata.classes or not all(isinstance(c, str) for c in metadata.classes):
            raise ModelFolderError(f"{file}: 'classes' must be a non-empty list of class names")
        if not (folder / ESTIMATOR_FILE).exists() and not (folder / COMPILED_FILE).exists():
            raise ModelFolderError(f"{folder}: neither {ESTIMATOR_FILE} nor {COMPILED_FILE} is there")
        return cls(metadata=metadata, folder=folder)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _load_estimator(folder: Path | None) -> Any:
    # lazy: serving a compiled model reads neither scikit-learn nor skops
    import skops.io as sio

    file = Path(folder) / ESTIMATOR_FILE
    if not file.exists():
        raise ModelFolderError(f"{file}: missing; it is needed for explanations, reports and this model's scoring")
    try:
        untrusted = set(sio.get_untrusted_types(file=file)) - set(TRUSTED_TYPES)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as error:
        raise ModelFolderError(f"{file}: not a readable skops file ({error or type(error).__name__})") from None
    if untrusted:
        hint = ""
        if any(name.startswith("painml.") for name in untrusted):
            hint = " (this model was saved by an older painml whose classes have moved: retrain it)"
        raise ModelFolderError(f"{file}: refusing to load untrusted types {sorted(untrusted)}{hint}")
    try:
        return sio.load(file, trusted=TRUSTED_TYPES)
    except Exception as error:  # skops raises whatever the damaged part makes its loaders raise
        raise ModelFolderError(f"{file}: cannot be loaded ({type(error).__name__}: {error})") from None


def _canonical(features: Any) -> bool:
    """Whether ``features`` has every feature column in the schema's types (float64, or object for text)."""
    for name in FEATURE_COLUMNS:
        if name not in features:
            return False
        dtype = features[name].dtype
        if dtype != (object if BY_NAME[name].kind == "category" else np.float64):
            return False
    return True
