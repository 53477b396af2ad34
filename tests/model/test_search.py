"""Hyper-parameter search with Optuna: reproducible with one worker, bounded, shared through a storage."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from painml.config import load_config
from painml.features.encoding import build_features
from painml.model.dataset import load_dataset
from painml.model.search import search_hyperparameters

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def small():
    """The smoke config on 600 simulated patients, with the encoded rows each family is searched on."""
    cfg = load_config(REPO / "configs" / "smoke.yaml")
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"n": 600})})
    data = load_dataset(cfg)
    encoded = {
        m.family: build_features(m.family, cfg.features.groups, cfg.features.missing_indicators).fit_transform(data.X)
        for m in cfg.models
    }
    return cfg, encoded, data.y


def _search(small, family: str, **settings):
    cfg, encoded, y = small
    cfg = cfg.model_copy(update={"search": cfg.search.model_copy(update={"enabled": True, **settings})})
    model_cfg = next(m for m in cfg.models if m.family == family)
    return model_cfg, search_hyperparameters(model_cfg, cfg, encoded[family], y)


@pytest.mark.parametrize("family", ["gbm", "logistic"])
def test_one_worker_gives_the_same_search_twice(small, family):
    model_cfg, first = _search(small, family, n_trials=5, folds=2)
    _, second = _search(small, family, n_trials=5, folds=2)
    assert first.best == second.best and first.best_value == second.best_value
    assert [(t.params, t.state, t.running) for t in first.trials] == [
        (t.params, t.state, t.running) for t in second.trials
    ]
    assert len(first.trials) == 5
    space = small[0].search.space[family]
    assert first.trials[0].params == {k: getattr(model_cfg, k) for k in space}, "the config's own setting first"
    complete = [t for t in first.trials if t.state == "complete"]
    assert first.best_value == min(t.value for t in complete)
    assert all(len(t.running) == 2 for t in complete)
    assert all(t.value is None for t in first.trials if t.state != "complete")


def test_a_spent_budget_keeps_the_configs_setting(small):
    model_cfg, result = _search(small, "logistic", n_trials=50, time_budget_s=1e-9)
    assert result.trials == () and result.best == model_cfg and result.best_value is None


@pytest.mark.slow
def test_workers_share_a_journal_study_and_a_stored_study_continues(small, tmp_path):
    journal = str(tmp_path / "search.journal")
    _, first = _search(small, "logistic", n_trials=6, folds=2, workers=2, storage=journal)
    study = optuna.load_study(
        study_name=first.study,
        storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal)),
    )
    finished = [t for t in study.trials if t.state.is_finished()]
    assert len(finished) == len(first.trials) and 6 <= len(finished) <= 7, "a racing worker may finish one more"
    assert first.study == "smoke.logistic"
    _, again = _search(small, "logistic", n_trials=6, folds=2, workers=2, storage=journal)
    assert again.trials == () and again.best == first.best
