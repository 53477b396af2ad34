"""The tree kernels' disk cache does not depend on where painml's files are (MLflow copies them per model)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import painml

PACKAGE = Path(painml.__file__).parent


def test_every_copy_of_painml_uses_one_kernel_cache_under_numba_cache_dir(tmp_path):
    code = "from painml.model.compiled import trees; print(trees._raw_kernel._cache._cache_path)"
    cache = tmp_path / "numba-cache"
    paths = []
    for name in ("copy-a", "copy-b"):  # as MLflow copies the package into each model it logs or downloads
        shutil.copytree(PACKAGE, tmp_path / name / "painml", ignore=shutil.ignore_patterns("__pycache__"))
        env = {"PYTHONPATH": str(tmp_path / name), "NUMBA_CACHE_DIR": str(cache), "PATH": "/usr/bin:/bin"}
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        paths.append(result.stdout.strip())
    assert paths[0] == paths[1] == str(cache / "painml-trees")
