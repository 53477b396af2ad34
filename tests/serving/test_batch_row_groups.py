"""Batch Parquet output is cut into row groups, so engines can read one file in several tasks."""

from __future__ import annotations

import pyarrow.parquet as pq

from painml.serving import batch
from painml.serving.batch import score_file


def test_parquet_output_row_groups_are_capped(served, tmp_path, monkeypatch):
    monkeypatch.setattr(batch, "PARQUET_ROW_GROUP_ROWS", 30)
    source = tmp_path / "in.parquet"
    served.frame.to_parquet(source, index=False)
    output = tmp_path / "out.parquet"
    score_file(served.predictor, source, output, chunksize=100, progress=False)
    metadata = pq.ParquetFile(output).metadata
    sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    assert max(sizes) == 30 and sum(sizes) == len(served.frame)
