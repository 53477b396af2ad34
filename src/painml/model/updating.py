"""Updating a model trained elsewhere with a site's few labelled patients, smallest change first.

The ladder (Steyerberg, Clinical Prediction Models ch. 20; Van Calster et al. 2017 for multinomial
models): class intercepts, a temperature with intercepts, a full multinomial recalibration of the
source logits, a revision that starts from the recalibrated source (LightGBM trees continued from its
margins; a ridge-penalised correction of the logistic coefficients with the source logits as offset),
a refit on the site alone, and a refit on the site plus weighted source-like rows.

Every step's result is an ordinary fitted features + model pipeline, so it is saved, compiled,
served and explained like any trained model, exactly: a recalibration ``A z + b`` of the raw scores
``z`` is folded into the model itself. For the logistic family that is a new coefficient matrix
``A W`` and intercept ``A w + b``; for LightGBM every tree of class j is copied into class k with its
leaf values scaled by ``A[k, j]`` (a diagonal ``A`` scales in place, a full one multiplies the trees by
the number of classes) and ``b`` is added to the leaves of each class's first tree. Margins are sums
of trees, so TreeSHAP of the result is the same linear map of the source's TreeSHAP: the reasons
stay additive, the base values absorb the intercepts.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

import lightgbm
import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import log_softmax, softmax
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelEncoder

from painml.config import GbmConfig, LogisticConfig, TrainConfig
from painml.features.encoding import build_features
from painml.model import calibration
from painml.model.families import for_small_data, make_classifier
from painml.model.fit import fit_pipeline
from painml.record.labels import resolve


class LabelMismatch(ValueError):
    """The source model's classes cannot be brought onto the site's."""


# --------------------------------------------------------------------------- the source model


@dataclass
class Source:
    """A fitted source model seen through its calibrated logits, mapped onto the site's classes.

    ``classes`` are the site's classes sorted (the order scikit-learn and LightGBM give a refitted
    model); ``P`` (site classes x source model classes) says which source class feeds which site class.
    """

    pipeline: Pipeline
    beta: float
    model_classes: list[str]
    classes: list[str]
    P: np.ndarray

    @classmethod
    def of(cls, estimator: Any, site_classes: tuple[str, ...], mapping: dict[str, str] | None = None) -> Source:
        beta = calibration.temperature_factor(estimator)
        if beta is None:
            raise LabelMismatch(
                "the source model is calibrated by a method other than temperature: it cannot be updated"
            )
        pipeline = calibration.uncalibrated(estimator)
        model_classes = [str(c) for c in pipeline.classes_]
        if len(model_classes) < 3 or len(site_classes) < 3:
            raise LabelMismatch(
                f"updating needs at least three classes on both sides; the source has {', '.join(model_classes)}, "
                f"the site {', '.join(site_classes)}"
            )
        return cls(pipeline, beta, model_classes, sorted(site_classes), class_map(model_classes, site_classes, mapping))

    @property
    def one_to_one(self) -> bool:
        """Every site class is exactly one source class (renamed or not): intercepts and temperature apply."""
        return bool((self.P.sum(axis=0) == 1).all() and (self.P.sum(axis=1) == 1).all())

    def features(self, X: pd.DataFrame) -> Any:
        return self.pipeline.named_steps["features"].transform(X)

    def logits(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated source logits, source model class order."""
        return self.beta * calibration.raw_scores(self.pipeline, X)

    def proba(self, X: pd.DataFrame) -> np.ndarray:
        """The source as it is, on the site's classes (merged classes summed), sorted site class order."""
        return softmax(self.logits(X), axis=1) @ self.P.T


def class_map(source: list[str], site: tuple[str, ...], mapping: dict[str, str] | None) -> np.ndarray:
    """(sorted site classes x source classes) 0/1 matrix; :class:`LabelMismatch` naming every class that does not fit.

    A source class reaches the site class the label map sends it to (as the site's own labels are mapped),
    else the site class of the same name."""
    mapping = {k.strip().lower(): v for k, v in (mapping or {}).items()}
    known = {c.lower(): c for c in site}
    targets = {s: known.get(resolve(s.lower(), mapping).lower()) for s in source}
    orphans = [s for s, t in targets.items() if t is None]
    unfed = [c for c in site if c not in targets.values()]
    problems = []
    if orphans:
        problems.append(
            f"source class(es) {', '.join(orphans)} are not among the site's classes ({', '.join(site)}): "
            "map them to a site class in the config's labels.map"
        )
    if unfed:
        problems.append(
            f"site class(es) {', '.join(unfed)} are not predicted by the source model (classes "
            f"{', '.join(source)}): map or drop them in the config's labels"
        )
    if problems:
        raise LabelMismatch("; ".join(problems))
    ordered = sorted(site)
    P = np.zeros((len(ordered), len(source)))
    for j, s in enumerate(source):
        P[ordered.index(targets[s]), j] = 1.0
    return P


# --------------------------------------------------------------------------- recalibration of logits


def _nll(logits: np.ndarray, Y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean multinomial log-loss of ``logits`` for one-hot ``Y`` and its gradient in the logits."""
    logp = log_softmax(logits, axis=1)
    n = len(Y)
    return float(-(Y * logp).sum() / n), (np.exp(logp) - Y) / n


def fit_affine(L: np.ndarray, y_index: np.ndarray, P: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """``(A, b)`` minimising the log-loss of ``softmax(L A' + b)``; ``L`` are source logits, ``y_index`` site classes.

    ``intercepts``: A = P, b free (a prior shift). ``temperature``: A = t P, t and b free.
    ``recalibration``: A and b free, with a weak ridge toward P (identifiable, no other pull).
    """
    k, s = P.shape
    Y = np.eye(k)[y_index]
    ridge = 1e-3

    def unpack(theta):
        if kind == "intercepts":
            return P, theta
        if kind == "temperature":
            return theta[0] * P, theta[1:]
        return theta[: k * s].reshape(k, s), theta[k * s :]

    def objective(theta):
        A, b = unpack(theta)
        loss, G = _nll(L @ A.T + b, Y)
        gb = G.sum(axis=0) + 2 * ridge * b
        loss += ridge * float(b @ b)
        if kind == "intercepts":
            return loss, gb
        gA = G.T @ L
        if kind == "temperature":
            return loss, np.concatenate([[float((gA * P).sum())], gb])
        loss += ridge * float(((A - P) ** 2).sum())
        return loss, np.concatenate([(gA + 2 * ridge * (A - P)).ravel(), gb])

    start = {
        "intercepts": np.zeros(k),
        "temperature": np.concatenate([[1.0], np.zeros(k)]),
        "recalibration": np.concatenate([P.ravel(), np.zeros(k)]),
    }[kind]
    found = minimize(objective, start, jac=True, method="L-BFGS-B")
    A, b = unpack(found.x)
    return np.array(A, dtype=np.float64), np.array(b - b.mean(), dtype=np.float64)


# --------------------------------------------------------------------------- folding into the model

_TREE = re.compile(r"^Tree=\d+\n", re.M)


def affine_booster(booster: lightgbm.Booster, A: np.ndarray, b: np.ndarray) -> lightgbm.Booster:
    """A booster whose class-k margin is ``sum_j A[k, j] * margin_j + b[k]`` of ``booster``'s margins."""
    text = booster.model_to_string()
    head, rest = text.split("\nTree=0\n", 1)
    body, tail = rest.split("\nend of trees", 1)
    trees = [t.strip("\n") for t in _TREE.split("Tree=0\n" + body) if t.strip()]
    k_source = int(re.search(r"^num_tree_per_iteration=(\d+)$", head, re.M).group(1))
    k_site = A.shape[0]
    if len(trees) % k_source:
        raise ValueError("a booster whose tree count is not a multiple of its classes")
    diagonal = k_site == k_source and np.count_nonzero(A - np.diag(np.diag(A))) == 0
    out: list[str] = []
    for m in range(len(trees) // k_source):
        iteration = trees[m * k_source : (m + 1) * k_source]
        if diagonal:
            blocks = [[_edited(iteration[j], A[j, j], b[j] if m == 0 else 0.0) for j in range(k_source)]]
        else:
            blocks = [
                [_edited(iteration[j], A[k, j], b[k] if m == 0 and j == 0 else 0.0) for k in range(k_site)]
                for j in range(k_source)
            ]
        for block in blocks:
            out.extend(block)
    head = re.sub(r"^tree_sizes=.*\n", "", head, flags=re.M)
    head = re.sub(r"^num_class=\d+$", f"num_class={k_site}", head, flags=re.M)
    head = re.sub(r"^num_tree_per_iteration=\d+$", f"num_tree_per_iteration={k_site}", head, flags=re.M)
    head = re.sub(r"num_class:\d+", f"num_class:{k_site}", head)
    tail = re.sub(r"\[num_class: \d+\]", f"[num_class: {k_site}]", tail)
    trees_text = "".join(f"Tree={i}\n{t}\n\n" for i, t in enumerate(out))
    return lightgbm.Booster(model_str=f"{head}\n{trees_text}\nend of trees{tail}")


def _edited(tree: str, scale: float, shift: float) -> str:
    """One tree's text with every leaf (and internal) value times ``scale`` plus ``shift``."""

    def line(match: re.Match) -> str:
        values = [float(float(v) * scale + shift) for v in match.group(2).split()]
        return match.group(1) + " ".join(repr(v) for v in values)

    scale, shift = float(scale), float(shift)
    return re.sub(r"^((?:leaf|internal)_value=)(.*)$", line, tree, flags=re.M)


def fold_affine(source: Source, A: np.ndarray, b: np.ndarray) -> Pipeline:
    """The source pipeline whose model gives ``softmax(A L + b)`` for source logits L, classes sorted: exact."""
    A_raw = A * source.beta  # L = beta * z
    model = source.pipeline.named_steps["model"]
    booster = getattr(model, "booster_", None)
    new = copy.deepcopy(model)
    if booster is not None:
        new._Booster = affine_booster(booster, A_raw, b)
        new._n_classes = len(source.classes)
    else:
        new.coef_ = A_raw @ np.asarray(model.coef_, dtype=np.float64)
        new.intercept_ = A_raw @ np.asarray(model.intercept_, dtype=np.float64) + b
    _set_classes(new, source.classes)
    return Pipeline([("features", source.pipeline.named_steps["features"]), ("model", new)])


def _set_classes(model: Any, classes: list[str]) -> None:
    """Name the classes of a copied model (a renamed label set keeps the model's positions)."""
    labels = np.asarray(classes, dtype=object)
    if hasattr(model, "_le"):
        model._le = LabelEncoder().fit(labels)
        model._classes = model._le.classes_
    else:
        model.classes_ = labels


# --------------------------------------------------------------------------- the rungs


@dataclass
class Fitted:
    """One rung fitted on some site rows: probabilities (sorted site classes) and its exact pipeline."""

    pipeline: Pipeline | None
    detail: dict[str, Any] = field(default_factory=dict)
    scorer: Any = None
    """Probabilities when there is no single exact pipeline (the source as it is, classes merged)."""

    def proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.scorer(X) if self.pipeline is None else self.pipeline.predict_proba(X)


@dataclass
class Rung:
    """One step of the ladder; ``level`` orders them simplest first, ``parameters`` counts what it estimates."""

    key: str
    level: int
    description: str

    def fit(self, X: pd.DataFrame, y_index: np.ndarray) -> Fitted:
        raise NotImplementedError

    def parameters(self, n_features: int) -> int:
        raise NotImplementedError


@dataclass
class AsIs(Rung):
    """The source unchanged (renamed classes keep its positions; merged classes are scored, not registrable)."""

    source: Source = None

    def fit(self, X, y_index):
        if not self.source.one_to_one:  # merged classes sum probabilities: no single model gives that
            return Fitted(None, {"note": "classes merged: not registrable as one model"}, self.source.proba)
        return Fitted(fold_affine(self.source, self.source.P, np.zeros(len(self.source.P))))

    def parameters(self, n_features):
        return 0


@dataclass
class Affine(Rung):
    """A recalibration of the source logits (:func:`fit_affine`), folded into the model."""

    source: Source = None
    kind: str = "intercepts"

    def fit(self, X, y_index):
        A, b = fit_affine(self.source.logits(X), y_index, self.source.P, self.kind)
        return Fitted(fold_affine(self.source, A, b), {"A": A.tolist(), "b": b.tolist()})

    def parameters(self, n_features):
        k, s = self.source.P.shape
        return {"intercepts": k - 1, "temperature": k, "recalibration": (k - 1) * (s + 1)}[self.kind]


REVISION_TREES = 50
REVISION_FOLDS = 3
REVISION_PENALTIES = (1.0, 10.0, 100.0, 1000.0)


@dataclass
class Revision(Rung):
    """Trees: a few shallow, strongly regularised trees continued from the recalibrated source margins, their
    number chosen by inner cross-validation (zero when none helps). Logistic: a ridge correction of every
    coefficient with the recalibrated source logits as offset, the penalty chosen by inner cross-validation."""

    source: Source = None
    seed: int = 0

    def _base(self, X, y_index):
        kind = "temperature" if self.source.one_to_one else "recalibration"
        A, b = fit_affine(self.source.logits(X), y_index, self.source.P, kind)
        return fold_affine(self.source, A, b)

    def fit(self, X, y_index):
        base = self._base(X, y_index)
        model = base.named_steps["model"]
        Xt = base.named_steps["features"].transform(X)
        y = np.asarray(self.source.classes, dtype=object)[y_index]
        if getattr(model, "booster_", None) is not None:
            rounds = self._rounds(Xt, y_index, model)
            if rounds == 0:
                return Fitted(base, {"trees_added": 0})
            added = make_classifier(self._tree_config(rounds), "none", self.seed, len(self.source.classes))
            added.fit(Xt, y, init_model=model.booster_)
            return Fitted(
                Pipeline([("features", base.named_steps["features"]), ("model", added)]), {"trees_added": rounds}
            )
        offset = model.decision_function(Xt)
        penalty = self._penalty(np.asarray(Xt, dtype=np.float64), offset, y_index)
        D, d = _ridge_correction(np.asarray(Xt, dtype=np.float64), offset, y_index, penalty)
        revised = copy.deepcopy(model)
        revised.coef_ = model.coef_ + D
        revised.intercept_ = model.intercept_ + d
        return Fitted(Pipeline([("features", base.named_steps["features"]), ("model", revised)]), {"penalty": penalty})

    def _tree_config(self, rounds: int) -> GbmConfig:
        return GbmConfig(
            family="gbm", n_estimators=rounds, learning_rate=0.05, num_leaves=4, min_child_samples=20,
            reg_lambda=10.0, colsample=0.8, early_stopping_rounds=None,
        )  # fmt: skip

    def _rounds(self, Xt, y_index, model) -> int:
        """Trees worth adding: the mean best round of an inner cross-validation (0 when the first already hurts)."""
        margins = model.booster_.predict(Xt, raw_score=True)
        params = {
            "objective": "multiclass", "num_class": len(self.source.classes), "learning_rate": 0.05,
            "num_leaves": 4, "min_child_samples": 20, "reg_lambda": 10.0, "feature_fraction": 0.8,
            "verbose": -1, "deterministic": True, "force_row_wise": True, "seed": self.seed,
        }  # fmt: skip
        folds = StratifiedKFold(REVISION_FOLDS, shuffle=True, random_state=self.seed)
        best = []
        for a, v in folds.split(np.zeros(len(y_index)), y_index):
            train = lightgbm.Dataset(Xt.iloc[a], y_index[a], init_score=margins[a], free_raw_data=False)
            valid = lightgbm.Dataset(Xt.iloc[v], y_index[v], init_score=margins[v], reference=train)
            start = _nll(margins[v], np.eye(len(self.source.classes))[y_index[v]])[0]
            record: dict = {}
            lightgbm.train(
                params, train, REVISION_TREES, valid_sets=[valid],
                callbacks=[lightgbm.record_evaluation(record)],
            )  # fmt: skip
            curve = np.array(record["valid_0"]["multi_logloss"])
            best.append(0 if curve.min() >= start else int(curve.argmin()) + 1)
        return int(round(np.mean(best)))

    def _penalty(self, Xt, offset, y_index) -> float:
        folds = StratifiedKFold(REVISION_FOLDS, shuffle=True, random_state=self.seed)
        losses = np.zeros(len(REVISION_PENALTIES))
        Y = np.eye(offset.shape[1])[y_index]
        for a, v in folds.split(Xt, y_index):
            for i, lam in enumerate(REVISION_PENALTIES):
                D, d = _ridge_correction(Xt[a], offset[a], y_index[a], lam)
                losses[i] += _nll(offset[v] + Xt[v] @ D.T + d, Y[v])[0]
        return float(REVISION_PENALTIES[int(losses.argmin())])

    def parameters(self, n_features):
        k = len(self.source.classes)
        return (k - 1) * (n_features + 1)


def _ridge_correction(X: np.ndarray, offset: np.ndarray, y_index: np.ndarray, penalty: float):
    """``(D, d)`` minimising n * log-loss(offset + X D' + d) + penalty/2 * |D|^2 (intercepts unpenalised)."""
    n, p = X.shape
    k = offset.shape[1]
    Y = np.eye(k)[y_index]

    def objective(theta):
        D, d = theta[: k * p].reshape(k, p), theta[k * p :]
        loss, G = _nll(offset + X @ D.T + d, Y)
        loss = loss * n + 0.5 * penalty * float((D**2).sum())
        G = G * n
        return loss, np.concatenate([(G.T @ X + penalty * D).ravel(), G.sum(axis=0)])

    found = minimize(objective, np.zeros(k * p + k), jac=True, method="L-BFGS-B")
    return found.x[: k * p].reshape(k, p), found.x[k * p :] - found.x[k * p :].mean()


@dataclass
class SiteOnly(Rung):
    """The source's family refitted on the site alone with the small-data defaults (no source information)."""

    model_cfg: Any = None
    cfg: TrainConfig = None

    def fit(self, X, y_index):
        y = np.asarray(sorted(self.cfg.classes), dtype=object)[y_index]
        pipeline, _ = fit_pipeline(for_small_data(self.model_cfg), self.cfg, X, y, np.arange(len(y)))
        return Fitted(pipeline)

    def parameters(self, n_features):
        return (len(self.cfg.classes) - 1) * (n_features + 1)


POOLED_GBM = dict(
    n_estimators=150, learning_rate=0.05, num_leaves=7, min_child_samples=20, reg_lambda=5.0, colsample=0.8,
    early_stopping_rounds=None,
)  # fmt: skip
"""The boosted family on site + source-like rows: a fixed, modest size (no slice to stop early on)."""


@dataclass
class Pooled(Rung):
    """Site rows plus source-like rows (``X_source``, ``y_source``) whose total weight is ``weight`` times
    the site's: a power prior (Ibrahim & Chen 2000) with the weight chosen by the ladder's resampling."""

    model_cfg: Any = None
    cfg: TrainConfig = None
    X_source: pd.DataFrame = None
    y_source: np.ndarray = None
    weight: float = 1.0

    def fit(self, X, y_index):
        classes = np.asarray(sorted(self.cfg.classes), dtype=object)
        Xc = pd.concat([X, self.X_source], ignore_index=True)
        yc = np.concatenate([classes[y_index], self.y_source])
        w = np.concatenate([np.ones(len(X)), np.full(len(self.X_source), self.weight * len(X) / len(self.X_source))])
        model_cfg = self.model_cfg
        if isinstance(model_cfg, GbmConfig):
            model_cfg = model_cfg.model_copy(update=POOLED_GBM)
        elif isinstance(model_cfg, LogisticConfig) and model_cfg.C == "auto":
            model_cfg = model_cfg.model_copy(update={"C": 1.0})
        features = build_features(model_cfg.family, self.cfg.features.groups, self.cfg.features.missing_indicators)
        classifier = make_classifier(model_cfg, self.cfg.class_weight, self.cfg.seed, len(classes))
        pipeline = Pipeline([("features", features), ("model", classifier)])
        pipeline.fit(Xc, yc, model__sample_weight=w)
        return Fitted(pipeline, {"weight": self.weight})

    def parameters(self, n_features):
        return (len(self.cfg.classes) - 1) * (n_features + 1)


# --------------------------------------------------------------------------- the ladder


@dataclass
class LadderResult:
    """Every rung's resampled log-loss (``table``), the one chosen and why, its refit on all site rows, and the
    out-of-fold probabilities of every rung (repeats, rows, sorted site classes)."""

    table: pd.DataFrame
    chosen: str
    reason: str
    fitted: Fitted
    oof: dict[str, np.ndarray]


def resample_rung(
    rung: Rung, X: pd.DataFrame, y_index: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]], repeats: int, k: int
) -> np.ndarray:
    """Out-of-fold probabilities (repeats, rows, classes) of ``rung`` refitted in every fold."""
    n = len(y_index)
    out = np.full((repeats, n, k), np.nan)
    per = len(splits) // repeats
    for i, (train, test) in enumerate(splits):
        fitted = rung.fit(X.iloc[train].reset_index(drop=True), y_index[train])
        out[i // per, test] = fitted.proba(X.iloc[test].reset_index(drop=True))
    return out


def splits_for(y_index: np.ndarray, folds: int, repeats: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Repeated stratified folds (fewer folds when the smallest class has fewer rows than ``folds``)."""
    folds = max(2, min(folds, int(np.bincount(y_index).min())))
    out = []
    for r in range(repeats):
        cv = StratifiedKFold(folds, shuffle=True, random_state=seed + r)
        out.extend(cv.split(np.zeros(len(y_index)), y_index))
    return out


def row_log_loss(proba: np.ndarray, y_index: np.ndarray) -> np.ndarray:
    """Each row's log-loss, averaged over the repeats of ``proba`` (repeats, rows, classes)."""
    p = np.clip(proba[:, np.arange(len(y_index)), y_index], 1e-15, 1.0)
    return -np.log(p).mean(axis=0)


def choose(table: pd.DataFrame, losses: dict[str, np.ndarray]) -> tuple[str, str]:
    """The simplest rung whose resampled log-loss is within one standard error (of the paired per-patient
    difference) of the best rung's; the reason in words."""
    scored = table.dropna(subset=["log_loss"]).sort_values(["level", "log_loss"], kind="stable")
    best = scored.loc[scored["log_loss"].idxmin(), "rung"]
    for row in scored.itertuples():
        diff = losses[row.rung] - losses[best]
        se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if row.rung != best else 0.0
        if float(diff.mean()) <= se:
            if row.rung == best:
                why = (
                    f"{row.rung} has the lowest resampled log-loss ({row.log_loss:.4f}) and no simpler step is "
                    "within one standard error of it"
                )
            else:
                why = (
                    f"{row.rung} ({row.log_loss:.4f}) is within one standard error of the best step, {best} "
                    f"({scored.set_index('rung').loc[best, 'log_loss']:.4f}; paired difference {diff.mean():+.4f}, "
                    f"SE {se:.4f}), and is simpler"
                )
            return row.rung, why
    return best, f"{best} has the lowest resampled log-loss"


def run_ladder(
    rungs: list[Rung],
    X: pd.DataFrame,
    y_index: np.ndarray,
    *,
    n_features: int,
    folds: int = 5,
    repeats: int = 2,
    seed: int = 0,
    progress: Any = None,
) -> LadderResult:
    """Score every rung by repeated cross-validation on the site rows, choose one (:func:`choose`), refit it on all
    rows. A rung that cannot be fitted on these rows (too few of a class, say) is reported with its error."""
    k = int(y_index.max()) + 1
    splits = splits_for(y_index, folds, repeats, seed)
    rows, oof, losses = [], {}, {}
    for i, rung in enumerate(rungs):
        row = {
            "rung": rung.key,
            "level": rung.level,
            "step": rung.description,
            "parameters": rung.parameters(n_features),
        }
        try:
            proba = resample_rung(rung, X, y_index, splits, repeats, k)
        except (ValueError, np.linalg.LinAlgError) as error:
            rows.append({**row, "log_loss": np.nan, "log_loss_se": np.nan, "auroc": np.nan, "note": str(error)})
            continue
        oof[rung.key] = proba
        losses[rung.key] = row_log_loss(proba, y_index)
        aurocs = [
            roc_auc_score(y_index == c, proba[0][:, c]) for c in range(k) if 0 < (y_index == c).sum() < len(y_index)
        ]
        rows.append(
            {
                **row,
                "log_loss": float(losses[rung.key].mean()),
                "log_loss_se": float(losses[rung.key].std(ddof=1) / np.sqrt(len(y_index))),
                "auroc": float(np.nanmean(aurocs)),
                "note": "",
            }
        )
        if progress is not None:
            progress(i + 1, len(rungs))
    table = pd.DataFrame(rows)
    registrable = {r.key for r in rungs if not (isinstance(r, AsIs) and not r.source.one_to_one)}
    chosen, why = choose(table[table["rung"].isin(registrable)], losses)
    table["chosen"] = table["rung"] == chosen
    rung = next(r for r in rungs if r.key == chosen)
    return LadderResult(table, chosen, why, rung.fit(X, y_index), oof)
