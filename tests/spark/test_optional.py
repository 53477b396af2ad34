"""pyspark stays optional: nothing but painml.spark imports it, even when it is installed."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_painml_does_not_import_pyspark_outside_its_spark_package():
    code = (
        "import sys\n"
        "import painml.cli.main, painml.cli.serve, painml.serving.batch, painml.serving.frames\n"
        "import painml.serving.predictor, painml.record.schema, painml.jobs.train\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'pyspark')\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-W", "error::FutureWarning", "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_checking_records_with_pyspark_loaded_does_not_load_its_pandas_api():
    """pandera tries pyspark's pandas API (seconds, and a warning on every command) whenever pyspark is loaded."""
    pytest.importorskip("pyspark")
    code = (
        "import sys, warnings\n"
        "import pyspark\n"
        "warnings.simplefilter('error')\n"
        "from painml.record.schema import load_records\n"
        "from painml.simulator.simulate import simulate\n"
        "load_records(simulate('pain_clinic', 30, seed=1))\n"
        "assert 'pyspark.pandas' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
