"""``serve.py``: the predict and batch commands, their output and exit codes."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from painml.cli.serve import serve_app

runner = CliRunner()


def _args(served, *more: str) -> list[str]:
    return [*more, "--model", served.store.model_uri, "--tracking-uri", served.store.uri]


def test_predict_reads_a_file_and_prints_a_summary(served, tmp_path):
    path = tmp_path / "patient.json"
    path.write_text(json.dumps(served.records[0]))
    result = runner.invoke(serve_app, _args(served, "predict", "--input", str(path)))
    assert result.exit_code == 0, result.output
    row = served.predictor.predict_one(served.records[0], reasons=3)
    assert row["patient_id"] in result.stdout
    assert f"predicted {row['predicted_class']}" in result.stdout
    assert "prediction set" in result.stdout
    assert row["reasons"][0]["label"] in result.stdout


def test_predict_takes_fields_as_arguments(served):
    result = runner.invoke(
        serve_app,
        _args(
            served,
            "predict",
            "age=70",
            "sex=male",
            "brush_allodynia=true",
            "pain_distribution=stocking_glove",
            "diabetes=yes",
            "--json",
        ),
    )
    assert result.exit_code == 0, result.output
    expected = served.predictor.predict_one(
        {
            "age": "70",
            "sex": "male",
            "brush_allodynia": "true",
            "pain_distribution": "stocking_glove",
            "diabetes": "yes",
        },
        reasons=3,
    )
    assert json.loads(result.stdout) == json.loads(json.dumps(expected))


def test_predict_a_list_from_stdin(served):
    result = runner.invoke(
        serve_app, _args(served, "predict", "--json", "--reasons", "0"), input=json.dumps(served.records[:3])
    )
    assert result.exit_code == 0, result.output
    assert [r["patient_id"] for r in json.loads(result.stdout)] == [r["patient_id"] for r in served.records[:3]]


@pytest.mark.parametrize(
    ("stdin", "args", "code", "needle"),
    [
        ("{oops", [], 1, "not valid JSON"),
        ("", [], 1, "is empty"),
        ("[1, 2]", [], 1, "expected one patient record"),
        ('{"age": 300, "sex": "robot"}', [], 1, "column 'age'"),
        ('{"age": 50, "shoe_size": 9}', [], 1, "unknown column"),
        (None, ["age"], 2, "expected FIELD=VALUE"),
    ],
)
def test_predict_errors_are_readable(served, stdin, args, code, needle):
    result = runner.invoke(serve_app, _args(served, "predict", *args), input=stdin)
    assert result.exit_code == code
    assert needle in result.output


def test_a_missing_model_is_a_usage_error(served):
    result = runner.invoke(
        serve_app,
        ["predict", "age=50", "--model", "models:/no-such-model@champion", "--tracking-uri", served.store.uri],
    )
    assert result.exit_code == 2
    assert "no model" in result.output


def test_batch_command(served, tmp_path):
    source = tmp_path / "in.csv"
    frame = served.frame.copy().astype({"age": object})
    frame.loc[4, "age"] = "old"
    frame.to_csv(source, index=False)
    result = runner.invoke(
        serve_app,
        _args(
            served,
            "batch",
            "--input",
            str(source),
            "--output",
            str(tmp_path / "out.parquet"),
            "--no-progress",
            "--chunksize",
            "16",
        ),
    )
    assert result.exit_code == 1  # some rows were set aside
    assert "scored 59 of 60 rows" in result.stdout
    assert "out.parquet.errors.csv" in result.output
    assert (tmp_path / "out.parquet").exists()
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    result = runner.invoke(
        serve_app, _args(served, "batch", "--input", str(empty), "--output", str(tmp_path / "e.csv"), "--no-progress")
    )
    assert result.exit_code == 1 and "has no rows" in result.output
    assert not (tmp_path / "e.csv").exists()
