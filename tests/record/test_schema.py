"""The input contract: what is accepted, how it is coerced, and how problems are reported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from painml.record.columns import BLOCKS, BY_NAME, FEATURE_COLUMNS, INPUT_COLUMNS
from painml.record.projections import schema_markdown
from painml.record.schema import (
    Problem,
    SchemaError,
    iter_raw,
    load_records,
    read_raw,
    split_valid,
    summarize,
    validate_file,
)

NAMES = [c.name for c in INPUT_COLUMNS]
README = Path(__file__).resolve().parents[2] / "data" / "README.md"


def row(**overrides: object) -> dict[str, object]:
    """One valid record as CSV text, built from the column table so new columns need no edit here."""
    values: dict[str, object] = {}
    for column in INPUT_COLUMNS:
        if column.kind == "id":
            values[column.name] = "p001" if column.name == "patient_id" else "site_a"
        elif column.kind == "binary":
            values[column.name] = "false"
        elif column.kind == "category":
            values[column.name] = column.allowed[0]
        else:
            values[column.name] = f"{column.low if column.low is not None else 1:g}"
    values["pain_type"] = "neuropathic"
    values.update(overrides)
    return values


def frame(*rows: dict[str, object]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), dtype=object)


def write_csv(path: Path, *rows: dict[str, object]) -> Path:
    frame(*rows).to_csv(path, index=False)
    return path


def problem_cells(problems: list[Problem]) -> set[tuple[int | None, str | None]]:
    return {(p.row, p.column) for p in problems}


def test_csv_booleans_in_every_accepted_spelling(tmp_path: Path) -> None:
    spellings = ["true", "false", "1", "0", "yes", "no", " Y ", "f", "TRUE", "No", ""]
    path = write_csv(tmp_path / "b.csv", *(row(diabetes=s, patient_id=f"p{i}") for i, s in enumerate(spellings)))
    records = load_records(path)
    expected = [1, 0, 1, 0, 1, 0, 1, 0, 1, 0, np.nan]
    np.testing.assert_array_equal(records.frame["diabetes"].to_numpy(), np.array(expected, dtype=float))


def test_canonical_dtypes_order_and_normalised_categories(tmp_path: Path) -> None:
    rows = row(sex=" Female ", patient_id="007", extra_note="hi"), row(sex="", age="40.0")
    path = write_csv(tmp_path / "r.csv", *rows)
    records = load_records(path)
    frame_ = records.frame
    assert list(frame_.columns) == [*NAMES, "extra_note"]
    for name in NAMES:
        kind = BY_NAME[name].kind
        if kind in ("binary", "integer", "number"):
            assert frame_[name].dtype == np.float64, name
        else:
            assert frame_[name].dtype == object, name
            assert all(isinstance(v, str) or (isinstance(v, float) and np.isnan(v)) for v in frame_[name]), name
    assert frame_["sex"].tolist()[0] == "female" and np.isnan(frame_["sex"].tolist()[1])
    assert frame_["patient_id"].iloc[0] == "007"
    assert frame_["age"].tolist() == [18.0, 40.0]
    assert records.label.dtype == object and records.label.tolist() == ["neuropathic", "neuropathic"]
    assert "pain_type" not in frame_.columns
    assert list(records.features.columns) == list(FEATURE_COLUMNS)


def test_parquet_round_trip(tmp_path: Path) -> None:
    first = load_records(frame(row(), row(age="", sex="male", burning="yes")), require_label=True)
    path = tmp_path / "r.parquet"
    first.frame.assign(pain_type=first.label).to_parquet(path)
    second = load_records(path, require_label=True)
    pd.testing.assert_frame_equal(second.frame, first.frame)
    pd.testing.assert_series_equal(second.label, first.label)


def test_json_records_and_single_record() -> None:
    records = [
        {"patient_id": "a", "age": 54, "diabetes": True, "sex": "male", "hba1c": 7.5},
        {"patient_id": "b", "age": None, "diabetes": False, "burning": "yes"},
    ]
    loaded = load_records(records)
    assert loaded.frame["age"].tolist()[0] == 54.0 and np.isnan(loaded.frame["age"].iloc[1])
    assert loaded.frame["diabetes"].tolist() == [1.0, 0.0]
    assert loaded.frame["burning"].iloc[1] == 1.0
    single = load_records(records[0])
    assert len(single.frame) == 1 and single.frame["hba1c"].iloc[0] == 7.5
    with pytest.raises(SchemaError) as caught:
        load_records([{"age": [54], "sex": {"value": "male"}, "diabetes": 2}])
    assert problem_cells(caught.value.problems) == {(1, "age"), (1, "sex"), (1, "diabetes")}
    with pytest.raises(SchemaError, match="each record must be an object"):
        load_records([{"age": 54}, "age=54"])


def test_missing_block_is_all_missing_with_a_notice() -> None:
    raw = frame(row(), row()).drop(columns=list(BLOCKS["paindetect"]))
    records = load_records(raw)
    assert records.frame.loc[:, list(BLOCKS["paindetect"])].isna().all().all()
    assert records.missing_columns == BLOCKS["paindetect"]
    assert any("paindetect block (7 columns: pd_burning, pd_tingling_prickling" in n for n in records.notices)


def test_true_columns_are_set_aside_never_features(tmp_path: Path) -> None:
    truth = {"true_condition": "postherpetic_neuralgia", "true_p_neuropathic": "0.8", "true_p_mixed": "0.15"}
    path = write_csv(tmp_path / "sim.csv", row(**truth), row(**truth))
    records = load_records(path)
    assert not any(c.startswith("true_") for c in records.frame.columns)
    assert list(records.truth.columns) == list(truth)
    assert records.truth.index.equals(records.frame.index)
    assert records.truth["true_p_neuropathic"].dtype == np.float64
    assert records.truth["true_condition"].tolist() == ["postherpetic_neuralgia"] * 2


def test_every_problem_reported_together_with_file_row_numbers(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "bad.csv",
        row(),
        row(age="-3"),
        row(age="abc", sex="unknown"),
        row(pain_intensity="3.5", diabetes="maybe"),
        row(hba1c="25", pd_burning="6", pain_type="nociplastic"),
        row(pain_duration_months="inf", nerve_conduction="Abnormal"),
    )
    with pytest.raises(SchemaError) as caught:
        load_records(path)
    error = caught.value
    assert problem_cells(error.problems) == {
        (2, "age"),
        (3, "age"),
        (3, "sex"),
        (4, "pain_intensity"),
        (4, "diabetes"),
        (5, "pd_burning"),
        (5, "hba1c"),
        (5, "pain_type"),
        (6, "pain_duration_months"),
    }
    report = str(error)
    assert report.splitlines()[0] == "9 problems in 5 rows"
    assert "row 2, column 'age': got '-3', expected a whole number from 18 to 105" in report
    assert "row 4, column 'pain_intensity': got 3.5, expected a whole number from 0 to 10" in report
    assert "row 3, column 'sex': got 'unknown', expected one of female, male" in report
    table = error.to_frame()
    assert list(table.columns) == ["row", "patient_id", "column", "value", "expected"]
    assert table["row"].tolist()[:2] == [2, 3]


def test_integer_columns_accept_whole_floats() -> None:
    records = load_records(frame(row(age="54.0", pain_intensity=7.0)))
    assert records.frame[["age", "pain_intensity"]].iloc[0].tolist() == [54.0, 7.0]


def test_long_report_is_truncated_with_counts_per_column() -> None:
    raw = frame(*(row(age="5") for _ in range(55)), *(row(sex="x") for _ in range(5)))
    with pytest.raises(SchemaError) as caught:
        load_records(raw)
    lines = str(caught.value).splitlines()
    assert len(lines) == 52
    assert lines[-1] == "  ... and 10 more: age 5, sex 5"


def test_training_needs_a_label_column_and_a_label_in_every_row() -> None:
    without = frame(row()).drop(columns=["pain_type"])
    assert load_records(without).label is None
    with pytest.raises(SchemaError, match="training data needs a pain_type column with one of: nociceptive"):
        load_records(without, require_label=True)
    with pytest.raises(SchemaError) as caught:
        load_records(frame(row(), row(pain_type=""), row(pain_type=None)), require_label=True)
    assert problem_cells(caught.value.problems) == {(2, "pain_type"), (3, "pain_type")}
    assert load_records(frame(row(), row(pain_type=""))).label.isna().tolist() == [False, True]


def test_a_site_can_add_a_class() -> None:
    classes = ("nociceptive", "neuropathic", "mixed", "nociplastic")
    records = load_records(frame(row(pain_type="Nociplastic"), row()), classes=classes, require_label=True)
    assert records.label.tolist() == ["nociplastic", "neuropathic"]
    with pytest.raises(SchemaError, match="expected one of nociceptive, neuropathic, mixed"):
        load_records(frame(row(pain_type="nociplastic")))


@pytest.mark.parametrize("content", ["", "patient_id,age,sex\n"])
def test_empty_file_is_a_problem(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.csv"
    path.write_text(content)
    with pytest.raises(SchemaError, match="the file has no rows"):
        load_records(path)
    with pytest.raises(SchemaError, match="the input has no rows"):
        load_records([])


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("broken.parquet", b"not a parquet file", "cannot read broken.parquet as Parquet"),
        ("quote.csv", b'age,sex\n"54,male\n', "cannot read quote.csv as CSV"),
        ("latin1.csv", "age,sex\n54,m\xe4nnlich\n".encode("latin-1"), "cannot read latin1.csv as CSV"),
        ("records.xlsx", b"", "expected a .csv or .parquet file"),
    ],
)
def test_unreadable_input_is_a_problem_not_a_traceback(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SchemaError, match=message):
        load_records(path)
    assert split_valid(path)[0] is None


def test_missing_file() -> None:
    with pytest.raises(SchemaError, match="no such file"):
        load_records("/nonexistent/records.csv")


def test_repeated_column_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("age,sex,age\n54,male,60\n")
    with pytest.raises(SchemaError, match="column 'age': this column appears more than once"):
        load_records(path)


def test_extra_columns_carried_untouched_or_rejected() -> None:
    raw = frame(row(clinic_note="seen twice", visit="003"), row(clinic_note=None, visit="004"))
    records = load_records(raw)
    assert records.extra_columns == ("clinic_note", "visit")
    assert list(records.frame.columns[-2:]) == ["clinic_note", "visit"]
    pd.testing.assert_frame_equal(records.frame[["clinic_note", "visit"]], raw[["clinic_note", "visit"]])
    assert "clinic_note" not in records.features.columns
    with pytest.raises(SchemaError) as caught:
        load_records(raw, allow_extra=False)
    assert problem_cells(caught.value.problems) == {(None, "clinic_note"), (None, "visit")}


def test_split_valid_sets_aside_exactly_the_bad_rows() -> None:
    raw = frame(row(), row(age="200"), row(), row(sex="other", burning="maybe"), row())
    raw.index = [10, 11, 12, 13, 14]
    valid, problems = split_valid(raw, row_offset=1000)
    assert valid is not None
    assert valid.frame.index.tolist() == [10, 12, 14]
    assert valid.label.index.tolist() == [10, 12, 14]
    assert problem_cells(problems) == {(1002, "age"), (1004, "sex"), (1004, "burning")}
    assert split_valid(frame(row()).drop(columns=["pain_type"]), require_label=True)[0] is None


def test_chunked_reading_reports_file_row_numbers(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "c.csv", row(), row(), row(), row(age="3"), row(), row(sex="x"), row())
    found = []
    for offset, chunk in iter_raw(path, chunksize=3):
        found += split_valid(chunk, row_offset=offset)[1]
    whole = split_valid(read_raw(path))[1]
    assert problem_cells(found) == problem_cells(whole) == {(4, "age"), (6, "sex")}


def test_summary_shows_missingness_per_block_and_class_shares() -> None:
    raw = frame(row(), row(pain_type="mixed")).drop(columns=list(BLOCKS["examination"]))
    text = summarize(load_records(raw))
    assert text.startswith(f"2 rows, {len(INPUT_COLUMNS) - 14} of {len(INPUT_COLUMNS)} record columns present")
    assert "examination" in text and "100.0% (not recorded)" in text
    assert "neuropathic 1 (50.0%)" in text and "mixed 1 (50.0%)" in text


def test_validate_file_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write_csv(tmp_path / "good.csv", row(), row())
    bad = write_csv(tmp_path / "bad.csv", row(), row(age="[bold]old"))
    unlabelled = tmp_path / "unlabelled.csv"
    frame(row()).drop(columns=["pain_type"]).to_csv(unlabelled, index=False)
    assert validate_file(good, require_label=True) == 0
    assert "good.csv: valid" in capsys.readouterr().out
    assert validate_file(bad) == 1
    assert "row 2, column 'age': got '[bold]old'" in capsys.readouterr().out
    assert validate_file(unlabelled) == 0
    assert validate_file(unlabelled, require_label=True) == 1
    assert validate_file(tmp_path / "missing.csv") == 1
    assert "no such file" in capsys.readouterr().out


def test_data_readme_is_generated_from_the_column_table() -> None:
    assert README.read_text() == schema_markdown(), (
        "data/README.md is out of date with src/painml/record/columns.py; regenerate it with "
        "`python -m painml.record.projections > data/README.md`"
    )
    for column in INPUT_COLUMNS:
        assert f"| {column.name} |" in README.read_text()
