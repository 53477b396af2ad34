"""Batch files: same predictions as the predictor, rejected rows reported exactly, all-or-nothing output."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from painml.record import schema
from painml.serving import batch
from painml.serving.batch import errors_path, read_output, score_file
from painml.serving.predictor import Predictor

BAD_ROWS = {3: ("age", "two hundred"), 7: ("burning", "maybe"), 12: ("sex", "x"), 23: ("hba1c", "-4")}


def _write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def _cohort(served, bad: bool = True) -> pd.DataFrame:
    """The served patients plus an ``mrn`` column to join on, with a few broken cells (rows 1-based)."""
    frame = served.frame.copy().astype({"age": object, "burning": object, "sex": object, "hba1c": object})
    frame.insert(1, "mrn", [f"MRN{i:05d}" for i in range(len(frame))])
    if bad:
        for row, (column, value) in BAD_ROWS.items():
            frame.loc[row - 1, column] = value
        frame.loc[7 - 1, "pd_burning"] = 9  # a second problem in the same row
    return frame


@pytest.mark.parametrize("kind", [".csv", ".parquet"])
def test_batch_scores_like_the_predictor_and_keeps_join_columns(served, tmp_path, kind):
    p = served.predictor
    source = _write(_cohort(served, bad=False), tmp_path / f"in{kind}")
    result = score_file(p, source, tmp_path / f"out{kind}", chunksize=17, reasons=2, progress=False)
    assert (result.rows_read, result.rows_scored, result.rows_rejected) == (60, 60, 0)
    assert result.errors is None and not errors_path(tmp_path / f"out{kind}").exists()
    out = read_output(tmp_path / f"out{kind}")
    assert out["mrn"].tolist() == [f"MRN{i:05d}" for i in range(60)]
    expected = p.predict(served.frame, reasons=2)
    assert out["patient_id"].tolist() == expected["patient_id"].tolist()
    for column in expected.columns:
        if column.startswith("p_") or column == "confidence":
            np.testing.assert_array_equal(out[column].to_numpy(), expected[column].to_numpy())
        elif column in ("dn4", "paindetect", "neupsig_grade"):
            np.testing.assert_array_equal(out[column].to_numpy(dtype=float), expected[column].to_numpy(dtype=float))
        else:
            got = out[column].astype(object).fillna("").astype(str).tolist()
            assert got == expected[column].fillna("").astype(str).tolist(), column


def test_errors_file_lists_exactly_the_bad_rows(served, tmp_path):
    source = _write(_cohort(served), tmp_path / "in.csv")
    output = tmp_path / "out.csv"
    result = score_file(served.predictor, source, output, chunksize=10, progress=False)
    assert result.errors == errors_path(output) and result.errors.name == "out.csv.errors.csv"
    with open(result.errors, newline="") as handle:
        problems = list(csv.DictReader(handle))
    assert list(problems[0]) == ["row", "patient_id", "column", "value", "expected"]
    assert {int(p["row"]) for p in problems} == set(BAD_ROWS)
    assert {(int(p["row"]), p["column"]) for p in problems} == {
        *((row, column) for row, (column, _) in BAD_ROWS.items()),
        (7, "pd_burning"),
    }
    assert next(p for p in problems if int(p["row"]) == 3)["value"] == "two hundred"
    assert (result.rows_read, result.rows_rejected, result.rows_scored) == (60, 4, 56)
    out = read_output(output)
    kept = [f"MRN{i - 1:05d}" for i in range(1, 61) if i not in BAD_ROWS]
    assert out["mrn"].tolist() == kept


class Boom(RuntimeError):
    pass


@pytest.mark.parametrize("error", [Boom, KeyboardInterrupt])
@pytest.mark.parametrize("kind", [".csv", ".parquet"])
def test_an_interrupted_batch_leaves_no_output(served, tmp_path, monkeypatch, error, kind):
    source = _write(_cohort(served), tmp_path / "in.csv")
    output = tmp_path / f"out{kind}"
    calls = {"n": 0}
    original = Predictor.score_records

    def flaky(self, records, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise error("stopped on chunk 2")
        return original(self, records, **kwargs)

    monkeypatch.setattr(Predictor, "score_records", flaky)
    with pytest.raises(error):
        score_file(served.predictor, source, output, chunksize=10, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_a_failed_run_keeps_the_previous_output(served, tmp_path, monkeypatch):
    source = _write(_cohort(served, bad=False), tmp_path / "in.csv")
    output = tmp_path / "out.parquet"
    score_file(served.predictor, source, output, chunksize=25, progress=False)
    before = output.read_bytes()
    monkeypatch.setattr(batch, "_output_frame", lambda *a, **k: (_ for _ in ()).throw(Boom("disk full")))
    with pytest.raises(Boom):
        score_file(served.predictor, source, output, chunksize=25, progress=False)
    assert output.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.parquet"]


def test_a_failing_reader_is_reported_in_order(served, tmp_path, monkeypatch):
    """An error on the reader thread reaches the caller, and nothing is written."""
    source = _write(_cohort(served, bad=False), tmp_path / "in.csv")
    original = schema.split_valid
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise Boom("reader failed on chunk 3")
        return original(*args, **kwargs)

    monkeypatch.setattr(schema, "split_valid", flaky)
    with pytest.raises(Boom, match="chunk 3"):
        score_file(served.predictor, source, tmp_path / "out.csv", chunksize=10, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


@pytest.mark.parametrize("content", ["", "patient_id,age,sex\n"])
def test_an_empty_file_is_refused_with_a_clear_error(served, tmp_path, content):
    source = tmp_path / "empty.csv"
    source.write_text(content)
    with pytest.raises(schema.SchemaError, match="empty.csv has no rows|has no rows"):
        score_file(served.predictor, source, tmp_path / "out.csv", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.csv"]


def test_file_level_problems_stop_before_writing(served, tmp_path):
    source = tmp_path / "dup.csv"
    source.write_text("patient_id,age,age\np1,40,41\n")
    with pytest.raises(schema.SchemaError, match="more than once"):
        score_file(served.predictor, source, tmp_path / "out.csv", progress=False)
    assert not (tmp_path / "out.csv").exists()
    with pytest.raises(schema.SchemaError, match="no such file"):
        score_file(served.predictor, tmp_path / "missing.csv", tmp_path / "out.csv", progress=False)
    with pytest.raises(ValueError, match="must end in .csv or .parquet"):
        score_file(served.predictor, source, tmp_path / "out.json", progress=False)


def test_all_rows_rejected_still_gives_an_output_and_the_errors(served, tmp_path):
    source = tmp_path / "bad.csv"
    source.write_text("patient_id,age\np1,abc\np2,300\n")
    result = score_file(served.predictor, source, tmp_path / "out.csv", progress=False)
    assert (result.rows_scored, result.rows_rejected) == (0, 2)
    assert read_output(tmp_path / "out.csv").empty
    assert list(read_output(tmp_path / "out.csv").columns) == served.predictor.output_columns()


def test_a_clean_run_removes_a_stale_errors_file(served, tmp_path):
    source = _write(_cohort(served, bad=False), tmp_path / "in.csv")
    stale = errors_path(tmp_path / "out.csv")
    stale.write_text("row,column,value,expected\n1,age,x,y\n")
    score_file(served.predictor, source, tmp_path / "out.csv", progress=False)
    assert not stale.exists()


def test_progress_bar_goes_to_the_given_console(served, tmp_path):
    from io import StringIO

    from rich.console import Console

    source = _write(_cohort(served, bad=False), tmp_path / "in.csv")
    buffer = StringIO()
    score_file(served.predictor, source, tmp_path / "out.csv", chunksize=20, console=Console(file=buffer, width=100))
    assert "scoring" in buffer.getvalue() and "60/60" in buffer.getvalue()


def test_site_and_patient_id_reach_the_output_and_the_errors_file(served, tmp_path):
    source = _write(_cohort(served), tmp_path / "in.csv")
    result = score_file(served.predictor, source, tmp_path / "out.csv", chunksize=10, progress=False)
    out = read_output(tmp_path / "out.csv")
    assert list(out.columns[:3]) == ["patient_id", "site", "mrn"]
    expected = pd.read_csv(source, dtype=str)
    kept = expected.drop(index=[r - 1 for r in BAD_ROWS]).reset_index(drop=True)
    assert out["site"].tolist() == kept["site"].tolist()
    with open(result.errors, newline="") as handle:
        problems = list(csv.DictReader(handle))
    assert {p["patient_id"] for p in problems} == {expected["patient_id"][r - 1] for r in BAD_ROWS}


def test_repeated_patient_ids_across_chunks_are_noticed(served, tmp_path):
    frame = _cohort(served, bad=False)
    frame.loc[45, "patient_id"] = frame.loc[2, "patient_id"]
    source = _write(frame, tmp_path / "in.csv")
    result = score_file(served.predictor, source, tmp_path / "out.csv", chunksize=10, progress=False)
    assert any("patient_id repeats an earlier row's in 1 row (46)" in n for n in result.notices)
    assert result.rows_scored == 60


def test_broken_lines_go_to_the_errors_file_not_the_output(served, tmp_path):
    source = _write(_cohort(served, bad=False), tmp_path / "in.csv")
    lines = source.read_text().splitlines()
    lines[3] = lines[3].rsplit(",", 5)[0]  # short: the last five fields lost
    lines[5] = "# exported by the clinic system"
    lines[8] = lines[8] + ",extra"
    source.write_text("\n".join(lines) + "\n")
    result = score_file(served.predictor, source, tmp_path / "out.csv", chunksize=4, progress=False)
    with open(result.errors, newline="") as handle:
        problems = list(csv.DictReader(handle))
    assert [(int(p["row"]), p["expected"].split(":")[0]) for p in problems] == [
        (3, "line 4"),
        (5, "line 6"),
        (8, "line 9"),
    ]
    assert result.rows_scored == 57
    assert not read_output(tmp_path / "out.csv")["patient_id"].str.startswith("#").any()


@pytest.mark.parametrize("kind", [".csv", ".parquet"])
def test_parquet_extras_of_any_type_are_carried_through(served, tmp_path, kind):
    from decimal import Decimal

    frame = _cohort(served, bad=False)
    frame["visit_date"] = pd.date_range("2024-01-01", periods=len(frame), freq="D")
    frame["fee"] = [Decimal("12.50")] * len(frame)
    frame["extra"] = [{"ward": "a", "bed": i} for i in range(len(frame))]
    source = tmp_path / "in.parquet"
    frame.to_parquet(source, index=False)
    output = tmp_path / f"out{kind}"
    result = score_file(served.predictor, source, output, chunksize=25, progress=False)
    assert result.rows_scored == 60
    out = read_output(output)
    assert {"visit_date", "fee", "extra"} <= set(out.columns)
    if kind == ".parquet":
        assert pd.api.types.is_datetime64_any_dtype(out["visit_date"])
        assert out["visit_date"].tolist() == frame["visit_date"].tolist()


def test_an_unreadable_parquet_file_is_named(served, tmp_path):
    source = tmp_path / "broken.parquet"
    source.write_bytes(b"PAR1 not really")
    with pytest.raises(schema.SchemaError, match="broken.parquet"):
        score_file(served.predictor, source, tmp_path / "out.csv", progress=False)


def test_temporary_files_are_unpredictable_and_a_planted_link_is_not_followed(served, tmp_path, monkeypatch):
    source = _write(_cohort(served, bad=False), tmp_path / "in.csv")
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    output = tmp_path / "out.csv"
    import os

    for pid in (os.getpid(), os.getpid() + 1):  # the names a predictable scheme would use
        (tmp_path / f".out.csv.{pid}.tmp").symlink_to(victim)
    seen = []
    original = batch._temporary

    def spy(final):
        fd, path = original(final)
        seen.append(path)
        return fd, path

    monkeypatch.setattr(batch, "_temporary", spy)
    score_file(served.predictor, source, output, progress=False)
    assert victim.read_text() == "precious"
    assert read_output(output)["patient_id"].tolist() == served.frame["patient_id"].tolist()
    assert seen and all(p.parent == tmp_path and p.name.startswith(f".out.csv.{os.getpid()}.") for p in seen)
    assert (output.stat().st_mode & 0o077) == 0


def test_a_rerun_removes_temporaries_left_by_a_killed_run(served, tmp_path):
    source = _write(_cohort(served, bad=False), tmp_path / "in.csv")
    dead = 2**22 + 12345  # above the default pid_max, so no process has it
    left = [tmp_path / f".out.csv.{dead}.abc123.tmp", tmp_path / f".out.csv.errors.csv.{dead}.x1.tmp"]
    for path in left:
        path.write_text("patient rows")
    other = tmp_path / f".other.csv.{dead}.abc.tmp"
    other.write_text("not ours")
    score_file(served.predictor, source, tmp_path / "out.csv", progress=False)
    assert not any(p.exists() for p in left)
    assert other.exists()


def test_disk_full_leaves_nothing_and_raises_the_os_error(served, tmp_path, monkeypatch):
    import errno

    source = _write(_cohort(served, bad=False), tmp_path / "in.csv")

    def full(self, frame):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(batch._Writer, "write", full)
    with pytest.raises(OSError) as caught:
        score_file(served.predictor, source, tmp_path / "out.csv", progress=False)
    assert caught.value.errno == errno.ENOSPC
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]
