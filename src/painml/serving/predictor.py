"""The one predictor behind every way of asking: CLI, batch file, HTTP and MLflow's pyfunc.

A :class:`Predictor` loads a model once (:meth:`Predictor.from_uri`: a
registry alias or version, a run, or a local folder) and scores records in
the patient-record schema. For each row it returns:

- ``p_<class>`` calibrated probabilities, ``predicted_class`` and its ``confidence``;
- ``prediction_set``: the split-conformal (LAC) set at the model's configured
  confidence (``metadata.conformal_confidence``), e.g. ``neuropathic|mixed``
  when the model cannot tell the two apart at that level;
- ``dn4``, ``paindetect``, ``neupsig_grade``: the screening scores, for context;
- ``flags``: how the record differs from the training data (a value outside
  the range seen, an unseen site or category, a questionnaire block training
  never had), empty when it does not;
- ``too_little_recorded``: true when the record holds fewer than
  :data:`MIN_FINDINGS` recorded findings (every input column except the
  identifiers, age and sex counts). Below that the probabilities say more
  about the training data's case mix than about the patient, so the
  prediction set is every class and a flag says why;
- on request (``reasons=k``) the ``k`` largest SHAP contributions to the
  predicted class (:func:`painml.explain.shap.top_reasons`);
- ``patient_id`` echoed, and the ``model`` name and ``model_version``.

Every path scores through the same compiled model (:mod:`painml.model.compiled`,
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
import threading
from collections import defaultdict
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from painml.explain import reasons as reasons_
from painml.features import screening
from painml.model.bundle import ModelBundle
from painml.model.compiled.runtime import CompiledModel
from painml.model.conformal import prediction_sets
from painml.model.metadata import TrainingProfile
from painml.record.columns import BLOCKS, FEATURE_COLUMNS, OPTIONAL_BLOCKS
from painml.record.gate import RecordChecker, columns_of
from painml.record.vocabulary import block_title, plain, reason_label
from painml.tracking import registry
from painml.tracking.registry import DEFAULT_MODEL_URI, ModelNotFound, bundle_folder

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DEFAULT_MODEL_URI", "MAX_REASONS", "MIN_FINDINGS", "ModelNotFound", "Predictor", "Scored"]

log = logging.getLogger(__name__)

CONTEXT_SCORES = ("dn4", "paindetect", "neupsig_grade")
MAX_REASONS = 10
SET_SEPARATOR = "|"
FLAG_SEPARATOR = "; "
MIN_FINDINGS = 5
"""Recorded findings (inputs other than identifiers, age and sex) a record needs for a class to mean anything.

A DN4 interview alone has seven, a painDETECT block seven, an examination
fourteen: any assessment that was actually done clears it, an empty or
demographics-only record does not."""
FINDINGS = tuple(name for name in FEATURE_COLUMNS if name not in BLOCKS["demographics"])


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
    thin: np.ndarray | None = None
    """Rows with fewer than ``MIN_FINDINGS`` recorded findings (None: none of them)."""


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
        self.name = name or bundle.metadata.registered_model
        self.version = version
        self.uri = uri
        self.run_id = run_id
        self.folder = folder
        self._store = store
        self._metrics: dict[str, float] | None = None
        thresholds = bundle.metadata.thresholds
        self.qhat = np.asarray(thresholds) if isinstance(thresholds, tuple) else thresholds
        self.confidence = bundle.metadata.conformal_confidence
        self.compiled: CompiledModel | None = bundle.compiled()
        self._checkers = {allow: RecordChecker(self.classes, allow_extra=allow) for allow in (False, True)}
        self._profile = _Profile(bundle.metadata.training_profile)
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

        ``uri`` defaults to the registry's champion; the store is
        ``tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else ``./mlflow.db``,
        exactly as in training. Raises :class:`ModelNotFound` with a readable
        message when there is nothing there.
        """
        found = registry.locate(uri, tracking_uri)
        return cls(
            ModelBundle.load(found.folder),
            found.name,
            found.version,
            uri=found.uri,
            run_id=found.run_id,
            store=found.store,
            folder=found.folder,
        )

    @property
    def metrics(self) -> dict[str, float]:
        """The metrics of the run that produced the model (from the store, read once), else the bundle's."""
        if self._metrics is None:
            self._metrics = dict(self.metadata.metrics)
            if self.run_id and self._store:
                try:
                    self._metrics = registry.run_metrics(self._store, self.run_id)
                except Exception as error:
                    log.warning("metrics of run %s unavailable: %s", self.run_id, error)
        return self._metrics

    def warm_up(self) -> None:
        """Score and explain one empty record, so that loading the tree kernels (and compiling them,
        the first time on a machine: a few seconds) happens now rather than in a first request."""
        self.predict_one({"patient_id": "warm-up"}, reasons=1)

    # ------------------------------------------------------------------ scoring

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities, columns in ``self.classes`` order (``features``: ``Records.features``)."""
        return self.bundle.predict_proba(features)

    def predict(self, source: Any, *, reasons: int = 0, allow_extra: bool = True) -> pd.DataFrame:
        """Validate then score; raises :class:`painml.record.schema.SchemaError` naming every bad cell.

        ``source``: a DataFrame, a file path, one record (mapping) or a list of
        records, or already validated ``Records``. Returns one row per input
        row (see :data:`output_columns`).
        """
        # lazy: one plainly valid patient is scored without pandas or pandera
        from painml.record import schema

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
        columns = columns_of(frame)
        if self.compiled is None:
            proba = self.bundle.sklearn_proba(records.features)
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
            # lazy: one plainly valid patient is scored without pandas or pandera
            from painml.explain.shap import top_reasons

            explained = top_reasons(self.bundle, records.features, frame, k=reasons, class_index=best)
        return self._scored(frame["patient_id"].to_numpy(), proba, best, scores, columns, n, explained)

    def predict_one(self, record: Mapping[str, Any], *, reasons: int = 0, allow_extra: bool = False) -> dict[str, Any]:
        """Score one record (a JSON object) and return one JSON-ready row.

        The fast path: no pandas, one thread. A record that is not plainly
        valid goes through the schema, which raises
        :class:`painml.record.schema.SchemaError` naming every problem.
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
        # lazy: one plainly valid patient is scored without pandas or pandera
        from painml.record import schema

        validated = schema.load_records(list(records), classes=self.classes, allow_extra=allow_extra)
        if len(validated.frame) > 64:
            return self._rows(self.score_records(validated, reasons=reasons))
        with nullcontext() if self.compiled is not None else self._one_thread():
            return self._rows(self.score_records(validated, reasons=reasons, threads=1))

    def _score_one(self, values: dict[str, Any], reasons: int) -> Scored:
        """One record of scalars, checked by :class:`painml.record.gate.RecordChecker`: no pandas on the way."""
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
        recorded = np.array([sum(_recorded(values[name]) for name in FINDINGS)])
        flags_by_row = {0: flags} if flags else {}
        thin = self._too_little(recorded, sets, flags_by_row)
        return Scored([values["patient_id"]], proba, best, sets, context, flags_by_row, explained, thin)

    def _scored(self, ids, proba, best, scores, columns, n, explained) -> Scored:
        sets = None if self.qhat is None else prediction_sets(proba, self.qhat)
        context = {s: scores[s] for s in CONTEXT_SCORES}
        flags = self._profile.flags(columns, n)
        recorded = np.zeros(n, dtype=np.int64)
        for name in FINDINGS:
            values = columns[name]
            recorded += ~np.isnan(values) if values.dtype == np.float64 else _present(values)
        thin = self._too_little(recorded, sets, flags)
        return Scored(ids, proba, best, sets, context, flags, explained, thin)

    def _too_little(self, recorded: np.ndarray, sets: np.ndarray | None, flags: dict[int, list[str]]) -> np.ndarray:
        """Widen the set of rows below ``MIN_FINDINGS`` to every class and flag them (first, as the weightiest)."""
        thin = recorded < MIN_FINDINGS
        for r in np.flatnonzero(thin).tolist():
            k = int(recorded[r])
            what = "prediction set is every class" if sets is not None else "the class is not meaningful"
            note = (
                f"too little recorded: {k} finding{'' if k == 1 else 's'} besides age and sex "
                f"(at least {MIN_FINDINGS} needed); the {what}"
            )
            flags.setdefault(r, []).insert(0, note)
        if sets is not None and thin.any():
            sets[thin] = True
        return thin

    # ------------------------------------------------------------------ reasons on one row

    def _fast_reasons(self, X, columns, scores, best, k, threads: int | None = None) -> list[list[Any]]:
        """:func:`painml.explain.shap.top_reasons` for rows already encoded: same values, same order, same labels.

        No second pass through pandas: TreeSHAP over the predicted class's
        trees only (:meth:`painml.model.compiled.trees.TreeEnsemble.contributions`), the
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
                value = plain(shown[j][r])
                key = (j, value)
                label = labels.get(key)
                if label is None:
                    label = labels[key] = reason_label(folding.names[j], value)
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
                    # lazy: only models without a compiled form need it
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
            "too_little_recorded",
            "flags",
            *(f"reason_{i}" for i in range(1, reasons + 1)),
            "model",
            "model_version",
        ]

    def to_frame(self, scored: Scored, index: pd.Index | None = None, reasons: int = 0) -> pd.DataFrame:
        """The scored rows as a table: sets joined by ``|``, flags by ``; ``, one text column per reason."""
        # lazy: one plainly valid patient is scored without pandas or pandera
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
        out["too_little_recorded"] = np.zeros(n, dtype=bool) if scored.thin is None else scored.thin.astype(bool)
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

    def json_rows(self, scored: Scored) -> list[dict[str, Any]]:
        """Rows already scored as :meth:`predict_many` answers them (MLflow's pyfunc shapes its frame from these)."""
        return self._rows(scored)

    def _rows(self, scored: Scored) -> list[dict[str, Any]]:
        """The scored rows as JSON objects: sets, flags and reasons as lists; NaN as null."""
        proba = scored.proba.tolist()
        rows = []
        for r in range(len(scored.best)):
            best = int(scored.best[r])
            row: dict[str, Any] = {"patient_id": plain(scored.patient_id[r])}
            for k, c in enumerate(self.classes):
                row[f"p_{c}"] = proba[r][k]
            row["predicted_class"] = self.classes[best]
            row["confidence"] = proba[r][best]
            if scored.sets is not None:
                row["prediction_set"] = [c for c, inside in zip(self.classes, scored.sets[r].tolist()) if inside]
            for s in CONTEXT_SCORES:
                row[s] = plain(scored.context[s][r])
            row["too_little_recorded"] = bool(scored.thin is not None and scored.thin[r])
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
        profile = meta.training_profile
        return {
            "name": self.name,
            "version": self.version,
            "uri": self.uri,
            "run_id": self.run_id,
            "family": meta.family,
            "config": meta.config,
            "classes": list(self.classes),
            "conformal_confidence": self.confidence,
            "lineage": dict(meta.lineage),
            "metrics": {
                k: v for k, v in sorted(self.metrics.items()) if isinstance(v, (int, float)) and math.isfinite(v)
            },
            "training_profile": {"sites": list(profile.sites), "blocks_seen": list(profile.blocks_seen or ())},
        }


# --------------------------------------------------------------------------- helpers


def _check_reasons(reasons: int) -> int:
    reasons = int(reasons)
    if not 0 <= reasons <= MAX_REASONS:
        raise ValueError(f"reasons must be between 0 and {MAX_REASONS}, got {reasons}")
    return reasons


class _Folding:
    """Encoded column -> the record column or score it came from, as :func:`painml.explain.shap.top_reasons` folds."""

    def __init__(self, names: list[str], matrix: np.ndarray):
        self.names = names
        self.matrix = matrix

    @classmethod
    def of(cls, compiled: CompiledModel) -> _Folding:
        names = reasons_.folded_names(compiled.feature_names, compiled.sources)
        return cls(names, reasons_.fold_matrix(compiled.feature_names, compiled.sources, names))


class _Profile:
    """The training profile (bundle metadata) turned into per-row flags."""

    def __init__(self, profile: TrainingProfile):
        self.ranges = [(c, float(lo), float(hi)) for c, (lo, hi) in profile.numeric_ranges.items()]
        self.categories = [(c, frozenset(v)) for c, v in profile.categories.items()]
        self.sites = frozenset(profile.sites)
        seen = profile.blocks_seen
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
                out.append(f"{block_title(block).name} recorded, but the training data never had it")
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
                out[r].append(f"{block_title(block).name} recorded, but the training data never had it")
        return dict(out)


def _present(values: np.ndarray) -> np.ndarray:
    """Where an object column holds a value (``~pd.isna`` for text columns)."""
    # lazy: one plainly valid patient is scored without pandas or pandera
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
    # lazy: one plainly valid patient is scored without pandas or pandera
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
