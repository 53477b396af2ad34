"""The command line under hostile input and signals: a message and an exit code, never a traceback or a leftover."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from painml.cli.serve import serve_app

runner = CliRunner()
SRC = Path(__file__).resolve().parents[2] / "src"


def _args(served, *more: str) -> list[str]:
    return [*more, "--model", served.store.model_uri, "--tracking-uri", served.store.uri]


HOSTILE = {
    "deep nesting": b"[" * 50_000 + b"]" * 50_000,
    "deep nesting in a value": b'{"age": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    "huge integer": b'{"age": ' + b"9" * 5_000 + b"}",
    "NaN literal": b'{"age": NaN, "sex": "male"}',
    "Infinity": b'{"age": -Infinity}',
    "repeated key": b'{"age": 50, "age": 60}',
    "latin-1": '{"sex": "männlich"}'.encode("latin-1"),
    "utf-16": '{"age": 50}'.encode("utf-16"),
    "lone surrogate": b'{"patient_id": "\\ud800", "age": 50}',
    "lone surrogate key": b'{"\\udfff": 1}',
}
NEEDLES = {
    "deep nesting": "nested too deeply",
    "deep nesting in a value": "nested too deeply",
    "huge integer": "digits",
    "NaN literal": "field 'age' is NaN, which is not a JSON value",
    "Infinity": "field 'age' is -Infinity, which is not a JSON value",
    "repeated key": "field 'age' is given twice",
    "latin-1": "not UTF-8",
    "utf-16": "UTF-16",
    "lone surrogate": "lone surrogate",
    "lone surrogate key": "lone surrogate",
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_json_gets_a_message_and_exit_1(served, tmp_path, name):
    path = tmp_path / "patient.json"
    path.write_bytes(HOSTILE[name])
    result = runner.invoke(serve_app, _args(served, "predict", "--input", str(path)))
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert NEEDLES[name] in result.output


@pytest.mark.parametrize("ident", ["[/]", "[bold red]x[/bold red]", "[link=http://x]y[/link]", "a\\[b"])
def test_identifiers_are_printed_literally(served, ident):
    record = {"patient_id": ident, "site": ident, "age": 60, "burning": True}
    result = runner.invoke(serve_app, _args(served, "predict"), input=json.dumps(record))
    assert result.exit_code == 0, result.output
    assert ident in result.stdout
    assert f"site {ident!r} was not in the training data" in result.stdout


def test_a_full_disk_is_a_message(served, tmp_path, monkeypatch):
    import errno

    from painml.serving import batch

    source = tmp_path / "in.csv"
    served.frame.to_csv(source, index=False)

    def full(self, frame):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(batch._Writer, "write", full)
    result = runner.invoke(
        serve_app, _args(served, "batch", "--input", str(source), "--output", str(tmp_path / "o.csv"), "--no-progress")
    )
    assert result.exit_code == 2
    assert "no space left on the device" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def _start_batch(served, source: Path, output: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    code = "from painml.cli.serve import serve_app; serve_app()"
    args = [sys.executable, "-c", code, *_args(served, "batch", "-i", str(source), "-o", str(output))]
    args += ["--no-progress", "--chunksize", "300", "--reasons", "3", "--threads", "1"]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")]


def _wait_for_temporary(process: subprocess.Popen, folder: Path, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while not _temporaries(folder):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the batch never started writing"
        time.sleep(0.05)


@pytest.fixture
def big_input(served, tmp_path) -> Path:
    source = tmp_path / "in.csv"
    pd.concat([served.frame] * 200, ignore_index=True).to_csv(source, index=False)  # 12,000 rows
    return source


def test_sigterm_stops_a_batch_cleanly(served, tmp_path, big_input):
    output = tmp_path / "out.csv"
    process = _start_batch(served, big_input, output)
    _wait_for_temporary(process, tmp_path)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert b"Traceback" not in stderr and b"SIGTERM: stopped" in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_a_rerun_after_sigkill_leaves_no_temporary(served, tmp_path, big_input):
    output = tmp_path / "out.csv"
    process = _start_batch(served, big_input, output)
    _wait_for_temporary(process, tmp_path)
    process.kill()
    process.communicate(timeout=60)
    assert _temporaries(tmp_path)  # killed outright: nothing could clean up
    small = tmp_path / "small.csv"
    served.frame.to_csv(small, index=False)
    result = runner.invoke(serve_app, _args(served, "batch", "-i", str(small), "-o", str(output), "--no-progress"))
    assert result.exit_code == 0, result.output
    assert not _temporaries(tmp_path)
    assert len(pd.read_csv(output)) == len(served.frame)
