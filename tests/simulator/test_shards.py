"""Sharded simulation: independent, reproducible shards with their own patient IDs, in row groups."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from painml.cli.main import app
from painml.record.schema import load_records
from painml.simulator import simulate as simulate_module
from painml.simulator.shards import shard_sizes, simulate_shard, simulate_sharded
from painml.simulator.simulate import simulate


def test_shards_are_reproducible_alone_and_together():
    cohort = simulate_sharded("pain_clinic", 1001, seed=5, shards=3)
    assert shard_sizes(1001, 3) == [334, 334, 333]
    assert cohort["patient_id"].tolist() == [f"S5-{i}" for i in range(1, 1002)]
    again = simulate_shard("pain_clinic", 1001, 5, 1, 3)
    pd.testing.assert_frame_equal(again, cohort.iloc[334:668].reset_index(drop=True))
    single = simulate("pain_clinic", 1001, seed=5)
    assert not cohort.drop(columns="patient_id").equals(single.drop(columns="patient_id"))
    pd.testing.assert_frame_equal(simulate_sharded("pain_clinic", 1001, seed=5, shards=1), single)
    assert len(load_records(cohort).frame) == 1001


def test_too_many_shards_is_refused():
    with pytest.raises(ValueError, match="cannot fill 4 shards"):
        shard_sizes(3, 4)


def test_cli_writes_shards_in_row_groups(tmp_path, monkeypatch):
    monkeypatch.setattr(simulate_module, "PARQUET_ROW_GROUP_ROWS", 150)
    out, again = tmp_path / "cohort.parquet", tmp_path / "again.parquet"
    for path in (out, again):
        result = CliRunner().invoke(app, ["simulate", "--n", "400", "--seed", "2", "--shards", "2", "--out", str(path)])
        assert result.exit_code == 0, result.output
    assert out.read_bytes() == again.read_bytes()
    parquet = pq.ParquetFile(out)
    assert [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)] == [150, 150, 100]
    frame = pd.read_parquet(out)
    assert frame["patient_id"].is_unique and len(frame) == 400
