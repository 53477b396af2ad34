"""``import painml`` exposes the Python API without importing it: each name loads its module on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_import_painml_is_light_and_names_load_on_first_use():
    code = (
        "import sys, painml\n"
        "heavy = [m for m in ('pandas', 'mlflow', 'sklearn', 'painml.jobs.train') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "from painml.serving.predictor import Predictor\n"
        "assert painml.Predictor is Predictor\n"
        "assert 'painml.jobs.train' not in sys.modules\n"
        "assert painml.run_training.__module__ == 'painml.jobs.train'\n"
        "assert {'simulate', 'write_cohort', 'load_config', 'SchemaError'} <= set(dir(painml))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_an_unknown_name_is_an_attribute_error():
    import painml

    with pytest.raises(AttributeError, match="no attribute 'predictor'"):
        painml.predictor  # noqa: B018
