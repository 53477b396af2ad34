"""The painml command: simulate, validate and realism, as a user runs them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from painml.cli.main import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_simulate_writes_the_file(tmp_path):
    out = tmp_path / "cohort.parquet"
    result = invoke("simulate", "--preset", "oncology", "--n", "300", "--seed", "2", "--out", str(out))
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    assert len(frame) == 300 and set(frame["true_condition"]) <= {
        "cancer_pain",
        "chemotherapy_induced_neuropathy",
        "post_surgical_pain",
    }


def test_simulate_rejects_a_bad_preset(tmp_path):
    result = invoke("simulate", "--preset", "dentist", "--out", str(tmp_path / "c.csv"))
    assert result.exit_code == 2
    assert "unknown preset" in result.output


def test_validate_a_good_file(tmp_path):
    out = tmp_path / "c.csv"
    invoke("simulate", "--n", "200", "--out", str(out))
    result = invoke("validate", str(out), "--require-label")
    assert result.exit_code == 0, result.output
    assert "200 rows" in result.output and "paindetect" in result.output


BAD_FILES = {
    "wrong types": ("age,sex,burning\nforty,female,yes\n", ["row 1", "'age'", "forty"]),
    "out of range": ("age,pain_intensity\n30,11\n", ["'pain_intensity'", "0 to 10"]),
    "unknown category": ("age,pain_region\n30,elbow\n", ["'pain_region'", "elbow"]),
    "no label for training": ("age,sex\n30,female\n", ["pain_type"]),
    "empty file": ("", ["no rows"]),
}


@pytest.mark.parametrize("name", BAD_FILES)
def test_validate_reports_every_problem_without_a_traceback(tmp_path, name):
    text, expected = BAD_FILES[name]
    path = tmp_path / "bad.csv"
    path.write_text(text)
    result = runner.invoke(app, ["validate", str(path), "--require-label"])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    for fragment in expected:
        assert fragment in result.output


def test_validate_lists_all_problems_at_once(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("age,sex,pain_type\n200,x,neuropathic\n30,female,bogus\n17,male,mixed\n")
    result = runner.invoke(app, ["validate", str(path), "--require-label"])
    assert result.exit_code == 1
    for fragment in (
        "row 1, column 'age'",
        "row 1, column 'sex'",
        "label 'bogus' in 1 rows",
        "(row 2)",
        "row 3, column 'age'",
    ):
        assert fragment in result.output


def test_realism_prints_the_table():
    result = invoke("realism", "--n", "20000", "--seed", "11")
    assert result.exit_code == 0, result.output
    assert "DN4 >= 4" in result.output and "Bayes" in result.output


def test_version():
    import painml

    result = invoke("--version")
    assert result.exit_code == 0 and result.output.strip() == f"painml {painml.__version__}"


def test_serving_lives_under_the_one_command():
    result = invoke("serve", "--help")
    assert result.exit_code == 0
    for command in ("predict", "batch", "http"):
        assert command in result.output


def test_validate_reads_labels_as_a_training_config_does(tmp_path):
    from painml.simulator.simulate import simulate

    frame = simulate("pain_clinic", 200, seed=4)
    frame.loc[frame.index[:3], "pain_type"] = "unknown"
    path = tmp_path / "export.csv"
    frame.to_csv(path, index=False)
    plain = invoke("validate", str(path), "--require-label")
    assert plain.exit_code == 1 and "label 'unknown' in 3 rows" in plain.output
    config = Path(__file__).resolve().parents[2] / "configs" / "small_cohort.yaml"
    ruled = invoke("validate", str(path), "--require-label", "--config", str(config))
    assert ruled.exit_code == 0, ruled.output
    assert "label 'unknown' dropped: 3 rows" in ruled.output and "197 rows" in ruled.output
    assert "export.csv: valid" in ruled.output


@pytest.mark.parametrize("classes", [("nociceptive", "neuropathic"), ("nociceptive", "neuropathic", "mixed", "other")])
def test_training_table_names_its_label_set(classes, monkeypatch):
    """The console table names the label set it was trained on, and lists only the rows it holds."""
    from types import SimpleNamespace

    from rich.console import Console

    from painml.cli import main

    console = Console(record=True, width=200)
    monkeypatch.setattr(main, "console", console)
    comparison = pd.DataFrame({"macro_f1": [0.7], "log_loss": [0.6]}, index=pd.Index(["logistic"], name="model"))
    baselines = pd.DataFrame(columns=["baseline", "question", "coverage", "sensitivity", "specificity"])
    result = SimpleNamespace(
        validation="holdout", comparison=comparison, winner="logistic", baselines=baselines, families={},
        oracle={}, run_id="0" * 32, winner_reason="", registered_version=None, promotion=None, report_file=None,
    )  # fmt: skip
    validation = SimpleNamespace(folds=5, repeats=1, resamples=200)
    cfg = SimpleNamespace(validation=validation, classes=classes, name="small", conformal_confidence=0.9)
    main._print_result(result, cfg)
    words = {2: "two", 4: "four"}[len(classes)]
    text = " ".join(console.export_text().split())  # the title wraps over the table's width
    assert f"{words} classes ({', '.join(classes)})" in text
    assert "Three classes" not in text and "painDETECT bands" not in text and "ceiling" not in text


def test_adapt_from_a_store_that_does_not_exist_is_a_message_and_creates_nothing(tmp_path):
    store_file = tmp_path / "elsewhere" / "mlflow.db"
    result = runner.invoke(
        app,
        [
            "adapt",
            "--model",
            "models:/painml-pain-type@champion",
            "--data",
            str(Path(__file__).resolve().parents[2] / "data" / "sample_cohort.csv"),
            "--tracking-uri",
            f"sqlite:///{store_file}",
        ],
    )
    assert result.exit_code == 2, result.output
    assert "the source model cannot be loaded" in result.output and str(store_file) in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not store_file.parent.exists()
