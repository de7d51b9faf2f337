"""Re-calibration (anomaly/recalibration.py) on both backends, and the guarantee `anomaly evaluate` states."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import anomaly
from anomaly.bundle import CALIBRATION, load_bundle
from anomaly.calibration import conformal_threshold
from anomaly.cli import app
from anomaly.data import load_samples
from anomaly.detector import Detector
from anomaly.export import export_onnx
from anomaly.recalibration import recalibrate
from anomaly.training import SAMPLE_MANIFEST


@pytest.fixture(scope="module")
def normals() -> list[Path]:
    """The sample's 16 test normals: new normal images the model did not calibrate on."""
    return [s.image for s in load_samples(str(SAMPLE_MANIFEST)) if s.split == "test" and s.label == 0]


@pytest.fixture(scope="module")
def normals_folder(normals, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("new-normals")
    for i, path in enumerate(normals):
        (folder / f"n{i}{path.suffix}").write_bytes(path.read_bytes())
    return folder


def test_recalibrating_a_bundle_keeps_the_weights_and_thresholds_its_normals(trained, normals, normals_folder,
                                                                             tmp_path):
    out = tmp_path / "recalibrated"
    result = recalibrate(str(trained.bundle_path), str(normals_folder), fpr=0.1, out=out, tracking=False)
    assert result.bundle_path == out and result.registration is None
    assert result.previous == trained.calibration
    # independent: the scores of the same images through the original bundle's predictions
    scores = [p.score for p in Detector.load(trained.bundle_path, device="cpu").predict(normals)]
    expected = conformal_threshold(scores, 0.1)  # 16 normals, 10%: k = ceil(17 * 0.9) = 16
    new = result.calibration
    assert (new.n_images, new.conformal_rank, new.fpr_bound) == (16, 16, pytest.approx(1 / 17))
    assert new.image_threshold == pytest.approx(expected.threshold, rel=1e-6)
    reloaded, original = load_bundle(out), load_bundle(trained.bundle_path)
    assert reloaded.calibration == new and reloaded.config == original.config
    assert all(np.array_equal(reloaded.state_dict[k], v) for k, v in original.state_dict.items())


def test_recalibrating_an_onnx_export_gives_the_torch_thresholds(trained, normals_folder, tmp_path):
    export = export_onnx(Detector.load(trained.bundle_path, device="cpu"), tmp_path / "onnx")
    on_torch = recalibrate(str(trained.bundle_path), str(normals_folder), fpr=0.1, out=tmp_path / "t", tracking=False)
    on_onnx = recalibrate(str(export), str(normals_folder), fpr=0.1, out=tmp_path / "o", tracking=False,
                          backend="onnxruntime")
    a, b = on_torch.calibration, on_onnx.calibration
    assert b.conformal_rank == a.conformal_rank and b.fpr_bound == a.fpr_bound
    for field in ("image_threshold", "pixel_threshold", "score_mean", "map_low", "map_high"):
        assert getattr(b, field) == pytest.approx(getattr(a, field), abs=1e-4), field
    reloaded = Detector.load(tmp_path / "o", backend="onnxruntime")  # an export again: same graph, new calibration
    assert reloaded.model is None and reloaded.calibration == b
    assert (tmp_path / "o" / "model.onnx").read_bytes() == (export / "model.onnx").read_bytes()
    with pytest.raises(ValueError, match="ONNX export, which has no weights to register"):
        recalibrate(str(export), str(normals_folder), backend="onnxruntime")
    with pytest.raises(ValueError, match="give an output folder"):
        recalibrate(str(trained.bundle_path), str(normals_folder), tracking=False)


def test_evaluate_states_the_guarantee_in_words_and_json(trained, normals_folder, tmp_path):
    runner = CliRunner()
    args = ["evaluate", "--model", str(trained.bundle_path), "--data", str(normals_folder), "--split", "train",
            "--no-painted"]
    report = json.loads(runner.invoke(app, [*args, "--json"]).output)
    c = trained.calibration
    assert report["fpr_bound"] == c.fpr_bound and report["guarantee"] == c.guarantee()
    alarms = round(report["false_alarm_rate"] * report["n_normal"])
    low, high = report["false_alarm_interval"]
    assert low <= alarms / 16 <= high and (alarms == 0) == (low == 0)
    text = " ".join(runner.invoke(app, args).output.split())
    assert f"The threshold's guarantee: a new normal image, exchangeable with the {c.n_images} held-out normals" in text
    assert f"False alarms {report['false_alarm_rate']:.1%} of 16 (95% interval" in text


def test_an_older_bundle_without_a_guarantee_loads_and_says_so(trained, tmp_path):
    old = tmp_path / "old"
    Detector.load(trained.bundle_path, device="cpu").save(old)
    values = json.loads((old / CALIBRATION).read_text())
    for field in ("conformal_rank", "fpr_bound"):
        del values[field]
    (old / CALIBRATION).write_text(json.dumps({**values, "method": "gaussian-tail"}))
    detector = Detector.load(old, device="cpu")
    assert detector.calibration.fpr_bound is None
    text = " ".join(CliRunner().invoke(app, ["evaluate", "--model", str(old), "--no-painted"]).output.split())
    assert "The threshold's guarantee: no finite-sample guarantee recorded" in text


def test_nothing_outside_the_detector_reaches_into_its_model():
    """The one-door rule: the CLI, MLflow logging, evaluation and re-calibration use Detector's public methods."""
    root = Path(anomaly.__file__).parent
    files = [*root.glob("cli/*.py"), *(root / name for name in ("run_logging.py", "evaluation.py",
                                                                 "recalibration.py", "export.py", "painted.py"))]
    for file in files:
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("model", "scorer"):
                value = node.value
                assert not (isinstance(value, ast.Name) and "detector" in value.id), f"{file.name}:{node.lineno}"
