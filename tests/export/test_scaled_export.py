"""Export of a model with a scale: the graph scores fixed tiles, the tiling is the Detector's, so an exported model
maps a non-square image like torch does."""

from __future__ import annotations

import json

import numpy as np
import pytest

from anomaly.bundle import CONFIG, read_config
from anomaly.detector import Detector
from anomaly.export import EXPORT_INFO, export_onnx
from tests.tiling.scaled import TILE, texture, train_scaled

from .test_export import MAP_TOLERANCE, SCORE_TOLERANCE


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scaled")
    result = train_scaled(folder)
    return result.bundle_path, export_onnx(Detector.load(result.bundle_path, device="cpu"), folder / "onnx")


def test_the_export_keeps_the_scale_and_takes_tiles(exported):
    _, folder = exported
    config = read_config(folder / CONFIG)
    assert config.scale == 1.0 and config.image_size == TILE
    assert json.loads((folder / EXPORT_INFO).read_text())["inputs"]["image"] == ["batch", 1, *TILE]


def test_onnxruntime_matches_torch_on_a_non_square_image(exported):
    bundle, folder = exported
    image = texture((500, 1250), 7)
    image[100:110, 1100:1110] = 1.0
    small = texture((45, 70), 8)  # under a tile: padded
    torch_predictions = Detector.load(bundle, device="cpu").predict_arrays([image[None], small[None]])
    onnx_predictions = Detector.load(folder, backend="onnxruntime").predict_arrays([image[None], small[None]])
    for want, got in zip(torch_predictions, onnx_predictions):
        assert got.anomaly_map.shape == want.anomaly_map.shape
        assert np.abs(got.anomaly_map - want.anomaly_map).max() <= MAP_TOLERANCE
        assert abs(got.score - want.score) <= SCORE_TOLERANCE and got.is_anomalous == want.is_anomalous
    assert torch_predictions[0].anomaly_map.shape == (500, 1250)
