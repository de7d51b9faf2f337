"""ONNX export and the onnxruntime backend: parity with torch on the bundled sample images, for every
model in the registry (read when the tests run, so new models are covered without editing this file)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from anomaly.bundle import CALIBRATION, CONFIG, Bundle
from anomaly.calibration import calibrate
from anomaly.config import TrainConfig
from anomaly.data import decode_image, load_samples
from anomaly.backends import score_images
from anomaly.detector import Detector, preprocess
from anomaly.export import EXPORT_INFO, ONNX, export_onnx
from anomaly.models import OPTIONS, build_model
from anomaly.models.draem.options import DraemOptions
from anomaly.training import SAMPLE_MANIFEST

MAP_TOLERANCE = SCORE_TOLERANCE = 1e-4  # max abs difference, documented in docs/export.md


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    """Four real sample images of several sizes (two normal, two defective), decoded grey."""
    samples = load_samples(str(SAMPLE_MANIFEST))
    picked = [s for s in samples if s.label == 0][:2] + [s for s in samples if s.label == 1][:2]
    return [decode_image(s.image, 1) for s in picked]


def tiny_bundle(name: str, images: list[np.ndarray], **options) -> Bundle:
    """An untrained 64x64 model of `name` (seeded), calibrated on `images` so the Detector can run."""
    torch.manual_seed(0)
    config = TrainConfig(model=name, image_size=(64, 64), width=8, latent_dim=32,
                         options=options).model_config(channels=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_model(config).eval()
        scores, maps = score_images(model, config, preprocess(images, config.image_size))
        calibration = calibrate(scores.numpy(), maps[:, 0].numpy())
    return Bundle(config, model.state_dict(), calibration)


def max_differences(a: Detector, b: Detector, images: list[np.ndarray], batch_size: int) -> tuple[float, float]:
    """Max abs difference of full-size maps and of scores between two detectors' predictions."""
    pa, pb = a.predict(images, batch_size=batch_size), b.predict(images, batch_size=batch_size)
    assert max(float(p.anomaly_map.std()) for p in pa) > 0, "a constant map would make parity vacuous"
    maps = max(float(np.abs(x.anomaly_map - y.anomaly_map).max()) for x, y in zip(pa, pb))
    return maps, max(abs(x.score - y.score) for x, y in zip(pa, pb))


OTHER_SEG_STRIDE = 3 - DraemOptions().seg_stride  # draem's segmenter at the resolution its default does not use


@pytest.mark.parametrize("name, options", [
    *(pytest.param(name, {}, id=name) for name in sorted(OPTIONS)),
    pytest.param("draem", {"seg_stride": OTHER_SEG_STRIDE}, id=f"draem-seg_stride{OTHER_SEG_STRIDE}")])
def test_onnxruntime_matches_torch_for_every_model(name, options, images, tmp_path):
    """Export must work for every registered model: a model that cannot be exported fails here."""
    bundle = tiny_bundle(name, images, **options)
    folder = export_onnx(bundle, tmp_path / name)
    torch_detector = Detector(bundle, device="cpu")
    onnx_detector = Detector.load(folder, backend="onnxruntime")
    assert onnx_detector.model is None and onnx_detector.calibration == bundle.calibration
    maps, scores = max_differences(torch_detector, onnx_detector, images, batch_size=3)  # batches of 3 and 1:
    print(f"{name}: max abs difference maps {maps:.2e}, scores {scores:.2e}")  # the graph was traced with 2
    assert maps <= MAP_TOLERANCE and scores <= SCORE_TOLERANCE, name


def test_export_folder_holds_graph_config_calibration_and_parity(trained, tmp_path):
    folder = export_onnx(Detector.load(trained.bundle_path, device="cpu"), tmp_path / "onnx")
    assert sorted(p.name for p in folder.iterdir()) == sorted([ONNX, CONFIG, CALIBRATION, EXPORT_INFO])
    for name in (CONFIG, CALIBRATION):
        assert json.loads((folder / name).read_text()) == json.loads((trained.bundle_path / name).read_text())
    info = json.loads((folder / EXPORT_INFO).read_text())
    assert info["opset"] >= 17 and max(info["parity_max_abs_difference"].values()) <= MAP_TOLERANCE

    import onnx

    graph = onnx.load(str(folder / ONNX)).graph
    assert [i.name for i in graph.input] == ["image"] and [o.name for o in graph.output] == ["anomaly_map", "score"]
    dims = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 1, 64, 64]


def test_a_plain_bundle_loads_on_onnxruntime_by_exporting_in_memory(trained):
    paths = [s.image for s in trained.samples if s.split == "test"][:4]
    torch_detector = Detector.load(trained.bundle_path)
    torch_p = torch_detector.predict(paths)
    onnx_p = Detector.load(trained.bundle_path, backend="onnxruntime").predict(paths)
    for a, b in zip(torch_p, onnx_p):
        assert abs(a.score - b.score) <= SCORE_TOLERANCE and a.is_anomalous == b.is_anomalous
        np.testing.assert_allclose(a.anomaly_map, b.anomaly_map, atol=MAP_TOLERANCE, rtol=0)
        # masks agree wherever the map is not within the tolerance of the pixel threshold
        near = np.abs(a.anomaly_map - torch_detector.calibration.pixel_threshold) <= MAP_TOLERANCE
        assert np.array_equal(a.mask[~near], b.mask[~near])


def test_backend_errors_name_the_fix(trained, tmp_path):
    with pytest.raises(ValueError, match="unknown backend 'tensorrt'; expected one of torch, onnxruntime"):
        Detector.load(trained.bundle_path, backend="tensorrt")
    folder = export_onnx(Detector.load(trained.bundle_path), tmp_path / "onnx")
    with pytest.raises(FileNotFoundError, match="backend='onnxruntime'"):
        Detector.load(folder)  # an export has no weights for the torch backend


def test_a_model_with_randomness_at_inference_fails_export_loudly(trained, tmp_path, monkeypatch):
    detector = Detector.load(trained.bundle_path)
    model_class = type(detector.to_bundle().build_model())
    clean = model_class.anomaly_map
    noisy = lambda self, x: clean(self, x) + 1e-2 * torch.rand_like(x[:, :1])  # noqa: E731 - e.g. random masks
    monkeypatch.setattr(model_class, "anomaly_map", noisy)
    with pytest.raises(RuntimeError, match="disagrees with torch"):
        export_onnx(detector, tmp_path / "noisy")
    assert not (tmp_path / "noisy").exists()
