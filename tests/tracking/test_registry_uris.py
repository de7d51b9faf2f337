"""Registry URIs: the one parser, what an alias points to now, registry loads that leave no
temporary folders behind (service reloads and Ray actors load by URI again and again), and mlflow
kept inside anomaly/tracking.py."""

from __future__ import annotations

import ast
import re
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from anomaly import model_uri, tracking
from anomaly.cli import app
from anomaly.detector import Detector

PACKAGE = Path(__file__).parents[2] / "anomaly"


def test_only_tracking_imports_mlflow():
    """mlflow_model.py is the pyfunc model that mlflow itself loads; everything else goes through tracking."""
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name in ("tracking.py", "mlflow_model.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] == "mlflow" for n in names), f"{path.relative_to(PACKAGE)} imports mlflow"


@pytest.mark.parametrize("uri, parsed", [
    ("models:/tiny@champion", ("alias", "tiny", "champion")),
    ("models:/tiny/3", ("version", "tiny", "3")),
    ("models:/tiny/latest", ("version", "tiny", "latest")),
    ("runs:/0123abcd/model", ("run", "0123abcd", "model")),
    ("runs/mtd", None),
    ("/abs/models/bundle", None),
])
def test_parse_model_uri(uri, parsed):
    assert model_uri.parse_model_uri(uri) == parsed
    assert tracking.parse_model_uri is model_uri.parse_model_uri and tracking.RegistryError is model_uri.RegistryError


@pytest.mark.parametrize("uri", ["models:/", "models:/tiny", "models:/tiny@", "runs:/", "runs:/abc"])
def test_parse_model_uri_rejects_malformed_registry_uris(uri):
    with pytest.raises(model_uri.RegistryError, match="expected models:/<name>@<alias>"):
        model_uri.parse_model_uri(uri)
    with pytest.raises(model_uri.RegistryError, match="cannot read model URI"):
        Detector.load(uri)


def test_alias_version_is_the_version_the_alias_points_to_now(run):
    assert tracking.alias_version("models:/tiny@champion") == "1"
    assert tracking.alias_version("models:/tiny/1") is None
    assert tracking.alias_version(f"runs:/{run.registration.run_id}/model") is None
    assert tracking.alias_version(str(run.bundle_path)) is None


@pytest.mark.parametrize("uri, names", [
    ("models:/nope@champion", ["'nope'", "'tiny'"]),
    ("models:/tiny@production", ["'production'", "champion"]),
])
def test_alias_version_names_a_missing_model_or_alias(run, uri, names):
    with pytest.raises(tracking.RegistryError) as error:
        tracking.alias_version(uri)
    assert all(name in str(error.value) for name in names), str(error.value)


def test_registry_loads_leave_no_temporary_folders(run, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    image = next(s.image for s in run.samples if s.split == "test")
    expected = Detector.load(run.bundle_path).predict([image])[0].score
    for uri in ("models:/tiny@champion", "models:/tiny@champion", "models:/tiny/1",
                f"runs:/{run.registration.run_id}/model"):
        detector = Detector.load(uri, device="cpu")
        assert detector.info["pinned"] in ("models:/tiny/1", uri)
        assert detector.predict([image])[0].score == pytest.approx(expected, rel=1e-6)  # usable after cleanup
    onnx = Detector.load("models:/tiny@champion", device="cpu", backend="onnxruntime")
    assert onnx.predict([image])[0].score == pytest.approx(expected, rel=1e-4)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_tracked_recalibration_without_out_leaves_no_bundle_behind(run, manifest, tmp_path, monkeypatch):
    from anomaly.cli.calibrate import recalibrate

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    _, new, bundle, registration = recalibrate("models:/tiny/1", str(manifest), fpr=0.2, experiment="leak-check",
                                               register_as="tiny-recalibrated")
    assert bundle is None and registration.name == "tiny-recalibrated" and registration.version == "1"
    assert Detector.load("models:/tiny-recalibrated/1").calibration.image_threshold == new.image_threshold
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_export_from_an_alias_logs_to_the_version_it_exported(run, tmp_path):
    result = CliRunner().invoke(app, ["export", "--model", "models:/tiny@champion", "--out", str(tmp_path / "onnx")])
    assert result.exit_code == 0, result.output
    location = f"runs:/{run.registration.run_id}/onnx"
    assert re.search(r"logged to MLflow as (\S+)", result.output)[1] == location
    assert tracking.client().get_model_version("tiny", "1").tags["onnx_export"] == location
