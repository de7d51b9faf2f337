"""API key, and model reload (explicit and polled) from a local bundle folder whose content changes."""

from __future__ import annotations

import json
import shutil
import time

import httpx
import pytest

from service.config import Settings

from .conftest import KEY, LIMITS, NORMAL_JPG, start


def test_every_route_but_health_page_and_docs_needs_the_key(hostile):
    files = {"files": ("a.jpg", NORMAL_JPG.read_bytes())}
    for method, path in (("POST", "/v1/predict"), ("POST", "/v1/heatmap"), ("GET", "/v1/model"),
                         ("POST", "/v1/model/reload"), ("GET", "/metrics"), ("GET", "/no/such/route")):
        for headers in ({}, {"X-API-Key": "wrong"}):
            response = httpx.request(method, hostile.url + path, headers=headers, timeout=30)
            assert response.status_code == 401, (path, headers)
            assert response.json()["code"] == "unauthorized" and "X-API-Key" in response.json()["detail"]
    for public in ("/healthz", "/readyz", "/", "/docs", "/redoc", "/openapi.json", "/docs-assets/swagger-ui.css"):
        assert httpx.get(hostile.url + public).status_code == 200, public
    ok = httpx.post(hostile.url + "/v1/predict", files=files, headers={"X-API-Key": KEY}, timeout=30)
    assert ok.status_code == 200 and ok.json()["results"][0]["score"] is not None
    bearer = httpx.get(hostile.url + "/metrics", headers={"Authorization": f"Bearer {KEY}"})
    assert bearer.status_code == 200
    schema = httpx.get(hostile.url + "/openapi.json").json()
    assert "APIKeyHeader" in schema["components"]["securitySchemes"]


def _bump_threshold(bundle, delta: float) -> None:
    """Rewrite the bundle's calibration with image_threshold + delta: a new model version in place."""
    path = bundle / "calibration.json"
    calibration = json.loads(path.read_text())
    calibration["image_threshold"] += delta
    path.write_text(json.dumps(calibration))


def _model(url: str) -> dict:
    return httpx.get(url + "/v1/model", timeout=30).json()


def test_reload_picks_up_a_replaced_bundle_and_survives_a_broken_one(trained, tmp_path):
    served = shutil.copytree(trained.bundle_path, tmp_path / "bundle")
    for live in start(Settings(model=str(served), **LIMITS)):
        before = httpx.post(live.url + "/v1/predict", files={"files": ("a.jpg", NORMAL_JPG.read_bytes())}).json()
        unchanged = httpx.post(live.url + "/v1/model/reload", timeout=30).json()
        assert unchanged["changed"] is False

        # "move the alias": a new calibration in the same folder
        _bump_threshold(served, 0.125)
        moved = httpx.post(live.url + "/v1/model/reload", timeout=30)
        assert moved.status_code == 200 and moved.json()["changed"] is True
        after = httpx.post(live.url + "/v1/predict", files={"files": ("a.jpg", NORMAL_JPG.read_bytes())}).json()
        assert after["results"][0]["threshold"] != before["results"][0]["threshold"]

        # a broken bundle: 502 naming the failure, and the previous model keeps serving
        (served / "weights.safetensors").write_bytes(b"not weights")
        failed = httpx.post(live.url + "/v1/model/reload", timeout=30)
        assert failed.status_code == 502 and failed.json()["code"] == "reload_failed"
        assert "still serving" in failed.json()["detail"]
        again = httpx.post(live.url + "/v1/predict", files={"files": ("a.jpg", NORMAL_JPG.read_bytes())})
        assert again.status_code == 200 and again.json()["results"][0]["threshold"] == after["results"][0]["threshold"]
        assert _model(live.url)["last_reload"]["ok"] is False
        assert 'anomaly_model_reloads_total{result="failed"} 1.0' in httpx.get(live.url + "/metrics").text


def test_polling_picks_up_a_change_without_a_request(trained, tmp_path):
    served = shutil.copytree(trained.bundle_path, tmp_path / "bundle")
    for live in start(Settings(model=str(served), reload_interval_s=0.2, **LIMITS)):
        threshold = _model(live.url)["image_threshold"]
        _bump_threshold(served, 0.25)
        deadline = time.monotonic() + 10
        while _model(live.url)["image_threshold"] == threshold and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _model(live.url)["image_threshold"] == pytest.approx(threshold + 0.25)
