"""The promote job: move ``champion`` to the candidate only if it wins on data neither version saw."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from painml.config import FileData, TrainConfig, higher_is_better, load_config
from painml.evaluation.metrics import classification_metrics
from painml.model.dataset import load_dataset as load_data
from painml.model.dataset import load_labelled, split_rows
from painml.record.files import read_raw
from painml.record.labels import resolve
from painml.record.schema import Records
from painml.serving.predictor import Predictor
from painml.simulator.simulate import simulate
from painml.tracking import registry, runs, store


def promote(
    name: str, *, tracking_uri: str | None = None, version: str | None = None, data_path: str | Path | None = None
) -> str:
    """Move ``champion`` to the candidate only if it beats the champion on the same evaluation.

    Both versions are scored on rows neither was trained on: ``data_path``
    when given (a labelled file), else a fresh cohort from the candidate's
    simulator preset, else the candidate's own test rows of its training file
    (only when the champion did not train on that file too). The metric is the
    candidate config's primary metric.
    """
    uri = store.resolve_tracking_uri(tracking_uri)
    store.require_store(uri)  # a read until the verdict: never create a store here
    store.use_store(uri)
    versions = registry.model_versions(name)
    if not versions:
        names = registry.registered_names()
        shown = f"registered: {', '.join(names)}" if names else "nothing is registered there"
        raise NothingToPromote(f"no registered model named {name!r} in {uri} ({shown})")
    candidate = version or registry.get_alias_version(name, registry.CANDIDATE)
    if candidate is None:
        raise NothingToPromote(
            f"{name} has no candidate version to promote; pass --version (it has {_listed(versions)})"
        )
    if str(candidate) not in versions:
        raise NothingToPromote(f"{name} has no version {candidate} (it has {_listed(versions)})")
    champion = registry.get_alias_version(name, registry.CHAMPION)
    if champion is None:
        return _move_champion(name, candidate, None, "(there was no champion yet)")
    if champion == candidate:
        return f"version {candidate} is already champion"
    cfg = _run_config(registry.version_run_id(name, candidate))
    champion_cfg = _run_config(registry.version_run_id(name, champion))
    if data_path is not None:
        records = load_labelled(read_raw(data_path), cfg, {}, str(data_path), f"file {Path(data_path).name}").records
        where = f"{data_path} ({len(records.frame):,} rows)"
    elif not isinstance(cfg.data, FileData):
        n = max(5_000, int(cfg.data.n * cfg.split.test_size))
        overrides = {
            k: v for k, v in (("label", cfg.data.label), ("response_level", cfg.data.response_level)) if v is not None
        }
        fresh = simulate(cfg.data.preset, n, cfg.data.seed + 1, **overrides)
        records = load_labelled(fresh, cfg, {}, "fresh cohort", "simulated cohort").records
        where = f"a fresh {cfg.data.preset} cohort of {n:,} patients (seed {cfg.data.seed + 1})"
    elif _fitted_on_every_row(name, candidate) or _fitted_on_every_row(name, champion):
        return (
            "not promoted: a version validated by resampling was fitted on every row of its file, so no rows of it "
            "are held out; pass a held-out labelled file with --data"
        )
    else:
        if champion_cfg.data == cfg.data and champion_cfg.model_dump(include={"seed", "split"}) != cfg.model_dump(
            include={"seed", "split"}
        ):
            return (
                "not promoted: the champion trained on the same file with a different split, so the "
                "candidate's test rows are not held out for it; pass a held-out labelled file with --data"
            )
        data = load_data(cfg)
        test = split_rows(data.y, cfg)["test"]
        records = Records(data.records.frame.iloc[test], data.records.label.iloc[test])
        where = f"the candidate's test rows of {cfg.data.path} ({len(records.frame):,} rows)"
    primary = cfg.tracking.primary_metric
    y = records.label.to_numpy(dtype=object)
    scores = {}
    for v in (candidate, champion):
        predictor = Predictor.from_uri(f"models:/{name}/{v}", tracking_uri=uri)
        proba = _on_classes(predictor.predict_proba(records.features), predictor.classes, cfg)
        if proba is None:
            return (
                f"not promoted: version {v} predicts {', '.join(predictor.classes)}, which the candidate's label map "
                f"does not bring onto its classes ({', '.join(cfg.classes)}); they cannot be compared"
            )
        scores[v] = classification_metrics(y, proba, list(cfg.classes))[primary]
    wins = scores[candidate] > scores[champion] if higher_is_better(primary) else scores[candidate] < scores[champion]
    verdict = (
        f"{primary} on {where}: candidate v{candidate} {scores[candidate]:.4f}, "
        f"champion v{champion} {scores[champion]:.4f}"
    )
    if wins:
        return _move_champion(name, candidate, champion, verdict)
    return f"not promoted: champion stays version {champion}; {verdict}"


class NothingToPromote(LookupError):
    """The model, the version or the candidate to promote does not exist (a typo must not look like success)."""


def _listed(versions: list[str]) -> str:
    return "version " + versions[0] if len(versions) == 1 else "versions " + ", ".join(versions)


def _move_champion(name: str, candidate: str, expected: str | None, why: str) -> str:
    """Point ``champion`` at ``candidate`` if it still is where this promotion found it, and say what happened.

    The registry has no compare-and-set: two promotions at once can both move
    the alias. Reading it before and after keeps each one's message true.
    """
    before = registry.get_alias_version(name, registry.CHAMPION)
    if before != expected:
        return (
            f"not promoted: another promotion moved champion to version {before} while this one compared "
            f"(it expected {'no champion' if expected is None else f'version {expected}'}); run promote again"
        )
    registry.set_alias(name, registry.CHAMPION, candidate)
    after = registry.get_alias_version(name, registry.CHAMPION)
    if after != candidate:
        return (
            f"not promoted: version {candidate} was set as champion, "
            f"but another promotion has since set version {after}"
        )
    return (
        f"promoted: version {candidate} is now champion; {why}"
        if expected
        else f"version {candidate} is now champion {why}"
    )


def _on_classes(proba, classes: list[str], cfg: TrainConfig):
    """A version's probabilities on the candidate's classes: its own classes renamed or merged by the candidate
    config's label map (a model adapted to a site that names its classes otherwise); None when one has no place."""
    targets = [resolve(c, cfg.labels.map) for c in classes]
    if not set(targets) <= set(cfg.classes):
        return None
    out = np.zeros((len(proba), len(cfg.classes)))
    for j, target in enumerate(targets):
        out[:, cfg.classes.index(target)] += proba[:, j]
    return out


def _fitted_on_every_row(name: str, version: str) -> bool:
    return runs.read_run(registry.version_run_id(name, version)).tags.get("painml.validation", "holdout") != "holdout"


def _run_config(run_id: str) -> TrainConfig:
    with tempfile.TemporaryDirectory() as tmp:
        path = runs.download(run_id, "config.yaml", tmp)
        if path is None:
            raise FileNotFoundError(f"run {run_id} has no config.yaml artifact: was it logged by painml train?")
        return load_config(path)
