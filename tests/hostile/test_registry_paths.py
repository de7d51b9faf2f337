"""A registered model's MLmodel names its bundle folder; an edited one (`..`, an absolute path, a
link) must not point `Detector.load("models:/...")` at a folder outside the model's own."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from anomaly import tracking
from anomaly.detector import Detector
from anomaly.model_uri import RegistryError, bundle_folder


def mlmodel(path) -> dict:
    return {"flavors": {"python_function": {"artifacts": {"bundle": {"path": path, "uri": "/build/bundle"}}}}}


@pytest.fixture
def model_dir(tmp_path) -> Path:
    """A downloaded model's folder, as MLflow lays it out, and a folder beside it."""
    (tmp_path / "model" / "artifacts" / "bundle").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    return tmp_path / "model"


def test_the_bundle_path_mlflow_writes_is_read_inside_the_model_folder(model_dir):
    found = bundle_folder(model_dir, yaml.safe_load(yaml.safe_dump(mlmodel("artifacts/bundle"))), "models:/m/1")
    assert found == (model_dir / "artifacts" / "bundle").resolve()


@pytest.mark.parametrize("path,message", [
    ("../elsewhere", r"'../elsewhere' leads to .*/elsewhere, outside the model's own folder"),
    ("artifacts/../../elsewhere", "outside the model's own folder"),
    ("ABSOLUTE", "must be relative to the model's own folder, got '/"),
    ("artifacts/link", "outside the model's own folder"),  # a symbolic link out
    (["artifacts"], r"must be relative to the model's own folder, got \['artifacts'\]"),
])
def test_a_bundle_path_that_leaves_the_model_folder_is_refused(model_dir, path, message):
    (model_dir / "artifacts" / "link").symlink_to(model_dir.parent / "elsewhere")
    path = str(model_dir.parent / "elsewhere") if path == "ABSOLUTE" else path
    with pytest.raises(RegistryError, match=f"^models:/m/1: its MLmodel's bundle path .*{message}"):
        bundle_folder(model_dir, mlmodel(path), "models:/m/1")


@pytest.mark.parametrize("document", [None, [], {"flavors": {"python_function": {}}}, mlmodel("")])
def test_an_mlmodel_without_a_bundle_is_not_an_anomaly_model(model_dir, document):
    with pytest.raises(RegistryError, match="is not an anomaly model: its MLmodel has no 'bundle' artifact"):
        bundle_folder(model_dir, document, "models:/m/1")


@pytest.fixture
def registered(trained, tmp_path, monkeypatch) -> tuple[str, list[Path]]:
    """The tiny bundle registered in the session's MLflow store; its stored MLmodel files."""
    monkeypatch.chdir(tmp_path)
    image = next(s.image for s in trained.samples if s.split == "test")
    with tracking.start_run("hostile-paths", "edited MLmodel", {}) as run_id:
        version = tracking.log_bundle(trained.bundle_path, "hostile-paths", Path(image).read_bytes())
    stored = [p for p in tracking.artifact_root().rglob("MLmodel") if yaml.safe_load(p.read_text())["run_id"] == run_id]
    assert stored
    return f"models:/hostile-paths/{version}", stored


@pytest.mark.parametrize("escape", ["absolute", "dots"])
def test_detector_load_refuses_an_edited_mlmodel_pointing_outside(registered, trained, tmp_path, escape):
    """The target is a valid bundle: without the check, the edited model would load it and serve."""
    uri, stored = registered
    assert Detector.load(uri, device="cpu").config == trained.model_config
    other = Path(shutil.copytree(trained.bundle_path, tmp_path / "other"))
    target = str(other) if escape == "absolute" else "../" * 32 + str(other).lstrip(os.sep)
    for path in stored:
        document = yaml.safe_load(path.read_text())
        document["flavors"]["python_function"]["artifacts"]["bundle"]["path"] = target
        path.write_text(yaml.safe_dump(document))
    with pytest.raises(RegistryError, match=f"^{uri}: its MLmodel's bundle path"):
        Detector.load(uri, device="cpu")
