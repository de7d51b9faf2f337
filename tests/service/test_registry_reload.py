"""Serving `models:/<name>@champion` from a temporary SQLite MLflow store: a moved alias is picked up by
POST /v1/model/reload and by polling; an alias pointing nowhere keeps the old model serving."""

from __future__ import annotations

import json
import shutil
import time

import httpx
import pytest

from service.config import Settings

from .conftest import LIMITS, NORMAL_JPG, start

tracking = pytest.importorskip("anomaly.tracking")


def _register(bundle, name: str) -> str:
    with tracking.start_run("service-tests", "bundle", {}):
        return tracking.log_bundle(bundle, name, NORMAL_JPG.read_bytes())


@pytest.fixture
def registry(trained, tmp_path, monkeypatch):
    """Versions 1 and 2 of `svc` (v2: image threshold + 0.25), champion on v1."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    first = _register(trained.bundle_path, "svc")
    second_bundle = shutil.copytree(trained.bundle_path, tmp_path / "v2")
    calibration = json.loads((second_bundle / "calibration.json").read_text())
    calibration["image_threshold"] += 0.25
    (second_bundle / "calibration.json").write_text(json.dumps(calibration))
    second = _register(second_bundle, "svc")
    client = tracking.client()
    client.set_registered_model_alias("svc", "champion", first)
    return client, first, second


def test_moved_alias_is_picked_up_by_reload_and_by_polling(registry):
    client, first, second = registry
    for live in start(Settings(model="models:/svc@champion", reload_interval_s=0.5, **LIMITS)):
        model = httpx.get(live.url + "/v1/model", timeout=30).json()
        assert (model["name"], model["version"], model["uri"]) == ("svc", first, "models:/svc@champion")

        client.set_registered_model_alias("svc", "champion", second)
        reloaded = httpx.post(live.url + "/v1/model/reload", timeout=60).json()
        assert reloaded["current"]["version"] == second
        assert reloaded["changed"] == (reloaded["previous"]["version"] == first)  # unless polling came first
        scored = httpx.post(live.url + "/v1/predict", files={"files": ("a.jpg", NORMAL_JPG.read_bytes())}).json()
        assert scored["model"]["version"] == second and scored["model"]["run_id"]

        client.set_registered_model_alias("svc", "champion", first)  # back, without a request: polling
        deadline = time.monotonic() + 30
        while httpx.get(live.url + "/v1/model").json()["version"] != first and time.monotonic() < deadline:
            time.sleep(0.2)
        assert httpx.get(live.url + "/v1/model").json()["version"] == first

        client.delete_registered_model_alias("svc", "champion")  # the alias is gone: reload fails loudly
        failed = httpx.post(live.url + "/v1/model/reload", timeout=60)
        assert failed.status_code == 502 and "champion" in failed.json()["detail"]
        assert httpx.post(live.url + "/v1/predict", files={"files": ("a.jpg", NORMAL_JPG.read_bytes())}).status_code == 200
