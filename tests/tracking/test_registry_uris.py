"""Registry URIs: the one parser, what an alias points to now, and registry loads that leave no
temporary folders behind (service reloads and Ray actors load by URI again and again)."""

from __future__ import annotations

import tempfile

import pytest

from anomaly import tracking
from anomaly.detector import Detector


@pytest.mark.parametrize("uri, parsed", [
    ("models:/tiny@champion", ("alias", "tiny", "champion")),
    ("models:/tiny/3", ("version", "tiny", "3")),
    ("models:/tiny/latest", ("version", "tiny", "latest")),
    ("runs:/0123abcd/model", ("run", "0123abcd", "model")),
    ("runs/mtd", None),
    ("/abs/models/bundle", None),
])
def test_parse_model_uri(uri, parsed):
    assert tracking.parse_model_uri(uri) == parsed


@pytest.mark.parametrize("uri", ["models:/", "models:/tiny", "models:/tiny@", "runs:/", "runs:/abc"])
def test_parse_model_uri_rejects_malformed_registry_uris(uri):
    with pytest.raises(tracking.RegistryError, match="expected models:/<name>@<alias>"):
        tracking.parse_model_uri(uri)


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
