"""Files a careless export produces: read as meant, or refused saying why; never scored as something else."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from painml.record.schema import SchemaError, load_records, split_valid, validate_file

HEADER = ["patient_id", "site", "age", "sex", "burning", "numbness", "brush_allodynia"]
ROWS = [["p1", "north", "54", "male", "true", "false", "true"], ["p2", "south", "61", "female", "", "true", "false"]]


def _write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, str):
        text = text.encode()
    path.write_bytes(text)
    return path


@pytest.mark.parametrize("sep", [",", "\t", ";", "|"])
def test_the_delimiter_is_detected(tmp_path, sep):
    path = _write(tmp_path / "in.csv", "\n".join(sep.join(r) for r in [HEADER, *ROWS]) + "\n")
    records = load_records(path)
    assert records.frame["age"].tolist() == [54.0, 61.0]
    assert records.frame["burning"].tolist()[0] == 1.0
    assert records.frame["patient_id"].tolist() == ["p1", "p2"]


def test_column_names_match_whatever_their_case_and_spaces(tmp_path):
    header = [" Patient_ID", "SITE", "Age ", "SEX", "Burning", "numbness", "brush_allodynia"]
    path = _write(tmp_path / "in.csv", "\n".join(",".join(r) for r in [header, *ROWS]) + "\n")
    records = load_records(path)
    assert records.frame["age"].tolist() == [54.0, 61.0]
    assert records.frame["sex"].tolist() == ["male", "female"]
    assert not records.extra_columns


@pytest.mark.parametrize(
    ("text", "seen"),
    [
        ("foo,bar\n1,2\n", "comma-separated"),
        ("a b c\n1 2 3\n", "no comma, tab, semicolon or pipe"),
        ("a\x00ge,s\x00ex\n54,male\n", "comma-separated"),
    ],
)
def test_a_file_naming_no_record_column_is_refused(tmp_path, text, seen):
    path = _write(tmp_path / "in.csv", text)
    with pytest.raises(SchemaError, match=f"no patient-record column recognised.*{seen}"):
        load_records(path)
    assert split_valid(path)[0] is None


def test_a_parquet_file_naming_no_record_column_is_refused(tmp_path):
    path = tmp_path / "in.parquet"
    pd.DataFrame({"foo": [1, 2], "bar": ["x", "y"]}).to_parquet(path)
    with pytest.raises(SchemaError, match="no patient-record column recognised"):
        load_records(path)


@pytest.mark.parametrize("name", ["brush_alodynia", "Pain Intensity", "numbnes"])
def test_a_misspelled_column_is_a_problem_with_a_suggestion(tmp_path, name, capsys):
    header = [*HEADER, name, "mrn"]
    path = _write(tmp_path / "in.csv", "\n".join(",".join(r) for r in [header, *(r + ["1", "m1"] for r in ROWS)]))
    with pytest.raises(SchemaError, match="did you mean"):
        load_records(path)
    assert validate_file(path) == 1
    assert "did you mean" in capsys.readouterr().out


def test_other_extra_columns_are_still_carried(tmp_path):
    """A clinic's own columns that only look like record columns are carried, not refused as misspellings."""
    extras = ["mrn", "visit_date", "pain_score", "sites", "diabetic"]
    header = [*HEADER, *extras]
    path = _write(
        tmp_path / "in.csv",
        "\n".join(",".join(r) for r in [header, *(r + ["m1", "2024-01-01", "7", "north", "1"] for r in ROWS)]),
    )
    records = load_records(path)
    assert records.extra_columns == tuple(extras)


def test_mostly_unknown_columns_are_named_with_guesses(tmp_path):
    header = ["age", "burn", "hypoesth", "c1", "c2", "c3"]
    path = _write(tmp_path / "in.csv", ",".join(header) + "\n54,1,1,1,1,1\n")
    notices = " ".join(load_records(path).notices)
    assert "most columns" in notices and "perhaps burning" in notices


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("p9,north,70,male", "4 fields where the header has 7"),
        ("p9,north,70,male,true,false,true,extra", "8 fields where the header has 7"),
        ("# exported from the clinic system", "comment line"),
        ("\x00\x00\x00\x00", "NUL bytes"),
        ("p9,north,70,male,true,\x00,true", "NUL bytes"),
    ],
)
@pytest.mark.parametrize("quoted", [False, True])
def test_broken_lines_are_problems_with_their_line_number(tmp_path, line, why, quoted, capsys):
    rows = [",".join(r) for r in [HEADER, ROWS[0], ROWS[1]]]
    if quoted:
        rows[1] = rows[1].replace("north", '"north"')
    text = "\n".join([rows[0], rows[1], line, rows[2]]) + "\n"
    path = _write(tmp_path / "in.csv", text)
    with pytest.raises(SchemaError, match=f"row 2: line 3: .*{why}"):
        load_records(path)
    kept, problems = split_valid(path)
    assert kept.frame["patient_id"].tolist() == ["p1", "p2"]
    assert [p.row for p in problems] == [2]
    assert validate_file(path) == 1


def test_blank_lines_are_not_rows_and_do_not_shift_numbers(tmp_path):
    text = ",".join(HEADER) + "\n" + ",".join(ROWS[0]) + "\n\n   \n" + "p3,x,200,male,,,\n"
    path = _write(tmp_path / "in.csv", text)
    kept, problems = split_valid(path)
    assert [(p.row, p.column) for p in problems] == [(2, "age")]
    assert problems[0].patient_id == "p3"


def test_repeated_patient_ids_are_noticed_by_row(tmp_path):
    rows = [ROWS[0], ROWS[1], ROWS[0]]
    path = _write(tmp_path / "in.csv", "\n".join(",".join(r) for r in [HEADER, *rows]) + "\n")
    notices = " ".join(load_records(path).notices)
    assert "patient_id repeats an earlier row's in 1 row (3)" in notices
    assert "p1" not in notices


def test_a_very_wide_header_is_checked_in_linear_time():
    names = ["age", *(f"extra_{i}" for i in range(100_000)), "age"]
    frame = pd.DataFrame(np.zeros((1, len(names))), columns=names)
    start = time.perf_counter()
    with pytest.raises(SchemaError, match="appears more than once"):
        load_records(frame)
    assert time.perf_counter() - start < 30  # quadratic took hours; this guards against a hang, not a speed figure


def test_a_huge_cell_is_shown_truncated(tmp_path, capsys):
    path = _write(tmp_path / "in.csv", "age,sex\n" + "9" * 1_000_000 + ",male\n")
    assert validate_file(path) == 1
    out = capsys.readouterr().out
    assert "(1,000,000 characters)" in out and len(out) < 5_000
