"""Happy paths over real HTTP: predict (options), heatmap, model, health, page, OpenAPI."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from anomaly.data import decode_image
from anomaly.detector import Detector

from .conftest import DEFECT_JPG, NORMAL_JPG


def _files(*paths):
    return [("files", (p.name, p.read_bytes(), "image/jpeg")) for p in paths]


def test_predict_matches_the_detector_in_process(client, bundle):
    response = client.post("/v1/predict", files=_files(NORMAL_JPG, DEFECT_JPG))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"]["uri"] == str(bundle)
    expected = Detector.load(bundle).predict([NORMAL_JPG, DEFECT_JPG])
    for item, path, want in zip(body["results"], (NORMAL_JPG, DEFECT_JPG), expected):
        width, height = Image.open(path).size
        assert (item["filename"], item["width"], item["height"]) == (path.name, width, height)
        assert np.isclose(item["score"], want.score, rtol=1e-5)
        assert np.isclose(item["normalised_score"], want.normalised_score, rtol=1e-5)
        assert item["is_anomalous"] == want.is_anomalous and item["threshold"] == want.threshold
        assert len(item["regions"]) == len(want.regions) and item["heatmap"] is None and item["error"] is None
        for region, r in zip(item["regions"], want.regions):
            assert tuple(region["bbox"]) == r.bbox and region["area"] == r.area


def test_threshold_override_moves_verdict_and_normalisation(client):
    files = _files(NORMAL_JPG)
    score = client.post("/v1/predict", files=files).json()["results"][0]["score"]
    below = client.post("/v1/predict", params={"threshold": score / 2}, files=files).json()["results"][0]
    at = client.post("/v1/predict", params={"threshold": score}, files=files).json()["results"][0]
    assert below["is_anomalous"] and below["threshold"] == score / 2 and below["normalised_score"] > 0.5
    assert at["is_anomalous"] and abs(at["normalised_score"] - 0.5) < 1e-9  # 0.5 exactly at the threshold


def test_heatmap_png_and_raw_are_at_the_image_resolution(client):
    width, height = Image.open(NORMAL_JPG).size
    png = client.post("/v1/predict", params={"heatmap": "png", "regions": "false"},
                      files=_files(NORMAL_JPG)).json()["results"][0]
    assert png["regions"] is None and png["heatmap"]["media_type"] == "image/png"
    overlay = Image.open(io.BytesIO(base64.b64decode(png["heatmap"]["data"])))
    assert overlay.size == (width, height) and overlay.mode == "RGB"
    raw = client.post("/v1/predict", params={"heatmap": "raw"}, files=_files(NORMAL_JPG)).json()["results"][0]
    values = np.frombuffer(base64.b64decode(raw["heatmap"]["data"]), "<f4").reshape(height, width)
    assert (raw["heatmap"]["width"], raw["heatmap"]["height"]) == (width, height) and np.isfinite(values).all()


def test_heatmap_endpoint_returns_the_calibrated_overlay_png(client, bundle):
    response = client.post("/v1/heatmap", files={"file": (NORMAL_JPG.name, NORMAL_JPG.read_bytes())})
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    got = np.asarray(Image.open(io.BytesIO(response.content)))
    detector = Detector.load(bundle)
    image = decode_image(NORMAL_JPG, detector.config.channels)
    [prediction] = detector.predict_arrays([image])
    np.testing.assert_allclose(got, detector.heatmap(image, prediction), atol=1)  # same fixed colour scale


def test_model_health_and_ready(client, bundle):
    model = client.get("/v1/model").json()
    assert model["uri"] == str(bundle) and model["architecture"] == "ssim-ae"
    assert model["input_size"] == [64, 64] and model["scale"] is None and model["channels"] == 1 and model["ready"] is True
    assert model["image_threshold"] > 0 and model["pixel_threshold"] > 0
    calibration = Detector.load(bundle).calibration
    assert model["threshold_method"] == "conformal" and model["fpr_bound"] == calibration.fpr_bound
    assert model["guarantee"] == calibration.guarantee() and "split conformal" in model["guarantee"]
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_page_openapi_and_unknown_routes(client):
    page = client.get("/")
    assert page.status_code == 200 and 'type="file"' in page.text and "v1/predict" in page.text
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/predict", "/v1/heatmap", "/v1/model", "/v1/model/reload", "/healthz", "/readyz", "/metrics"} <= set(paths)
    assert client.get("/docs").status_code == 200
    missing = client.get("/v2/nothing")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
