"""A 500x1250 image through a live server of a model trained at scale 1: map, mask and regions at 500x1250."""

from __future__ import annotations

import base64
import io

import httpx
import numpy as np
import pytest

from anomaly.detector import Detector
from service.config import Settings
from tests.tiling.scaled import save_png, texture, train_scaled

from .conftest import LIMITS, start


@pytest.fixture(scope="module")
def scaled_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scaled")
    result = train_scaled(folder)
    image = texture((500, 1250), 7)
    image[100:110, 1100:1110] = 1.0
    png = save_png(image, folder / "wide.png")
    for live in start(Settings(model=str(result.bundle_path), **dict(LIMITS, max_request_bytes=4_000_000))):
        yield live, result.bundle_path, png


def test_a_500x1250_image_is_mapped_at_its_own_size_over_http(scaled_server):
    live, bundle, png = scaled_server
    with httpx.Client(base_url=live.url, timeout=60) as client:
        assert client.get("/v1/model").json()["scale"] == Detector.load(bundle).config.scale == 1.0
        response = client.post("/v1/predict", params={"heatmap": "raw"},
                               files=[("files", (png.name, png.read_bytes(), "image/png"))])
    assert response.status_code == 200, response.text
    [item] = response.json()["results"]
    assert (item["width"], item["height"]) == (1250, 500)
    assert (item["heatmap"]["width"], item["heatmap"]["height"]) == (1250, 500)
    values = np.frombuffer(base64.b64decode(item["heatmap"]["data"]), "<f4").reshape(500, 1250)
    [want] = Detector.load(bundle, device="cpu").predict([png])
    np.testing.assert_allclose(values, want.anomaly_map, atol=1e-5)
    assert np.isclose(item["score"], want.score, rtol=1e-5) and item["is_anomalous"]
    x0, y0, x1, y1 = item["regions"][0]["bbox"]
    assert x0 <= 1100 and x1 >= 1110 and y0 <= 100 and y1 >= 110 and x1 <= 1250 and y1 <= 500
