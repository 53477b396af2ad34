"""Hyper-parameter search with Optuna over the ranges the config gives (``search.space``).

A trial is scored by stratified k-fold cross-validation of the classifier on
the training rows (features already fitted), in log-loss; the boosted model
stops early on each held-out fold. After every fold the running mean is
reported, and the median rule prunes a trial already worse than the median of
earlier trials at that fold. Proposals come from the TPE sampler seeded from
the config's seed; the first trial is the config's own setting.

Trials run in ``search.workers`` processes sharing one study (a temporary
journal file unless ``search.storage`` names a shared one), and machines
pointed at the same storage join the same study. With one worker and no
shared storage the search is a pure function of the config and the data.
Inside a worker process (a resampling fold) the search runs in memory in that
process: the folds are already parallel.
"""

from __future__ import annotations

import hashlib
import math
import multiprocessing
import socket
import tempfile
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import optuna
import pandas as pd
from joblib import Parallel, delayed
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from painml.config import GbmConfig, ParamRange, TrainConfig
from painml.model.families import make_classifier

_FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


@dataclass(frozen=True)
class Trial:
    """One trial of a search, as logged to its MLflow child run."""

    number: int
    state: str
    """complete, pruned or fail."""
    params: dict[str, Any]
    value: float | None
    """Mean cross-validated log-loss over the folds (None unless complete)."""
    running: tuple[float, ...]
    """Mean log-loss after each fold: what the pruner judged."""
    seconds: float | None


@dataclass(frozen=True)
class SearchResult:
    """The chosen model config and the trials this search ran (a shared study may hold others too)."""

    family: str
    study: str
    best: Any
    best_value: float | None
    trials: tuple[Trial, ...]


def probe(model_cfg, cfg: TrainConfig, Xt: pd.DataFrame, y: np.ndarray, fit: np.ndarray, val: np.ndarray):
    """Fit on ``fit`` rows and score on ``val`` rows: (validation log-loss, trees used or None)."""
    model = make_classifier(model_cfg, cfg.class_weight, cfg.seed, len(cfg.classes))
    if isinstance(model_cfg, GbmConfig) and model_cfg.early_stopping_rounds:
        with warnings.catch_warnings():
            # eval_X/eval_y, the replacement, does not encode string labels in LightGBM 4.7
            warnings.filterwarnings("ignore", message=".*'eval_set' is deprecated")
            model.fit(
                Xt.iloc[fit],
                y[fit],
                eval_set=[(Xt.iloc[val], y[val])],
                callbacks=[lightgbm.early_stopping(model_cfg.early_stopping_rounds, verbose=False)],
            )
        trees = model.best_iteration_ or model_cfg.n_estimators
    else:
        model.fit(Xt.iloc[fit], y[fit])
        trees = None
    return log_loss(y[val], model.predict_proba(Xt.iloc[val]), labels=model.classes_), trees


def searchable(model_cfg, cfg: TrainConfig) -> bool:
    """Whether this family is searched: search enabled, a space for the family, and no inner-CV penalty."""
    return cfg.search.enabled and model_cfg.family in cfg.search.space and getattr(model_cfg, "C", None) != "auto"


def study_name(model_cfg, cfg: TrainConfig) -> str:
    """One study per family, named so that machines running the same config meet in a shared storage."""
    return f"{cfg.search.study or cfg.name}.{model_cfg.family}"


def search_hyperparameters(model_cfg, cfg: TrainConfig, Xt: pd.DataFrame, y: np.ndarray) -> SearchResult:
    """Search the family's space on these rows; the best trial's settings, or the config's if none finished."""
    search = cfg.search
    name = study_name(model_cfg, cfg)
    token = uuid.uuid4().hex
    deadline = time.time() + search.time_budget_s
    folds = tuple(StratifiedKFold(search.folds, shuffle=True, random_state=cfg.seed).split(np.zeros(len(y)), y))
    nested = multiprocessing.parent_process() is not None
    workers = 1 if nested else search.workers
    storage = None if nested else search.storage
    args = (model_cfg, cfg, Xt, y, folds, deadline, token)
    if storage is None and workers == 1:
        study = _study(name, None, _worker_seed(cfg, 0, shared=False))
        _enqueue_config(study, model_cfg, cfg)
        _optimize(study, *args)
        return _result(study, model_cfg, token)
    with tempfile.TemporaryDirectory(prefix="painml-search-") as tmp:
        spec = storage or str(Path(tmp) / "study.journal")  # only hyper-parameters and losses, no patient data
        _enqueue_config(_study(name, spec, None), model_cfg, cfg)
        Parallel(n_jobs=workers, max_nbytes=None)(
            delayed(_worker)(spec, name, i, storage is not None, *args) for i in range(workers)
        )
        return _result(optuna.load_study(study_name=name, storage=_storage(spec)), model_cfg, token)


def _result(study: optuna.Study, model_cfg, token: str) -> SearchResult:
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = min(complete, key=lambda t: (t.value, t.number)) if complete else None
    ours = tuple(_record(t) for t in trials if t.user_attrs.get("search") == token)
    chosen = _candidate(model_cfg, best.params) if best else model_cfg
    return SearchResult(model_cfg.family, study.study_name, chosen, best.value if best else None, ours)


def _record(t: optuna.trial.FrozenTrial) -> Trial:
    running = tuple(float(v) for _, v in sorted(t.intermediate_values.items()))
    seconds = t.duration.total_seconds() if t.duration is not None else None
    value = t.value if t.state == optuna.trial.TrialState.COMPLETE else None  # a pruned trial keeps its last report
    return Trial(t.number, t.state.name.lower(), dict(t.params), value, running, seconds)


def _storage(spec: str | None) -> optuna.storages.BaseStorage | None:
    """A database URL, or the path of a journal file (safe for several processes and machines)."""
    if spec is None:
        return None
    if "://" in spec:
        return optuna.storages.RDBStorage(spec)
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(spec))


def _study(name: str, spec: str | None, seed: int | None) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(
        study_name=name,
        storage=_storage(spec),
        load_if_exists=True,
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=5),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3),
    )


def _worker_seed(cfg: TrainConfig, worker: int, shared: bool) -> int:
    """The config's seed for the first local worker; other workers and machines draw other proposals."""
    if not shared:
        return cfg.seed + worker
    host = int.from_bytes(hashlib.sha256(socket.gethostname().encode()).digest()[:4], "little")
    return int(np.random.SeedSequence([cfg.seed, worker, host]).generate_state(1)[0])


def _worker(spec: str, name: str, worker: int, shared: bool, model_cfg, cfg, *args) -> None:
    with threadpool_limits(limits=1, user_api="blas"):
        study = _study(name, spec, _worker_seed(cfg, worker, shared))
        _optimize(study, model_cfg, cfg, *args)


def _enqueue_config(study: optuna.Study, model_cfg, cfg: TrainConfig) -> None:
    """Start a new study from the config's own setting, for the part of it inside the space."""
    if study.get_trials(deepcopy=False):
        return
    space = cfg.search.space[model_cfg.family]
    current = {k: getattr(model_cfg, k) for k, r in space.items() if _inside(getattr(model_cfg, k), r)}
    if current:
        study.enqueue_trial(current)


def _inside(value: Any, r: ParamRange) -> bool:
    if r.choices is not None:
        return value in r.choices
    return isinstance(value, int | float) and r.low <= value <= r.high


def _optimize(study: optuna.Study, model_cfg, cfg: TrainConfig, Xt, y, folds, deadline: float, token: str) -> None:
    search = cfg.search
    space = search.space[model_cfg.family]
    whole = {k for k in space if type(model_cfg).model_fields[k].annotation is int}

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("search", token)
        params = {k: _suggest(trial, k, r, k in whole) for k, r in space.items()}
        candidate = _candidate(model_cfg, params)
        losses = []
        for step, (fit, val) in enumerate(folds):
            losses.append(probe(candidate, cfg, Xt, y, fit, val)[0])
            trial.report(float(np.mean(losses)), step)
            if search.prune and trial.should_prune():
                raise optuna.TrialPruned()
        return float(np.mean(losses))

    remaining = deadline - time.time()
    left = search.n_trials - len(study.get_trials(deepcopy=False, states=_FINISHED))
    if remaining > 0 and left > 0:
        study.optimize(
            objective,
            n_trials=left,
            timeout=remaining,
            callbacks=[optuna.study.MaxTrialsCallback(search.n_trials, states=_FINISHED)],
        )


def _suggest(trial: optuna.Trial, name: str, r: ParamRange, whole: bool) -> Any:
    if r.choices is not None:
        return trial.suggest_categorical(name, list(r.choices))
    if whole:
        return trial.suggest_int(name, math.ceil(r.low), math.floor(r.high), log=r.log)
    return trial.suggest_float(name, r.low, r.high, log=r.log)


def _candidate(model_cfg, params: dict[str, Any]):
    """The family config with the trial's settings, validated (a whole-number choice becomes an int)."""
    return type(model_cfg).model_validate({**model_cfg.model_dump(), **params})
