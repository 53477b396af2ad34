"""The malformed-input corpus through validate, batch and predict: no traceback, no hang, no silent scoring,
and validate and batch agree on every file."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from painml.cli.main import app
from painml.cli.serve import serve_app

runner = CliRunner()
SECONDS_PER_CASE = 60  # a guard against a hang (quadratic checks took hours), not a speed figure


def _corpus_module():
    spec = importlib.util.spec_from_file_location("make_corpus", Path(__file__).with_name("make_corpus.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return _corpus_module().build(tmp_path_factory.mktemp("corpus"))


def _clean(result) -> bool:
    """Ended by the command itself (an exit code), not by an exception, and printed no traceback."""
    return (result.exception is None or isinstance(result.exception, SystemExit)) and "Traceback" not in result.output


def _batch_outcome(result, output: Path, errors: Path) -> str:
    if result.exit_code == 0 and output.exists() and not errors.exists():
        return "scored"
    if result.exit_code == 1 and output.exists() and errors.exists():
        return "rows"
    if result.exit_code == 1 and not output.exists() and not errors.exists():
        return "refused"
    return f"exit {result.exit_code}"


def test_every_file_is_read_as_meant_or_refused_and_validate_agrees_with_batch(served, corpus, tmp_path):
    files, _ = corpus
    model = ["--model", served.store.model_uri, "--tracking-uri", served.store.uri]
    expected = {"valid": ("valid", "scored"), "rows": ("invalid", "rows"), "refused": ("invalid", "refused")}
    table, failures = [], []
    for case in files:
        start = time.perf_counter()
        checked = runner.invoke(app, ["validate", str(case.path)])
        output = tmp_path / f"{case.path.stem}.scored.csv"
        errors = output.with_name(output.name + ".errors.csv")
        scored = runner.invoke(serve_app, ["batch", "-i", str(case.path), "-o", str(output), "--no-progress", *model])
        seconds = time.perf_counter() - start
        verdict = (
            "valid" if checked.exit_code == 0 else "invalid" if checked.exit_code == 1 else f"exit {checked.exit_code}"
        )
        outcome = (verdict, _batch_outcome(scored, output, errors))
        table.append((case.kind, case.name, *outcome, case.expect))
        if not (_clean(checked) and _clean(scored)):
            failures.append(f"{case.name}: traceback\n{checked.output}\n{scored.output}")
        if outcome != expected[case.expect]:
            failures.append(f"{case.name}: validate {outcome[0]}, batch {outcome[1]}; expected {case.expect}")
        if (checked.exit_code == 0) != (scored.exit_code == 0):
            failures.append(f"{case.name}: validate and batch disagree")
        if seconds > SECONDS_PER_CASE:
            failures.append(f"{case.name}: {seconds:.0f} s")
    _print_table(table)
    assert not failures, "\n".join(failures)


def test_every_json_record_is_scored_flagged_or_refused_with_a_message(served, corpus):
    _, records = corpus
    model = ["--model", served.store.model_uri, "--tracking-uri", served.store.uri]
    failures, outcomes = [], Counter()
    for case in records:
        result = runner.invoke(serve_app, ["predict", "--input", str(case.path), "--json", *model])
        outcomes[(case.expect, result.exit_code)] += 1
        if not _clean(result):
            failures.append(f"{case.name}: traceback\n{result.output}")
        elif case.expect == "ok":
            if result.exit_code != 0:
                failures.append(f"{case.name}: exit {result.exit_code}\n{result.output}")
            elif case.name in ("empty_object.json", "four_fields.json"):
                row = json.loads(result.stdout)
                if not row["too_little_recorded"] or row["prediction_set"] != list(served.predictor.classes):
                    failures.append(f"{case.name}: scored as if enough were recorded")
        elif result.exit_code != 1 or not result.stderr.strip():
            failures.append(f"{case.name}: exit {result.exit_code}, message {result.stderr!r}")
    print("\npredict: " + ", ".join(f"{expect} -> exit {code}: {n}" for (expect, code), n in sorted(outcomes.items())))
    assert not failures, "\n".join(failures)


def _print_table(table: list[tuple[str, ...]]) -> None:
    print("\n| kind | file | validate | batch | expected |\n|---|---|---|---|---|")
    for row in sorted(table):
        print("| " + " | ".join(row) + " |")
    counts = Counter((kind, batch) for kind, _, _, batch, _ in table)
    print("\n| kind | " + " | ".join(("scored", "rows", "refused")) + " |\n|---|---|---|---|")
    for kind in sorted({k for k, _ in counts}):
        print(f"| {kind} | " + " | ".join(str(counts[(kind, o)]) for o in ("scored", "rows", "refused")) + " |")
