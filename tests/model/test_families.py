"""Model families: small-data settings fill only what a config left unwritten."""

from __future__ import annotations

from pathlib import Path

from painml.config import load_config
from painml.model.families import SMALL_DATA_GBM, for_small_data

REPO = Path(__file__).resolve().parents[2]


def test_small_data_settings_replace_only_unwritten_ones(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(
        "name: c\ndata: {source: simulate, n: 300}\nmodels:\n  - {family: gbm, num_leaves: 7}\n  - {family: logistic}\n"
    )
    cfg = load_config(config).with_overrides(seed=3, data_path=tmp_path / "export.csv")
    gbm, logistic = (for_small_data(m) for m in cfg.models)
    assert gbm.num_leaves == 7  # written in the file: kept
    assert gbm.min_child_samples == SMALL_DATA_GBM["min_child_samples"] and gbm.rounds == "inner_cv"
    assert logistic.C == "auto" and cfg.models[1].C == 1.0  # the penalty by inner cross-validation


def test_the_shipped_small_cohort_config_leaves_the_boosted_settings_to_the_defaults():
    gbm = next(m for m in load_config(REPO / "configs" / "small_cohort.yaml").models if m.family == "gbm")
    assert for_small_data(gbm).num_leaves == SMALL_DATA_GBM["num_leaves"]
