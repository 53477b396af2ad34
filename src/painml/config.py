"""Training configuration: a YAML file validated once into frozen, typed objects.

Every job takes a :class:`TrainConfig` and nothing else, so a typo or an
out-of-range value stops the run at start-up with the file and the key named,
not an hour into training. The examples in ``configs/`` are loaded by the tests.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from painml import DEFAULT_MODEL_NAME
from painml.record.columns import DEFAULT_CLASSES
from painml.record.labels import resolve

FeatureGroup = Literal[
    "demographics",
    "pain_history",
    "dn4_interview",
    "descriptors",
    "paindetect",
    "examination",
    "tests",
    "comorbidities",
    "screening",
]
FEATURE_GROUPS: tuple[FeatureGroup, ...] = get_args(FeatureGroup)
Preset = Literal["pain_clinic", "primary_care", "orthopaedic", "diabetes_clinic", "oncology"]
Metric = Literal["test_log_loss", "test_macro_f1", "test_balanced_accuracy", "test_brier"]
# LightGBM takes a signed 32-bit seed; staying below it keeps one seed valid everywhere.
Seed = Annotated[int, Field(ge=0, le=2**31 - 1)]

_SNAKE_CASE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")
_LOWER_IS_BETTER = ("loss", "brier", "ece", "error")


class ConfigError(ValueError):
    """A config that cannot be used; one line per problem, each naming the file and the key."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__("\n".join(f"{source}: {problem}" for problem in self.problems))


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


def _snake_case(label: str) -> str:
    if not _SNAKE_CASE.fullmatch(label):
        raise ValueError(f"{label!r} is not snake_case (a-z, 0-9 and _, starting with a letter)")
    return label


def _no_repeats(values: Sequence[str], what: str) -> None:
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"{what} listed more than once: {', '.join(repeated)}")


class LabelConfig(_Frozen):
    """The classes a model predicts, and how a clinic's recorded labels reach them.

    Written as a plain list (``labels: [nociceptive, neuropathic]``) or as a
    mapping with ``classes``, ``map`` and ``drop``.
    """

    classes: tuple[Annotated[str, AfterValidator(_snake_case)], ...] = Field(DEFAULT_CLASSES, min_length=2)
    """Classes in the order of the probability columns."""
    map: dict[str, str] = {}
    """Recorded value -> class (or another mapped value: ``{both: mixed, mixed: neuropathic}``)."""
    drop: tuple[str, ...] = ()
    """Recorded values whose rows are left out of training, with a count in the output."""

    @field_validator("classes")
    @classmethod
    def _unique_classes(cls, classes: tuple[str, ...]) -> tuple[str, ...]:
        _no_repeats(classes, "labels")
        return classes

    @model_validator(mode="after")
    def _rules_reach_a_class(self) -> LabelConfig:
        clash = sorted(set(self.map) & set(self.drop))
        if clash:
            raise ValueError(f"labels both mapped and dropped: {', '.join(clash)}")
        for value in self.map:
            target = resolve(value, self.map)
            if target not in self.classes and target not in self.drop:
                raise ValueError(
                    f"label map sends {value!r} to {target!r}, which is neither one of the classes "
                    f"({', '.join(self.classes)}) nor dropped"
                )
        return self


class SimulatedData(_Frozen):
    """A synthetic cohort from painml.simulator.simulate: runs anywhere, no patient data needed."""

    source: Literal["simulate"]
    preset: Preset = "pain_clinic"
    """The clinic whose case mix is simulated; class balance and missingness differ by setting."""
    n: int = Field(20_000, ge=200, le=5_000_000)
    """Patients; below 200 the test and calibration splits are too small to score."""
    seed: Seed = 7
    """Seed of the simulated cohort, kept apart from the training seed so the data stay fixed."""
    label: Literal["specialist", "routine"] | None = None
    """How the recorded label is made: a specialist's mechanism grading, or routine practice (mostly from the
    diagnosis, mixed rarely coded); empty: the preset's own choice."""
    response_level: float | None = Field(None, ge=-2, le=2)
    """A shift of every self-reported symptom item, in logits (populations answer questionnaires differently);
    empty: the preset's own."""


class FileData(_Frozen):
    """A cohort read from a file and checked against painml.record.schema."""

    source: Literal["file"]
    path: Path
    """A relative path is read from the current working directory (for shipped configs, the repo root)."""

    @field_validator("path")
    @classmethod
    def _names_a_file(cls, path: Path) -> Path:
        if str(path) == ".":
            raise ValueError("must name a file")
        return path


DataConfig = Annotated[SimulatedData | FileData, Field(discriminator="source")]


class FeatureConfig(_Frozen):
    """Which column blocks (painml.record.columns.BLOCKS) reach the model, to test what each adds."""

    groups: tuple[FeatureGroup, ...] = Field(FEATURE_GROUPS, min_length=1)
    """screening is the computed screening scores; the others are blocks of the patient record."""
    missing_indicators: bool = True
    """Add an is-missing flag per column: a test not done is itself informative."""

    @field_validator("groups")
    @classmethod
    def _unique(cls, groups: tuple[str, ...]) -> tuple[str, ...]:
        _no_repeats(groups, "groups")
        return groups


class GbmConfig(_Frozen):
    """LightGBM; the defaults suit tens of thousands of rows and about a hundred features."""

    family: Literal["gbm"]
    learning_rate: float = Field(0.05, gt=0, le=1)
    n_estimators: int = Field(500, ge=1)
    num_leaves: int = Field(15, ge=2)
    min_child_samples: int = Field(40, ge=1)
    reg_lambda: float = Field(1.0, ge=0)
    colsample: float = Field(0.8, gt=0, le=1)
    early_stopping_rounds: Annotated[int, Field(ge=1)] | None = 30
    """Rounds without improvement before stopping; null trains all n_estimators."""
    rounds: Literal["slice", "inner_cv"] = "slice"
    """How early stopping picks the number of trees: on a 10% slice of the training rows, or averaged over an
    inner 5-fold cross-validation (steadier on a few hundred rows, five times the cost)."""


def _positive_or_auto(C: float | str) -> float | str:
    if not isinstance(C, str) and C <= 0:
        raise ValueError("must be greater than 0, or auto")
    return C


Penalty = Annotated[float | Literal["auto"], AfterValidator(_positive_or_auto)]


class LogisticConfig(_Frozen):
    """Multinomial (or binary) logistic regression: the transparent baseline the GBM has to beat."""

    family: Literal["logistic"]
    C: Penalty = 1.0
    """Inverse regularisation strength, as in scikit-learn; ``auto`` chooses it by inner 5-fold CV on log-loss
    (the default under validation by resampling, when the config does not set it)."""
    max_iter: int = Field(2000, ge=1)


class ScreeningConfig(_Frozen):
    """Penalised logistic regression on the screening questionnaires' totals only (DN4, DN4-interview,
    painDETECT, LANSS, ID-Pain, NeuPSIG grade, each with a missing indicator): the tools clinicians
    already trust, re-weighted for the site. A handful of parameters per class contrast, so it is the
    honest floor at 100 to 300 patients. Only the scores computable from the config's feature groups
    are used (a questionnaire-only config gets no score that needs the examination)."""

    family: Literal["screening"]
    C: Penalty = "auto"
    """As for the logistic family; ``auto`` chooses it by inner 5-fold CV on log-loss."""
    max_iter: int = Field(2000, ge=1)


ModelConfig = Annotated[GbmConfig | LogisticConfig | ScreeningConfig, Field(discriminator="family")]
FAMILY_SIMPLICITY = ("screening", "logistic", "gbm")
"""Simplest first: within one standard error of the best, the simpler family wins."""


class SplitConfig(_Frozen):
    """Fractions of the whole cohort held out; training gets the rest."""

    test_size: float = Field(0.2, gt=0, le=0.5)
    calibration_size: float = Field(0.15, gt=0, lt=0.5)
    """Fits the calibrator, the conformal sets and early stopping: rows the model never trained on."""
    stratify: bool = True

    @model_validator(mode="after")
    def _leaves_rows_to_train(self) -> SplitConfig:
        total = self.test_size + self.calibration_size
        if total >= 0.8:
            raise ValueError(
                f"test_size + calibration_size is {total:g}; "
                "it must be below 0.8 so that training keeps over 20% of rows"
            )
        return self


class ValidationConfig(_Frozen):
    """How performance is estimated. ``auto`` resamples below ``auto_rows`` labelled rows and holds out
    above. Under ``cv`` and ``bootstrap`` the registered model is fitted on all rows, and everything learned
    from data (early stopping, temperature, conformal threshold) is repeated inside each resample."""

    method: Literal["auto", "holdout", "cv", "bootstrap"] = "auto"
    folds: int = Field(5, ge=2, le=20)
    repeats: int = Field(10, ge=1, le=100)
    resamples: int = Field(200, ge=10, le=2000)
    """Bootstrap refits (``bootstrap``), for Harrell's optimism correction and prediction stability."""
    auto_rows: int = Field(5000, ge=100)
    anticipated_c: float | None = Field(None, gt=0.5, lt=1)
    """The C statistic expected of every class pair, for the sample-size check before fitting (e.g. from a
    published model); empty: each pair's C under the simulator's exact posterior for ``anticipated_preset``,
    the best any model could do on such patients, so the check is optimistic."""
    anticipated_preset: Preset | None = None
    """The simulated clinic closest to the data; empty: the data's own preset when simulated, else pain_clinic."""

    def resolve(self, rows: int) -> str:
        """The method used for a cohort of ``rows`` labelled patients."""
        if self.method != "auto":
            return self.method
        return "cv" if rows < self.auto_rows else "holdout"


class ParamRange(_Frozen):
    """The values one hyper-parameter may take in the search: ``low`` to ``high`` (on a log scale with
    ``log: true``), or a list of ``choices``. Whole numbers for a whole-number setting (``num_leaves``)."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    """Search evenly in the logarithm: for penalties and learning rates spanning orders of magnitude."""
    choices: tuple[int | float, ...] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _range_or_choices(self) -> ParamRange:
        if self.choices is not None:
            if self.low is not None or self.high is not None or self.log:
                raise ValueError("give either choices or low and high (with log), not both")
            _no_repeats([str(c) for c in self.choices], "choices")
            return self
        if self.low is None or self.high is None:
            raise ValueError("needs low and high, or choices")
        if not self.low < self.high:
            raise ValueError(f"low ({self.low:g}) must be below high ({self.high:g})")
        if self.log and self.low <= 0:
            raise ValueError("a log scale needs low above 0")
        return self

    def bounds(self) -> tuple[float, ...]:
        """The values a family config must accept: both ends, or every choice."""
        return self.choices if self.choices is not None else (self.low, self.high)


_DEFAULT_SPACE = {
    "gbm": {
        "learning_rate": ParamRange(low=0.02, high=0.2, log=True),
        "num_leaves": ParamRange(choices=(4, 7, 15, 31)),
        "min_child_samples": ParamRange(choices=(20, 40, 80, 160)),
        "reg_lambda": ParamRange(low=0.1, high=20, log=True),
        "colsample": ParamRange(low=0.4, high=1.0),
    },
    "logistic": {"C": ParamRange(low=1e-3, high=10, log=True)},
}
_NOT_SEARCHED = ("family", "early_stopping_rounds", "rounds", "n_estimators", "max_iter")


class SearchConfig(_Frozen):
    """Hyper-parameter search with Optuna: TPE proposals scored by cross-validation on the training rows,
    hopeless trials pruned after a fold (median rule), stopped by whichever of ``n_trials`` and
    ``time_budget_s`` comes first. Each trial is an MLflow child run of the training run."""

    enabled: bool = False
    n_trials: int = Field(10, ge=1)
    """Trials in the study, all workers together (a stored study counts the trials it already has); workers
    that start a trial as the last one finishes may add up to one each."""
    time_budget_s: float = Field(120, gt=0)
    """Per family; a trial running at the deadline finishes."""
    folds: int = Field(3, ge=2, le=10)
    """Cross-validation folds scoring a trial; the pruner compares trials after each fold."""
    prune: bool = True
    """Stop a trial whose mean loss after a fold is worse than the median of earlier trials at that fold."""
    workers: int = Field(1, ge=1, le=64)
    """Processes running trials on this machine; one worker gives the same trials for the same seed."""
    storage: str | None = Field(None, min_length=1)
    """An Optuna storage shared by machines: a database URL (``postgresql://...``, ``sqlite:///...``) or
    the path of a journal file on a shared disk; empty: in memory (a temporary journal file with more
    workers). Machines running the same config join one study per family and each fits the best trial."""
    study: str | None = Field(None, min_length=1)
    """Name of the study in the storage (the family is appended); empty: the config's name."""
    space: dict[Literal["gbm", "logistic", "screening"], dict[str, ParamRange]] = _DEFAULT_SPACE
    """Per family, the settings searched and their ranges; a family not listed is not searched."""

    @model_validator(mode="after")
    def _space_fits_the_families(self) -> SearchConfig:
        families = {"gbm": GbmConfig, "logistic": LogisticConfig, "screening": ScreeningConfig}
        for family, params in self.space.items():
            model = families[family]
            for name, values in params.items():
                if name not in model.model_fields or name in _NOT_SEARCHED:
                    allowed = [f for f in model.model_fields if f not in _NOT_SEARCHED]
                    raise ValueError(
                        f"space.{family}: {name!r} is not a searchable {family} setting (one of {', '.join(allowed)})"
                    )
                for value in values.bounds():
                    try:
                        model.model_validate({"family": family, name: value})
                    except ValidationError as error:
                        reason = error.errors()[0]["msg"]
                        raise ValueError(f"space.{family}.{name}: {value:g} is not allowed ({reason})") from None
        return self


class TrackingConfig(_Frozen):
    """Where runs go in MLflow and which metric ranks them."""

    experiment: str = Field("painml", min_length=1)
    registered_model: str = Field(DEFAULT_MODEL_NAME, min_length=1)
    primary_metric: Metric = "test_log_loss"
    """Ranks models and runs; see higher_is_better for its direction."""


class TrainConfig(_Frozen):
    """One training run: data, features, models, splits, calibration and tracking."""

    name: str = Field(min_length=1, pattern=r"\S")
    seed: Seed = 42
    """Seed of the splits, the models and the search."""
    data: DataConfig
    labels: LabelConfig = LabelConfig()
    """The classes (a list), or ``{classes, map, drop}`` to map and drop the values a file records."""
    features: FeatureConfig = FeatureConfig()
    models: tuple[ModelConfig, ...] = Field(min_length=1)
    split: SplitConfig = SplitConfig()
    """Used by holdout validation only."""
    validation: ValidationConfig = ValidationConfig()
    calibration: Literal["sigmoid", "isotonic", "temperature", "none"] = "temperature"
    """Temperature scaling keeps the ranking and needs the fewest calibration rows."""
    class_weight: Literal["balanced", "none"] = "none"
    """``balanced`` up-weights rare classes (e.g. an added nociplastic class) in fitting; it shifts the
    probabilities away from the real class shares, which temperature calibration cannot undo, so it
    costs log-loss when the classes are only mildly imbalanced, as in the default label set."""
    search: SearchConfig = SearchConfig()
    conformal_confidence: float = Field(0.9, gt=0.5, lt=0.999)
    """Target coverage of the prediction sets: the true class is in the set this often."""
    tracking: TrackingConfig = TrackingConfig()

    @field_validator("labels", mode="before")
    @classmethod
    def _list_is_classes(cls, labels: Any) -> Any:
        return {"classes": labels} if isinstance(labels, list | tuple) else labels

    @property
    def classes(self) -> tuple[str, ...]:
        """The configured classes, in the order of the probability columns."""
        return self.labels.classes

    @model_validator(mode="after")
    def _calibration_resamples(self) -> TrainConfig:
        if self.validation.method in ("cv", "bootstrap") and self.calibration in ("sigmoid", "isotonic"):
            raise ValueError(
                f"calibration {self.calibration} needs its own held-out rows; validation by resampling fits "
                "the temperature on out-of-fold scores: use calibration temperature or none, or validation holdout"
            )
        return self

    @field_validator("validation", mode="before")
    @classmethod
    def _word_is_method(cls, validation: Any) -> Any:
        return {"method": validation} if isinstance(validation, str) else validation

    @field_validator("models")
    @classmethod
    def _one_per_family(cls, models: tuple[Any, ...]) -> tuple[Any, ...]:
        _no_repeats([m.family for m in models], "model families")
        return models

    def with_overrides(
        self, data_path: Path | None = None, seed: int | None = None, experiment: str | None = None
    ) -> TrainConfig:
        """A validated copy with command-line overrides applied; unset arguments change nothing.

        ``data_path`` switches to a file cohort; ``seed`` is the training seed (a
        simulated cohort keeps its own ``data.seed``, so the data stay the same).
        """
        raw = self.model_dump(exclude_unset=True)  # what the file left unset stays unset (small-data defaults)
        if data_path is not None:
            raw["data"] = {"source": "file", "path": data_path}
        if seed is not None:
            raw["seed"] = seed
        if experiment is not None:
            raw.setdefault("tracking", {})["experiment"] = experiment
        return _validate(raw, "overrides")

    def flat(self) -> dict[str, str | int | float | bool]:
        """Dotted keys to scalars, for mlflow.log_params; models are keyed by family."""
        out: dict[str, str | int | float | bool] = {"labels": ",".join(self.classes)}
        _flatten(self.model_dump(mode="json", exclude={"models", "labels"}), "", out)
        if self.labels.map or self.labels.drop:
            _flatten(self.labels.model_dump(mode="json", exclude={"classes"}), "labels", out)
        for model in self.models:
            _flatten(model.model_dump(mode="json", exclude={"family"}), f"models.{model.family}", out)
        return out


def _flatten(node: Any, key: str, out: dict[str, str | int | float | bool]) -> None:
    if isinstance(node, dict):
        for name, value in node.items():
            _flatten(value, f"{key}.{name}" if key else name, out)
    elif isinstance(node, list):
        out[key] = ",".join(str(item) for item in node)
    elif node is None:
        out[key] = "None"
    else:
        out[key] = node


def load_config(path: str | Path) -> TrainConfig:
    """Read and validate a YAML config; every problem found is reported in one ConfigError."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(source, [f"cannot read: {getattr(error, 'strerror', None) or error}"]) from None
    try:
        raw = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as error:
        raise ConfigError(source, [_yaml_problem(error)]) from None
    if not isinstance(raw, dict):
        got = "an empty file" if raw is None else f"a {type(raw).__name__}"
        raise ConfigError(source, [f"(top level): must be a mapping of keys to values, got {got}"])
    return _validate(raw, source)


def config_schema() -> dict[str, Any]:
    """The JSON schema of a config file, with the field docs, for editors and ``--schema``."""
    return TrainConfig.model_json_schema()


def higher_is_better(metric: str) -> bool:
    """Direction of a metric for ranking runs: losses, Brier score and calibration error go down."""
    return not metric.endswith(_LOWER_IS_BETTER)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects repeated keys, where PyYAML would silently keep the last."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _yaml_problem(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}invalid YAML: {getattr(error, 'problem', None) or error}"


def _validate(raw: dict[str, Any], source: str) -> TrainConfig:
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as error:
        errors = error.errors()
        problems = [_problem(e) for e in errors if not _follows_from(e, errors)]
        if isinstance(raw.get("labels"), list):  # the list form: name the key as the user wrote it
            problems = [
                p.replace("labels.classes", "labels", 1) if p.startswith("labels.classes") else p for p in problems
            ]
        raise ConfigError(source, problems) from None


def _follows_from(error: ErrorDetails, errors: list[ErrorDetails]) -> bool:
    """A list too short only because one of its items was invalid: the item's error says it all."""
    loc = error["loc"]
    return error["type"] == "too_short" and any(
        e["loc"][: len(loc)] == loc and len(e["loc"]) > len(loc) for e in errors
    )


# pydantic puts the union tag in an error's location (models.0.gbm.learning_rate);
# this maps each tag to its class so the tag can be dropped from the key shown.
_TAGGED: dict[str, type[BaseModel]] = {
    get_args(cls.model_fields[key].annotation)[0]: cls
    for cls in (SimulatedData, FileData, GbmConfig, LogisticConfig, ScreeningConfig)
    for key in ("source", "family")
    if key in cls.model_fields
}


@dataclass(frozen=True)
class _Mapping:
    """A mapping field: the next step of a location is a key the user wrote, then its values' model."""

    values: Any


def _nested_model(annotation: Any) -> type[BaseModel] | _Mapping | None:
    if get_origin(annotation) is tuple:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) is dict:
        return _Mapping(get_args(annotation)[1])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _locate(loc: tuple[int | str, ...]) -> tuple[str, tuple[str, ...]]:
    """The dotted key a user wrote for an error location, and the keys allowed under it."""
    parts: list[str] = []
    model: type[BaseModel] | _Mapping | None = TrainConfig
    for step in loc:
        if isinstance(model, _Mapping):
            model = _nested_model(model.values)
        elif isinstance(step, str):
            if model is not None and step in model.model_fields:
                model = _nested_model(model.model_fields[step].annotation)
            elif model is None and step in _TAGGED:
                model = _TAGGED[step]
                continue
            else:
                model = None
        parts.append(str(step))
    return ".".join(parts), tuple(model.model_fields) if isinstance(model, type) else ()


def _problem(error: ErrorDetails) -> str:
    key, _ = _locate(error["loc"])
    ctx = error.get("ctx", {})
    kind = error["type"]
    if kind == "extra_forbidden":
        _, allowed = _locate(error["loc"][:-1])
        close = difflib.get_close_matches(str(error["loc"][-1]), allowed, n=1)
        message = "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        discriminator = ctx["discriminator"].strip("'")
        key = f"{key}.{discriminator}"
        expected = ", ".join(repr(tag) for tag, cls in _TAGGED.items() if discriminator in cls.model_fields)
        got = f"{ctx['tag']!r} is not" if kind == "union_tag_invalid" else "required, it must be"
        message = f"{got} one of {expected}"
    elif kind == "value_error":
        message = str(ctx["error"])
    else:
        message = error["msg"]
    return f"{key or '(top level)'}: {message}"
