"""A damaged or incomplete model folder is one clear message naming the file (exit 2), never a traceback;
the compiled model serves alone when it is intact and the estimator is not needed."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from painml.cli.serve import serve_app
from painml.model.bundle import COMPILED_FILE, ESTIMATOR_FILE, METADATA_FILE, ModelBundle, ModelFolderError
from painml.serving.predictor import Predictor
from painml.tracking import registry


@pytest.fixture
def model_folder(trained_store, tmp_path) -> Path:
    """A private copy of the smoke champion's MLflow model folder (MLmodel + artifacts/bundle)."""
    bundle = registry.locate(trained_store.model_uri, trained_store.uri).folder
    target = tmp_path / "model"
    shutil.copytree(bundle.parent.parent, target)
    return target


def _bundle(model_folder: Path) -> Path:
    return registry.bundle_folder(model_folder)


def _predict(folder: Path):
    return CliRunner().invoke(serve_app, ["predict", "--model", str(folder), "--json", "age=61", "burning=true"])


def _refused(folder: Path, *needles: str) -> str:
    result = _predict(folder)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # a message and an exit code, not an exception
    for needle in needles:
        assert needle in result.output, result.output
    return result.output


def test_the_intact_folder_serves(model_folder):
    assert _predict(model_folder).exit_code == 0


def test_a_missing_estimator_serves_from_the_compiled_model(model_folder, caplog):
    bundle = _bundle(model_folder)
    expected = Predictor.from_folder(model_folder).predict_one({"age": 61, "burning": True}, reasons=3)
    (bundle / ESTIMATOR_FILE).unlink()
    with caplog.at_level(logging.WARNING):
        predictor = Predictor.from_folder(model_folder)
    assert predictor.predict_one({"age": 61, "burning": True}, reasons=3) == expected
    assert f"{ESTIMATOR_FILE} is missing" in caplog.text
    with pytest.raises(ModelFolderError, match=ESTIMATOR_FILE):
        predictor.bundle.estimator  # noqa: B018
    assert _predict(model_folder).exit_code == 0


def test_a_truncated_estimator_serves_from_the_compiled_model(model_folder, caplog):
    bundle = _bundle(model_folder)
    data = (bundle / ESTIMATOR_FILE).read_bytes()
    (bundle / ESTIMATOR_FILE).write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING):
        predictor = Predictor.from_folder(model_folder)
    assert predictor.predict_one({"age": 61}, reasons=2)["predicted_class"] in predictor.classes
    assert "not a readable skops file" in caplog.text
    assert _predict(model_folder).exit_code == 0


def test_a_truncated_estimator_without_compiled_model_is_refused(model_folder):
    bundle = _bundle(model_folder)
    data = (bundle / ESTIMATOR_FILE).read_bytes()
    (bundle / ESTIMATOR_FILE).write_bytes(data[: len(data) // 2])
    (bundle / COMPILED_FILE).unlink()
    _refused(model_folder, ESTIMATOR_FILE, "not a readable skops file")


def test_neither_model_file_is_refused(model_folder):
    bundle = _bundle(model_folder)
    (bundle / ESTIMATOR_FILE).unlink()
    (bundle / COMPILED_FILE).unlink()
    _refused(model_folder, "neither model.skops nor compiled.npz")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("{not json", "not readable JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"family": "gbm"}', "missing keys ['classes']"),
        ('{"family": "gbm", "classes": []}', "non-empty list of class names"),
    ],
)
def test_invalid_metadata_is_refused_by_name(model_folder, text, needle):
    (_bundle(model_folder) / METADATA_FILE).write_text(text)
    _refused(model_folder, METADATA_FILE, needle)


def test_invalid_mlmodel_is_refused_by_name(model_folder):
    shutil.move(_bundle(model_folder), model_folder / "elsewhere")  # MLmodel is then the only guide
    (model_folder / "MLmodel").write_text("flavors: [unclosed\n")
    _refused(model_folder, "MLmodel", "not readable YAML")


def test_an_mlmodel_pointing_outside_its_folder_is_refused(model_folder, tmp_path):
    outside = tmp_path / "outside"
    shutil.copytree(_bundle(model_folder), outside)
    shutil.rmtree(_bundle(model_folder))
    mlmodel = model_folder / "MLmodel"
    text = mlmodel.read_text()
    assert "path: artifacts/bundle" in text
    mlmodel.write_text(text.replace("path: artifacts/bundle", "path: ../outside"))
    _refused(model_folder, "points outside the model folder")


def test_untrusted_types_are_refused_by_name(model_folder):
    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    bundle = _bundle(model_folder)
    sio.dump(FunctionTransformer(func=shutil.rmtree), bundle / ESTIMATOR_FILE)
    (bundle / COMPILED_FILE).unlink()  # the estimator is then needed
    _refused(model_folder, ESTIMATOR_FILE, "refusing to load untrusted types")


def test_an_empty_compiled_model_is_refused_by_name(model_folder):
    (_bundle(model_folder) / COMPILED_FILE).write_bytes(b"")
    _refused(model_folder, COMPILED_FILE, "not a readable compiled model")


def test_a_changed_compiled_model_fails_its_sha256(model_folder):
    path = _bundle(model_folder) / COMPILED_FILE
    with np.load(path, allow_pickle=False) as stored:
        arrays = {k: stored[k] for k in stored.files}
    numeric = next(k for k, v in arrays.items() if k != "spec" and v.dtype.kind == "f" and v.size)
    arrays[numeric] = arrays[numeric] + 0.5  # a valid zip with valid CRCs, and a different model
    np.savez(path, **arrays)
    _refused(model_folder, COMPILED_FILE, "do not match the SHA-256")


def test_a_compiled_model_without_digest_is_rebuilt_from_the_estimator(model_folder, caplog):
    import json

    path = _bundle(model_folder) / COMPILED_FILE
    with np.load(path, allow_pickle=False) as stored:
        arrays = {k: stored[k] for k in stored.files}
    spec = json.loads(str(arrays.pop("spec")))
    spec.pop("sha256")
    np.savez(path, spec=np.array(json.dumps(spec)), **arrays)
    with caplog.at_level(logging.WARNING):
        bundle = ModelBundle.load(_bundle(model_folder))
        assert bundle.compiled() is not None
    assert "no SHA-256" in caplog.text
