"""The one predictor behind every way of asking: CLI, batch file, HTTP and MLflow's pyfunc.

A :class:`Predictor` loads a model once (:meth:`Predictor.from_uri`: a
registry alias or version, a run, or a local folder) and scores records in
the patient-record schema. For each row it returns:

- ``p_<class>`` calibrated probabilities, ``predicted_class`` and its ``confidence``;
- ``prediction_set``: the split-conformal (LAC) set at the model's configured
  confidence (``metadata["conformal_confidence"]``), e.g. ``neuropathic|mixed``
  when the model cannot tell the two apart at that level;
- ``dn4``, ``paindetect``, ``neupsig_grade``: the screening scores, for context;
- ``flags``: how the record differs from the training data (a value outside
  the range seen, an unseen site or category, a questionnaire block training
  never had), empty when it does not;
- on request (``reasons=k``) the ``k`` largest SHAP contributions to the
  predicted class (:func:`painml.explain.top_reasons`);
- ``patient_id`` echoed, and the ``model`` name and ``model_version``.

Every path scores through the same compiled model (:mod:`painml.fastpath`,
read from the bundle's ``compiled.npz``), so a patient gets the same answer
whichever way it was asked. One record (:meth:`Predictor.predict_one`, used
by HTTP and the CLI) skips pandas altogether when the record is plainly
valid, and runs on the calling thread: a thread hop costs more than the
trees of one row. Loading a model imports neither scikit-learn, LightGBM,
pandas nor MLflow (a local SQLite registry is read directly), which keeps a
one-patient command under a second or so; the estimator itself is read only
for models the compiled form does not cover, or for SHAP's own explainers.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, closing, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from painml import fastpath, reasons as reasons_, screening, tracking
from painml.bundle import METADATA_FILE, ModelBundle
from painml.columns import BLOCKS, BY_NAME, FEATURE_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

DEFAULT_MODEL_URI = "models:/painml-pain-type@champion"
CONTEXT_SCORES = ("dn4", "paindetect", "neupsig_grade")
MAX_REASONS = 10
SET_SEPARATOR = "|"
FLAG_SEPARATOR = "; "
# Blocks a site may or may not record: a model that never saw one cannot know what it means.
OPTIONAL_BLOCKS = ("dn4_interview", "paindetect", "examination", "tests")
_BLOCK_NAMES = {
    "dn4_interview": "DN4 interview",
    "paindetect": "painDETECT",
    "examination": "bedside examination",
    "tests": "diagnostic tests",
}


class ModelNotFound(LookupError):
    """No model at the URI given (or the registry, run or folder could not be read)."""


def conformal_threshold(proba: np.ndarray, y_index: np.ndarray, confidence: float) -> float:
    """Split-conformal (LAC) threshold: include class k when p_k >= 1 - qhat.

    ``qhat`` is the ceil((n+1)c)/n quantile of 1 - p(true class) on rows the
    model and its calibration never saw (Sadinle, Lei & Wasserman 2019), which
    guarantees coverage of at least ``confidence`` on exchangeable data.
    """
    scores = 1.0 - proba[np.arange(len(y_index)), y_index]
    n = len(scores)
    level = min(1.0, np.ceil((n + 1) * confidence) / n)
    return float(np.quantile(scores, level, method="higher"))


def prediction_sets(proba: np.ndarray, qhat: float) -> np.ndarray:
    """Boolean (rows, classes); the most probable class is always in the set."""
    sets = proba >= 1.0 - qhat
    sets[np.arange(len(proba)), proba.argmax(axis=1)] = True
    return sets


@dataclass
class Scored:
    """One scoring of ``n`` rows, before it is shaped as a frame (files) or JSON rows (HTTP, CLI)."""

    patient_id: np.ndarray
    proba: np.ndarray
    best: np.ndarray
    sets: np.ndarray | None
    context: dict[str, np.ndarray]
    flags: dict[int, list[str]]
    """Sparse: only rows with something to say (most rows have no flag)."""
    reasons: list[list[Any]] | None


class Predictor:
    """Loads a model once; scores records in the patient-record schema."""

    def __init__(
        self,
        bundle: ModelBundle,
        name: str | None = None,
        version: str | None = None,
        *,
        uri: str | None = None,
        run_id: str | None = None,
        store: str | None = None,
        folder: Path | None = None,
    ):
        self.bundle = bundle
        self.classes = bundle.classes
        self.metadata = bundle.metadata
        self.name = name or bundle.metadata.get("registered_model", "painml")
        self.version = version
        self.uri = uri
        self.run_id = run_id
        self.folder = folder
        self._store = store
        self._metrics: dict[str, float] | None = None
        self.qhat = bundle.metadata.get("conformal_qhat")
        self.confidence = bundle.metadata.get("conformal_confidence")
        self.compiled: fastpath.CompiledModel | None = bundle.compiled()
        self._checkers = {
            allow: fastpath.RecordChecker(self.classes, allow_extra=allow) for allow in (False, True)
        }
        self._profile = _Profile(bundle.metadata.get("training_profile") or {})
        self._folding: _Folding | None = None
        self._controller: Any = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_folder(cls, folder: str | Path, name: str | None = None, version: str | None = None) -> Predictor:
        """A bundle folder (``model.skops`` + ``metadata.json``) or an MLflow model folder holding one."""
        path = bundle_folder(Path(folder))
        return cls(ModelBundle.load(path), name, version, uri=str(folder), folder=path)

    @classmethod
    def from_uri(cls, uri: str | None = None, tracking_uri: str | None = None) -> Predictor:
        """Load ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``runs:/RUN/PATH`` or a local folder.

        ``uri`` defaults to :data:`DEFAULT_MODEL_URI`; the store is
        ``tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else ``./mlflow.db``,
        exactly as in training. Raises :class:`ModelNotFound` with a readable
        message when there is nothing there.
        """
        uri = uri or DEFAULT_MODEL_URI
        local = Path(uri).expanduser()
        if "://" not in uri and local.exists():
            return cls.from_folder(local)
        if not uri.startswith(("models:/", "runs:/")):
            raise ModelNotFound(f"{uri}: no such folder, and not a models:/ or runs:/ URI")
        store = tracking.resolve_tracking_uri(tracking_uri)
        local_version = _sqlite_model_version(store, uri) if uri.startswith("models:/") else None
        if local_version is not None:  # a local store: no need to import MLflow (about 2 s) to read two rows
            name, version, run_id, path = local_version
            folder = bundle_folder(path)
            return cls(ModelBundle.load(folder), name, version, uri=uri, run_id=run_id, store=store, folder=folder)
        import mlflow
        from mlflow.exceptions import MlflowException

        tracking.use_store(store)
        name = version = None
        try:
            if uri.startswith("models:/"):
                name, version = _registry_version(uri)
            path = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
        except MlflowException as error:
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ModelNotFound(f"{uri} in {store}: {message}") from None
        run_id = _mlmodel(path).get("run_id")
        folder = bundle_folder(path)
        return cls(ModelBundle.load(folder), name, version, uri=uri, run_id=run_id, store=store, folder=folder)

    @property
    def metrics(self) -> dict[str, float]:
        """The metrics of the run that produced the model (from the store, read once), else the bundle's."""
        if self._metrics is None:
            self._metrics = dict(self.metadata.get("metrics") or {})
            if self.run_id and self._store:
                try:
                    self._metrics = _run_metrics(self._store, self.run_id)
                except Exception as error:  # noqa: BLE001 - metrics are informative only
                    log.warning("metrics of run %s unavailable: %s", self.run_id, error)
        return self._metrics

    def warm_up(self) -> None:
        """Score and explain one empty record, so that loading the tree kernels (and compiling them,
        the first time on a machine: a few seconds) happens now rather than in a first request."""
        self.predict_one({"patient_id": "warm-up"}, reasons=1)

    # ------------------------------------------------------------------ scoring

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities, columns in ``self.classes`` order (``features``: ``Records.features``)."""
        if self.compiled is None or not _canonical(features):
            return self._sklearn_proba(features)
        columns = {name: features[name].to_numpy() for name in FEATURE_COLUMNS}
        n = len(features)
        X = self.compiled.encode(columns, n, self.compiled.scores(columns, n))
        return self.compiled.proba(X)

    def _sklearn_proba(self, features: pd.DataFrame) -> np.ndarray:
        est = self.bundle.estimator
        proba = est.predict_proba(features)
        order = [list(est.classes_).index(c) for c in self.classes]
        return proba[:, order]

    def predict(self, source: Any, *, reasons: int = 0, allow_extra: bool = True) -> pd.DataFrame:
        """Validate then score; raises :class:`painml.schema.SchemaError` naming every bad cell.

        ``source``: a DataFrame, a file path, one record (mapping) or a list of
        records, or already validated ``Records``. Returns one row per input
        row (see :data:`output_columns`).
        """
        from painml import schema

        if isinstance(source, schema.Records):
            records = source
        else:
            records = schema.load_records(source, classes=self.classes, allow_extra=allow_extra)
        return self.predict_records(records, reasons=reasons)

    def predict_records(self, records: Any, *, reasons: int = 0) -> pd.DataFrame:
        """Score validated ``Records``; the frame keeps the records' index."""
        scored = self.score_records(records, reasons=reasons)
        return self.to_frame(scored, records.frame.index, reasons)

    def score_records(self, records: Any, *, reasons: int = 0, threads: int | None = None) -> Scored:
        """Score validated ``Records`` without shaping the output (batch files and HTTP lists use this)."""
        reasons = _check_reasons(reasons)
        frame = records.frame
        n = len(frame)
        columns = fastpath.columns_of(frame)
        if self.compiled is None:
            proba = self._sklearn_proba(records.features)
            scores = screening.score_arrays(frame, CONTEXT_SCORES)
        else:
            scores = self.compiled.scores(columns, n)
            X = self.compiled.encode(columns, n, scores)
            proba = self.compiled.proba(X, threads)
        best = proba.argmax(axis=1)
        explained = None
        if reasons and self.compiled is not None:
            explained = self._fast_reasons(X, columns, scores, best, reasons, threads)
        elif reasons:
            from painml.explain import top_reasons

            explained = top_reasons(self.bundle, records.features, frame, k=reasons, class_index=best)
        return self._scored(frame["patient_id"].to_numpy(), proba, best, scores, columns, n, explained)

    def predict_one(self, record: Mapping[str, Any], *, reasons: int = 0, allow_extra: bool = False) -> dict[str, Any]:
        """Score one record (a JSON object) and return one JSON-ready row.

        The fast path: no pandas, one thread. A record that is not plainly
        valid goes through the schema, which raises
        :class:`painml.schema.SchemaError` naming every problem.
        """
        return self.predict_many([record], reasons=reasons, allow_extra=allow_extra)[0]

    def predict_many(
        self, records: Sequence[Mapping[str, Any]], *, reasons: int = 0, allow_extra: bool = False
    ) -> list[dict[str, Any]]:
        """Score a list of records (JSON objects); JSON-ready rows in the same order."""
        reasons = _check_reasons(reasons)
        if len(records) == 1 and self.compiled is not None and isinstance(records[0], Mapping):
            checked = self._checkers[allow_extra].check(records[0])
            if checked is not None:
                return self._rows(self._score_one(checked.values, reasons))
        from painml import schema  # pandera: imported only when a record needs the full schema

        validated = schema.load_records(list(records), classes=self.classes, allow_extra=allow_extra)
        if len(validated.frame) > 64:
            return self._rows(self.score_records(validated, reasons=reasons))
        with nullcontext() if self.compiled is not None else self._one_thread():
            return self._rows(self.score_records(validated, reasons=reasons, threads=1))

    def _score_one(self, values: dict[str, Any], reasons: int) -> Scored:
        """One record of scalars, checked by :class:`painml.fastpath.RecordChecker`: no pandas on the way."""
        compiled = self.compiled
        scores = compiled.score_row(values)
        X = compiled.encode_row(values, scores)
        proba = compiled.proba(X, threads=1)
        best = proba.argmax(axis=1)
        explained = None
        if reasons:
            explained = self._fast_reasons(X, _OneRow(values), _OneRow(scores), best, reasons, threads=1)
        context = {s: np.array([scores[s]]) for s in CONTEXT_SCORES}
        sets = None if self.qhat is None else prediction_sets(proba, self.qhat)
        flags = self._profile.flags_row(values)
        return Scored([values["patient_id"]], proba, best, sets, context, {0: flags} if flags else {}, explained)

    def _scored(self, ids, proba, best, scores, columns, n, explained) -> Scored:
        sets = None if self.qhat is None else prediction_sets(proba, self.qhat)
        context = {s: scores[s] for s in CONTEXT_SCORES}
        return Scored(ids, proba, best, sets, context, self._profile.flags(columns, n), explained)

    # ------------------------------------------------------------------ reasons on one row

    def _fast_reasons(self, X, columns, scores, best, k, threads: int | None = None) -> list[list[Any]]:
        """:func:`painml.explain.top_reasons` for rows already encoded: same values, same order, same labels.

        No second pass through pandas: TreeSHAP over the predicted class's
        trees only (:meth:`painml.trees.TreeEnsemble.contributions`), the
        logistic model's exact linear SHAP. A test checks the result equals
        ``top_reasons`` row for row.
        """
        values = self.compiled.contributions(X, best, threads=threads) * self.compiled.temperature_factor
        folding = self._get_folding()
        folded = np.einsum("ij,jk->ik", values, folding.matrix)  # not BLAS: the same sums for one row or many
        n = len(X)
        k = max(0, min(int(k), len(folding.names)))
        if k == 0 or n == 0:
            return [[] for _ in range(n)]
        top, sizes = reasons_.largest(folded, k)
        shown = {}
        for j in np.unique(top).tolist():
            feature = folding.names[j]
            source = scores if feature in scores else columns
            shown[j] = source[feature] if feature in source else np.full(n, np.nan)
        labels: dict[tuple[int, Any], str] = {}
        out = []
        for r, (row_top, row_sizes) in enumerate(zip(top.tolist(), sizes.tolist())):
            cls = self.classes[best[r]]
            row_reasons = []
            for j, size in zip(row_top, row_sizes):
                value = reasons_.plain(shown[j][r])
                key = (j, value)
                label = labels.get(key)
                if label is None:
                    label = labels[key] = reasons_.reason_label(folding.names[j], value)
                direction = reasons_.TOWARDS if size >= 0 else reasons_.AWAY
                row_reasons.append(reasons_.Reason(folding.names[j], label, value, direction, cls, size))
            out.append(row_reasons)
        return out

    def _get_folding(self) -> _Folding:
        if self._folding is None:
            self._folding = _Folding.of(self.compiled)
        return self._folding

    def _one_thread(self) -> AbstractContextManager:
        """One thread in every OpenMP and BLAS pool while a few records go through scikit-learn and LightGBM
        (a model without a compiled form): their default pools make a one-row prediction many times slower."""
        if self._controller is None:
            with self._lock:
                if self._controller is None:
                    from threadpoolctl import ThreadpoolController

                    self._controller = ThreadpoolController()
        return self._controller.limit(limits=1)

    # ------------------------------------------------------------------ output

    def output_columns(self, reasons: int = 0) -> list[str]:
        """Columns of :meth:`predict`'s frame, in order."""
        return [
            "patient_id",
            *(f"p_{c}" for c in self.classes),
            "predicted_class",
            "confidence",
            *(["prediction_set"] if self.qhat is not None else []),
            *CONTEXT_SCORES,
            "flags",
            *(f"reason_{i}" for i in range(1, reasons + 1)),
            "model",
            "model_version",
        ]

    def to_frame(self, scored: Scored, index: pd.Index | None = None, reasons: int = 0) -> pd.DataFrame:
        """The scored rows as a table: sets joined by ``|``, flags by ``; ``, one text column per reason."""
        import pandas as pd

        n = len(scored.best)
        classes = np.asarray(self.classes, dtype=object)
        out: dict[str, Any] = {"patient_id": np.asarray(scored.patient_id, dtype=object)}
        for k, c in enumerate(self.classes):
            out[f"p_{c}"] = scored.proba[:, k]
        out["predicted_class"] = classes[scored.best]
        out["confidence"] = scored.proba[np.arange(n), scored.best]
        if scored.sets is not None:
            out["prediction_set"] = self._set_labels()[scored.sets @ (1 << np.arange(len(self.classes)))]
        for s in CONTEXT_SCORES:
            out[s] = scored.context[s]
        flags = np.full(n, "", dtype=object)
        for r, notes in scored.flags.items():
            flags[r] = FLAG_SEPARATOR.join(notes)
        out["flags"] = flags
        for i in range(reasons):
            out[f"reason_{i + 1}"] = np.array(
                [str(r[i]) if scored.reasons is not None and i < len(r) else "" for r in (scored.reasons or [[]] * n)],
                dtype=object,
            )
        out["model"] = np.full(n, self.name, dtype=object)
        out["model_version"] = np.full(n, self.version or "", dtype=object)
        return pd.DataFrame(out, index=index if index is not None else pd.RangeIndex(n))

    def _set_labels(self) -> np.ndarray:
        """Every possible prediction set as text, indexed by its bitmask over the classes."""
        if getattr(self, "_set_table", None) is None:
            k = len(self.classes)
            self._set_table = np.array(
                [SET_SEPARATOR.join(c for i, c in enumerate(self.classes) if mask >> i & 1) for mask in range(1 << k)],
                dtype=object,
            )
        return self._set_table

    def _rows(self, scored: Scored) -> list[dict[str, Any]]:
        """The scored rows as JSON objects: sets, flags and reasons as lists; NaN as null."""
        proba = scored.proba.tolist()
        rows = []
        for r in range(len(scored.best)):
            best = int(scored.best[r])
            row: dict[str, Any] = {"patient_id": reasons_.plain(scored.patient_id[r])}
            for k, c in enumerate(self.classes):
                row[f"p_{c}"] = proba[r][k]
            row["predicted_class"] = self.classes[best]
            row["confidence"] = proba[r][best]
            if scored.sets is not None:
                row["prediction_set"] = [c for c, inside in zip(self.classes, scored.sets[r].tolist()) if inside]
            for s in CONTEXT_SCORES:
                row[s] = reasons_.plain(scored.context[s][r])
            row["flags"] = scored.flags.get(r, [])
            if scored.reasons is not None:
                row["reasons"] = [reason.as_dict() for reason in scored.reasons[r]]
            row["model"] = self.name
            row["model_version"] = self.version or ""
            rows.append(row)
        return rows

    def describe(self) -> dict[str, Any]:
        """What ``GET /model`` shows: name, version, classes, conformal level, lineage and metrics."""
        meta = self.metadata
        profile = meta.get("training_profile") or {}
        return {
            "name": self.name,
            "version": self.version,
            "uri": self.uri,
            "run_id": self.run_id,
            "family": meta.get("family"),
            "config": meta.get("config"),
            "classes": list(self.classes),
            "conformal_confidence": self.confidence,
            "lineage": meta.get("lineage"),
            "metrics": {
                k: v for k, v in sorted(self.metrics.items()) if isinstance(v, (int, float)) and math.isfinite(v)
            },
            "training_profile": {"sites": profile.get("sites", []), "blocks_seen": profile.get("blocks_seen", [])},
        }


# --------------------------------------------------------------------------- helpers


def _canonical(features: pd.DataFrame) -> bool:
    """Whether ``features`` has every feature column in the schema's types (float64, or object for text)."""
    for name in FEATURE_COLUMNS:
        if name not in features:
            return False
        dtype = features[name].dtype
        if dtype != (object if BY_NAME[name].kind == "category" else np.float64):
            return False
    return True


def _check_reasons(reasons: int) -> int:
    reasons = int(reasons)
    if not 0 <= reasons <= MAX_REASONS:
        raise ValueError(f"reasons must be between 0 and {MAX_REASONS}, got {reasons}")
    return reasons


class _Folding:
    """Encoded column -> the record column or score it came from, as :func:`painml.explain.top_reasons` folds."""

    def __init__(self, names: list[str], matrix: np.ndarray):
        self.names = names
        self.matrix = matrix

    @classmethod
    def of(cls, compiled: fastpath.CompiledModel) -> _Folding:
        names = reasons_.folded_names(compiled.feature_names, compiled.sources)
        return cls(names, reasons_.fold_matrix(compiled.feature_names, compiled.sources, names))


class _Profile:
    """The training profile (bundle metadata) turned into per-row flags."""

    def __init__(self, profile: Mapping[str, Any]):
        self.ranges = [(c, float(lo), float(hi)) for c, (lo, hi) in (profile.get("numeric_ranges") or {}).items()]
        self.categories = [(c, frozenset(v)) for c, v in (profile.get("categories") or {}).items()]
        sites = profile.get("sites") or []
        self.sites = frozenset(sites)
        seen = profile.get("blocks_seen")
        self.unseen_blocks = [] if seen is None else [b for b in OPTIONAL_BLOCKS if b not in seen]

    def flags_row(self, values: Mapping[str, Any]) -> list[str]:
        """:meth:`flags` of one record of scalars (same notes, same order)."""
        out: list[str] = []
        for name, lo, hi in self.ranges:
            x = values.get(name)
            if x is not None and (x < lo or x > hi):  # NaN compares False
                side = "below" if x < lo else "above"
                out.append(f"{name} {_number(x)} is {side} the training range {_number(lo)}-{_number(hi)}")
        for name, seen in self.categories:
            v = values.get(name)
            if isinstance(v, str) and v not in seen:
                out.append(f"{name} {v!r} never occurred in training")
        site = values.get("site")
        if self.sites and isinstance(site, str) and site not in self.sites:
            out.append(f"site {site!r} was not in the training data")
        for block in self.unseen_blocks:
            if any(_recorded(values.get(name)) for name in BLOCKS[block]):
                out.append(f"{_BLOCK_NAMES[block]} recorded, but the training data never had it")
        return out

    def flags(self, columns: Mapping[str, np.ndarray], n: int) -> dict[int, list[str]]:
        """Readable notes of the rows that have any, in a fixed order: ranges, categories, site, blocks."""
        out: dict[int, list[str]] = defaultdict(list)
        for name, lo, hi in self.ranges:
            x = columns.get(name)
            if x is None:
                continue
            with np.errstate(invalid="ignore"):
                outside = (x < lo) | (x > hi)
            for r in np.flatnonzero(outside).tolist():
                side = "below" if x[r] < lo else "above"
                out[r].append(f"{name} {_number(x[r])} is {side} the training range {_number(lo)}-{_number(hi)}")
        for name, seen in self.categories:
            values = columns.get(name)
            if values is not None:
                for r, v in _unseen(values, seen):
                    out[r].append(f"{name} {v!r} never occurred in training")
        site = columns.get("site")
        if self.sites and site is not None:
            for r, v in _unseen(site, self.sites):
                out[r].append(f"site {v!r} was not in the training data")
        for block in self.unseen_blocks:
            recorded = np.zeros(n, dtype=bool)
            for name in BLOCKS[block]:
                values = columns.get(name)
                if values is not None:
                    recorded |= ~np.isnan(values) if values.dtype == np.float64 else _present(values)
            for r in np.flatnonzero(recorded).tolist():
                out[r].append(f"{_BLOCK_NAMES[block]} recorded, but the training data never had it")
        return dict(out)


def _present(values: np.ndarray) -> np.ndarray:
    """Where an object column holds a value (``~pd.isna`` for text columns)."""
    import pandas as pd

    return ~pd.isna(values)


def _recorded(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, float) and value == value)


class _OneRow(Mapping):
    """A record of scalars seen as one-row columns (``row[name][0]``), for code written for column arrays."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any]):
        self._values = values

    def __getitem__(self, name: str) -> tuple[Any]:
        return (self._values[name],)

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def _unseen(values: np.ndarray, seen: frozenset[str]) -> list[tuple[int, str]]:
    """(row, value) for every text value not in ``seen``; missing values are never flagged."""
    if len(values) <= 64:
        return [(r, v) for r, v in enumerate(values.tolist()) if isinstance(v, str) and v not in seen]
    import pandas as pd

    codes, uniques = pd.factorize(values)
    new = [i for i, u in enumerate(uniques) if isinstance(u, str) and u not in seen]
    if not new:
        return []
    rows = np.flatnonzero(np.isin(codes, new))
    return [(int(r), str(uniques[codes[r]])) for r in rows]


def _number(x: float) -> str:
    x = float(x)
    return str(int(x)) if x.is_integer() else f"{x:g}"


def bundle_folder(path: Path) -> Path:
    """The bundle inside ``path``: the folder itself, or the one an MLflow model's MLmodel names."""
    if (path / METADATA_FILE).exists():
        return path
    if not path.exists() and path.parent.name == "artifacts" and (path.parent.parent / "MLmodel").exists():
        path = path.parent.parent  # "<model>/artifacts/bundle", as train.load_predictor guesses it
    mlmodel = _mlmodel(path)
    artifacts = ((mlmodel.get("flavors") or {}).get("python_function") or {}).get("artifacts") or {}
    bundle = (artifacts.get("bundle") or {}).get("path")
    if bundle and (path / bundle / METADATA_FILE).exists():
        return path / bundle
    candidates = sorted(p.parent for p in path.glob("artifacts/*/" + METADATA_FILE))
    if len(candidates) == 1:
        return candidates[0]
    raise ModelNotFound(f"{path}: no painml model bundle found (expected {METADATA_FILE} or an MLflow model)")


def _mlmodel(path: Path) -> dict[str, Any]:
    file = path / "MLmodel"
    if not file.exists():
        return {}
    import yaml

    return yaml.safe_load(file.read_text()) or {}


def _sqlite_path(store: str) -> Path | None:
    if not store.startswith("sqlite:///"):
        return None
    path = Path(store[len("sqlite:///"):].split("?", 1)[0])
    return path if path.is_file() else None


def _sqlite_model_version(store: str, uri: str) -> tuple[str, str, str | None, Path] | None:
    """(name, version, run id, local model folder) read straight from a local SQLite registry, or None.

    Reads the two registry tables MLflow keeps (``registered_model_aliases``,
    ``model_versions``) read-only; anything unexpected (another store, a
    missing alias, an artifact not on this disk, an unknown table layout)
    returns None and MLflow itself resolves the URI, and explains any failure.
    """
    path = _sqlite_path(store)
    if path is None:
        return None
    ref = uri[len("models:/"):]
    if "@" in ref:
        name, _, alias = ref.partition("@")
        version = None
    else:
        name, _, version = ref.partition("/")
        alias = None
        if not version.isdigit():
            return None
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
            if alias is not None:
                rows = db.execute("SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?",
                                  (name, alias)).fetchall()
                if len(rows) != 1:
                    return None
                version = str(rows[0][0])
            rows = db.execute(
                "SELECT storage_location, run_id, status FROM model_versions WHERE name = ? AND version = ?",
                (name, int(version)),
            ).fetchall()
    except (sqlite3.Error, ValueError):
        return None
    if len(rows) != 1:
        return None
    location, run_id, status = rows[0]
    if status != "READY" or not isinstance(location, str) or not location.startswith("file://"):
        return None
    from urllib.parse import unquote, urlparse

    folder = Path(unquote(urlparse(location).path))
    if not (folder / "MLmodel").is_file():
        return None
    return name, version, run_id or None, folder


def _run_metrics(store: str, run_id: str) -> dict[str, float]:
    """Latest value of every metric of a run: straight from a local SQLite store, else through MLflow."""
    path = _sqlite_path(store)
    if path is not None:
        try:
            with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
                rows = db.execute("SELECT key, value FROM latest_metrics WHERE run_uuid = ?", (run_id,)).fetchall()
            return {str(k): float(v) for k, v in rows}
        except sqlite3.Error:
            pass

    tracking.use_store(store)
    return tracking.run_metrics(run_id)


def _registry_version(uri: str) -> tuple[str, str | None]:
    """(name, version) of a ``models:/`` URI; the alias is resolved to its version now."""

    ref = uri[len("models:/") :]
    if "@" in ref:
        name, _, alias = ref.partition("@")
        version = tracking.get_alias_version(name, alias)
        if version is None:
            from mlflow.exceptions import MlflowException

            raise MlflowException(f"registered model {name!r} has no alias {alias!r}")
        return name, version
    name, _, version = ref.partition("/")
    return name, (version or None)
