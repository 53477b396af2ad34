"""The engine-agnostic core: a stream of frames scores as the batch command scores the file they came from."""

from __future__ import annotations

import numpy as np
import pandas as pd

from painml.serving.batch import read_output, score_file
from painml.serving.frames import PROBLEM_COLUMNS, score_frames


def test_frames_score_as_the_batch_command_and_problems_name_the_patient(served, tmp_path):
    frame = served.frame.copy()
    frame.loc[4, "pain_intensity"] = 14
    frame["ward"] = "w1"
    source = tmp_path / "in.csv"
    frame.to_csv(source, index=False)
    score_file(served.predictor, source, tmp_path / "out.parquet", reasons=2, progress=False)
    expected = read_output(tmp_path / "out.parquet")

    chunks = pd.read_csv(source, chunksize=25, dtype={"patient_id": str, "ward": str})
    results = list(score_frames(served.predictor, chunks, reasons=2))
    got = pd.concat([scored for scored, _ in results], ignore_index=True)
    problems = pd.concat([p for _, p in results], ignore_index=True)

    assert list(got.columns) == list(expected.columns)
    for column in expected.columns:
        if pd.api.types.is_float_dtype(expected[column]):
            np.testing.assert_array_equal(got[column].to_numpy(float), expected[column].to_numpy(float), column)
        else:
            assert got[column].fillna("").tolist() == expected[column].fillna("").tolist(), column
    assert list(problems.columns) == list(PROBLEM_COLUMNS)
    assert problems[["patient_id", "column", "value"]].values.tolist() == [
        [frame.loc[4, "patient_id"], "pain_intensity", "14"]
    ]
