"""The config is every job's only input: shipped examples must load, bad files must fail loudly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from painml.config import (
    FEATURE_GROUPS,
    ConfigError,
    FileData,
    GbmConfig,
    SimulatedData,
    TrainConfig,
    config_schema,
    higher_is_better,
    load_config,
)
from painml.record.columns import BLOCKS, DEFAULT_CLASSES

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
INVALID = sorted((Path(__file__).parent / "confs" / "invalid").glob("*.yaml"))
MINIMAL = {"name": "minimal", "data": {"source": "simulate"}, "models": [{"family": "gbm"}]}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_examples_are_found() -> None:
    names = {p.stem for p in CONFIGS}
    assert {"default", "gbm", "logistic", "from_file", "questionnaire_only", "smoke"} <= names
    assert len(INVALID) >= 14


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_config_validates(path: Path) -> None:
    config = load_config(path)
    assert config.name == path.stem
    assert path.read_text(encoding="utf-8").startswith("# "), "each config opens with a comment on its purpose"


def test_shipped_configs_do_what_their_names_say() -> None:
    configs = {p.stem: load_config(p) for p in CONFIGS}
    default = configs["default"]
    assert default.data == SimulatedData(source="simulate", preset="pain_clinic", n=20_000, seed=7)
    assert [m.family for m in default.models] == ["gbm", "logistic"]
    assert default.features.groups == FEATURE_GROUPS
    assert [m.family for m in configs["gbm"].models] == ["gbm"]
    assert [m.family for m in configs["logistic"].models] == ["logistic"]
    assert configs["from_file"].data == FileData(source="file", path=Path("data/sample_cohort.csv"))
    groups = set(configs["questionnaire_only"].features.groups)
    assert groups == set(FEATURE_GROUPS) - {"examination", "tests"}
    smoke = configs["smoke"]
    assert isinstance(smoke.data, SimulatedData) and smoke.data.n == 3000
    assert [m.family for m in smoke.models] == ["gbm", "logistic"]
    assert isinstance(smoke.models[0], GbmConfig) and smoke.models[0].n_estimators == 60
    assert smoke.tracking.registered_model != default.tracking.registered_model


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_config_fails_naming_file_and_key(path: Path) -> None:
    first_line = path.read_text(encoding="utf-8").splitlines()[0]
    assert first_line.startswith("# expect: "), "each invalid config states the error it expects"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert first_line.removeprefix("# expect: ") in message
    assert message.startswith(f"{path}: ")
    assert len(caught.value.problems) == 1, "each invalid config should break exactly one rule"


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "name: x\nseeed: 1\ndata: {source: simulate, n: 10}\nmodels: [{family: gbm, learning_rate: 2}]\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    keys = [problem.split(":")[0] for problem in caught.value.problems]
    assert sorted(keys) == ["data.n", "models.0.learning_rate", "seeed"]
    assert all(line.startswith(f"{path}: ") for line in str(caught.value).splitlines())
    assert "did you mean 'seed'?" in str(caught.value)


def test_missing_file_is_a_clear_config_error(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(ConfigError, match=r"nowhere\.yaml: cannot read: No such file or directory"):
        load_config(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path)
    assert issubclass(ConfigError, ValueError)


def test_yaml_merge_keys_are_not_taken_for_duplicates(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: x\ndata: {<<: {source: simulate, n: 500}, n: 600}\nmodels: [{family: gbm}]\n")
    assert load_config(path).data == SimulatedData(source="simulate", n=600)


def test_defaults() -> None:
    config = TrainConfig.model_validate(MINIMAL)
    assert config.seed == 42
    assert config.data == SimulatedData(source="simulate", preset="pain_clinic", n=20_000, seed=7)
    assert config.classes == DEFAULT_CLASSES
    assert config.features.groups == FEATURE_GROUPS and config.features.missing_indicators
    assert config.models == (GbmConfig(family="gbm"),)
    assert (config.split.test_size, config.split.calibration_size, config.split.stratify) == (0.2, 0.15, True)
    assert (config.calibration, config.class_weight, config.conformal_confidence) == ("temperature", "none", 0.9)
    assert not config.search.enabled
    assert config.tracking.primary_metric == "test_log_loss"


def test_feature_groups_are_the_column_blocks_plus_screening() -> None:
    assert set(FEATURE_GROUPS) == (set(BLOCKS) - {"identification"}) | {"screening"}


def test_overrides_return_a_new_validated_config() -> None:
    config = load_config(ROOT / "configs" / "default.yaml")
    changed = config.with_overrides(data_path=Path("cohort.csv"), seed=3, experiment="trial")
    assert changed.data == FileData(source="file", path=Path("cohort.csv"))
    assert (changed.seed, changed.tracking.experiment) == (3, "trial")
    assert changed.models == config.models and changed.tracking.registered_model == config.tracking.registered_model
    assert isinstance(config.data, SimulatedData) and config.seed == 42, "the original is untouched"
    assert config.with_overrides() == config
    with pytest.raises(ConfigError, match="overrides: seed: Input should be greater than or equal to 0"):
        config.with_overrides(seed=-1)
    with pytest.raises(ConfigError, match="overrides: tracking.experiment"):
        config.with_overrides(experiment="")


def test_flat_gives_dotted_scalar_params() -> None:
    params = load_config(ROOT / "configs" / "smoke.yaml").flat()
    assert all(isinstance(v, str | int | float | bool) for v in params.values())
    assert params["models.gbm.n_estimators"] == 60
    assert params["models.logistic.C"] == 1.0
    assert params["data.n"] == 3000
    assert params["labels"] == "nociceptive,neuropathic,mixed"
    assert params["features.groups"].split(",") == list(FEATURE_GROUPS)
    assert not any(key.endswith("family") for key in params)
    no_stopping = TrainConfig.model_validate({**MINIMAL, "models": [{"family": "gbm", "early_stopping_rounds": None}]})
    assert no_stopping.flat()["models.gbm.early_stopping_rounds"] == "None"
    from_file = load_config(ROOT / "configs" / "from_file.yaml").flat()
    assert from_file["data.path"] == "data/sample_cohort.csv"


def test_config_is_frozen() -> None:
    config = TrainConfig.model_validate(MINIMAL)
    with pytest.raises(ValidationError):
        config.seed = 1  # type: ignore[misc]
    with pytest.raises(ValidationError):
        config.models[0].learning_rate = 0.5  # type: ignore[misc]
    assert isinstance(config.models, tuple) and isinstance(config.classes, tuple)


def test_config_round_trips_through_yaml(tmp_path: Path) -> None:
    config = load_config(ROOT / "configs" / "questionnaire_only.yaml")
    path = _write(tmp_path, yaml.safe_dump(config.model_dump(mode="json")))
    assert load_config(path) == config


def test_schema_is_json_and_documented() -> None:
    schema = config_schema()
    json.dumps(schema)
    assert set(schema["required"]) == {"name", "data", "models"}
    assert "discriminator" in schema["properties"]["models"]["items"]
    assert schema["$defs"]["SimulatedData"]["properties"]["n"]["description"]


@pytest.mark.parametrize(
    ("metric", "higher"),
    [
        ("test_log_loss", False),
        ("test_brier", False),
        ("test_macro_f1", True),
        ("test_balanced_accuracy", True),
    ],
)
def test_higher_is_better(metric: str, higher: bool) -> None:
    assert higher_is_better(metric) is higher
