"""Spark scoring in local mode (loopback, no UI): the same rows, columns and values as ``score_file``.

Skipped when pyspark (``painml[spark]``) or Java is missing; ``.ci/run`` installs both.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark", reason="pyspark is the optional extra painml[spark]")
if shutil.which("java") is None:
    pytest.skip("Spark needs Java", allow_module_level=True)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def spark():
    """One local[2] session for the module: two cores, loopback only, no web UI."""
    from painml.spark import session

    spark = session("local[2]")
    yield spark
    spark.stop()


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """Two Parquet files of simulated patients as the simulator writes them; one row has an impossible age."""
    from painml.simulator.simulate import simulate

    folder = tmp_path_factory.mktemp("extract")
    first = simulate("pain_clinic", 120, seed=11)
    first["ward"] = [f"w{i % 3}" for i in range(len(first))]  # an extra column, carried through
    first.loc[7, "age"] = 300
    first.to_parquet(folder / "a.parquet")
    second = simulate("pain_clinic", 80, seed=12)
    second["ward"] = "w9"
    second.to_parquet(folder / "b.parquet")
    return folder, first.loc[7, "patient_id"]


@pytest.fixture(scope="module")
def scored_by_spark(spark, served, cohort):
    from painml.spark import release, score

    folder, _ = cohort
    scored, problems = score(spark.read.parquet(str(folder)), served.predictor, reasons=3)
    out = scored.toPandas(), problems.toPandas()
    cached = spark.sparkContext._jsc.getPersistentRDDs().size()
    release(scored)
    assert cached == 1 and spark.sparkContext._jsc.getPersistentRDDs().size() == 0
    return out


def _by_patient(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("patient_id", kind="stable").reset_index(drop=True)


def test_spark_scores_every_column_as_score_file(scored_by_spark, served, cohort, tmp_path):
    from painml.serving.batch import read_output, score_file

    folder, bad_patient = cohort
    expected = []
    for name in ("a.parquet", "b.parquet"):
        score_file(served.predictor, folder / name, tmp_path / name, reasons=3, progress=False)
        expected.append(read_output(tmp_path / name))
    expected = _by_patient(pd.concat(expected, ignore_index=True))
    got = _by_patient(scored_by_spark[0])

    assert list(got.columns) == list(expected.columns)
    assert bad_patient not in set(got["patient_id"])
    for column in expected.columns:
        if pd.api.types.is_float_dtype(expected[column]):
            np.testing.assert_array_equal(got[column].to_numpy(float), expected[column].to_numpy(float), column)
        else:
            assert got[column].fillna("").tolist() == expected[column].fillna("").tolist(), column


def test_a_bad_row_is_a_problem_row_and_the_job_succeeds(scored_by_spark, cohort):
    folder, bad_patient = cohort
    problems = scored_by_spark[1]
    assert list(problems.columns) == ["patient_id", "source", "column", "value", "expected"]
    assert problems["patient_id"].tolist() == [bad_patient]
    assert problems["source"].iloc[0].endswith("a.parquet")
    assert problems["column"].iloc[0] == "age"
    assert problems["value"].iloc[0] == "300"


def test_the_batch_command_writes_part_files_and_errors_all_at_once(spark, served, cohort, tmp_path):
    from typer.testing import CliRunner

    from painml.cli.main import app

    folder, bad_patient = cohort
    out = tmp_path / "scored"
    args = ["serve", "batch", "--engine", "spark", "--input", str(folder / "*.parquet"), "--output", str(out)]
    args += ["--model", served.store.model_uri, "--tracking-uri", served.store.uri, "--spark-master", "local[2]"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output  # rows were set aside
    scored = pd.read_parquet(out)
    assert len(scored) == 199 and bad_patient not in set(scored["patient_id"])
    errors = pd.read_csv(next((out / "_errors").glob("part-*.csv")), dtype=str)
    assert errors["patient_id"].tolist() == [bad_patient]
    assert [p.name for p in tmp_path.iterdir()] == ["scored"]  # nothing left beside it

    missing = CliRunner().invoke(app, [*args[:5], str(tmp_path / "none-*.parquet"), *args[6:]])
    assert missing.exit_code == 2 and "no file matches" in missing.output


def test_spark_udf_route_gives_the_same_probabilities(spark, served, cohort):
    import mlflow.pyfunc

    from painml.spark import udf_input
    from painml.tracking import store

    folder, bad_patient = cohort
    store.use_store(served.store.uri)
    classes = served.predictor.classes
    result_type = ", ".join([*(f"p_{c} double" for c in classes), "predicted_class string"])
    udf = mlflow.pyfunc.spark_udf(spark, served.store.model_uri, result_type=result_type, env_manager="local")
    df = spark.read.parquet(str(folder / "b.parquet"))
    got = df.select("patient_id", udf(udf_input(df)).alias("out")).select("patient_id", "out.*").toPandas()
    expected = served.predictor.predict(folder / "b.parquet")
    got, expected = _by_patient(got), _by_patient(expected)
    for c in classes:
        np.testing.assert_array_equal(got[f"p_{c}"].to_numpy(), expected[f"p_{c}"].to_numpy())
    assert got["predicted_class"].tolist() == expected["predicted_class"].tolist()
