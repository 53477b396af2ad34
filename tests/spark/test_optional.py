"""pyspark stays optional: nothing but painml.spark imports it, even when it is installed."""

from __future__ import annotations

import subprocess
import sys


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
