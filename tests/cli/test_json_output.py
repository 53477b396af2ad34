"""``--json`` for validate, train and promote: one object on stdout, errors as JSON on stderr, lines never wrapped."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from painml.cli.main import _promote_json, _train_json, app

runner = CliRunner()


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_validate_json_for_a_valid_file(tmp_path):
    path = _write(tmp_path / "in.csv", "patient_id,age,sex,burning,mrn\np1,54,male,true,m1\np2,61,female,,m2\n")
    result = runner.invoke(app, ["validate", str(path), "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["valid"] is True and body["rows"] == 2 and body["problems"] == []
    assert body["extra_columns"] == ["mrn"] and "age" not in body["missing_columns"]


def test_validate_json_lists_every_problem(tmp_path):
    path = _write(tmp_path / "in.csv", "patient_id,age,sex\np1,200,male\np2,61,robot\np3,40\n")
    result = runner.invoke(app, ["validate", str(path), "--json"])
    assert result.exit_code == 1
    body = json.loads(result.stdout)
    assert body["valid"] is False
    got = {(p["row"], p["column"], p["patient_id"]) for p in body["problems"]}
    assert got == {(1, "age", "p1"), (2, "sex", "p2"), (3, None, "p3")}
    assert all(p["message"] for p in body["problems"])


def test_validate_json_for_an_unreadable_file(tmp_path):
    path = _write(tmp_path / "in.csv", "foo,bar\n1,2\n")
    result = runner.invoke(app, ["validate", str(path), "--json"])
    assert result.exit_code == 1
    body = json.loads(result.stdout)
    assert body["valid"] is False and "no patient-record column recognised" in body["problems"][0]["message"]


def test_json_errors_go_to_stderr_as_json(tmp_path):
    config = _write(tmp_path / "bad.yaml", "name: x\nnot_a_key: 1\n")
    for command in (["validate", str(config), "--config", str(config)], ["train", "--config", str(config)]):
        result = runner.invoke(app, [*command, "--json"])
        assert result.exit_code == 2
        assert result.stdout == ""
        body = json.loads(result.stderr)
        assert body["error"] == "invalid configuration" and body["detail"]


def test_problem_lines_are_not_wrapped(tmp_path):
    long_value = "x" * 50
    path = _write(tmp_path / "in.csv", f"patient_id,age,pain_region\np1,54,{long_value}\n")
    result = runner.invoke(app, ["validate", str(path)], terminal_width=40)
    line = next(line for line in result.stdout.splitlines() if "pain_region" in line and "row 1" in line)
    assert "expected one of back, neck" in line and line.rstrip().endswith("widespread")


def test_train_json_carries_the_run_versions_and_verdicts(trained_store):
    body = json.loads(json.dumps(_train_json(trained_store.result, trained_store.config)))
    result = trained_store.result
    assert body["run_id"] == result.run_id and body["winner"] == result.winner
    assert body["registered_version"] == result.registered_version
    assert set(body["families"]) == set(result.families)
    assert all(
        isinstance(v, (float, int)) or v is None for f in body["families"].values() for v in f["metrics"].values()
    )


def test_promote_json_reads_every_verdict():
    cases = {
        "promoted: version 3 is now champion; log_loss on x: candidate v3 0.5000, champion v2 0.6000": (True, "3"),
        "not promoted: champion stays version 2; log_loss on x: candidate v3 0.7000, champion v2 0.6000": (False, "2"),
        "version 1 is now champion (there was no champion yet)": (True, "1"),
        "version 4 is already champion": (False, "4"),
        "painml has no candidate version to promote": (False, None),
    }
    for verdict, (promoted, champion) in cases.items():
        body = _promote_json("painml", None, verdict)
        assert (body["promoted"], body["champion"]) == (promoted, champion), verdict
        assert body["verdict"] == verdict
    assert _promote_json("m", None, next(iter(cases)))["scores"] == {"candidate": 0.5, "champion": 0.6}
