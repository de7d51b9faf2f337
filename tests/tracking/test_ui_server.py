"""`anomaly ui` as a real MLflow server on the embedded default store: a calibration run logged
through it over HTTP, everything read back over its REST API, the registered model loaded by alias
through it, and the run page checked in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from anomaly.cli import app
from anomaly.detector import Detector

API = "/api/2.0/mlflow"


def rest(url: str, path: str, **params) -> dict:
    response = httpx.get(f"{url}{API}/{path}", params=params, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def metrics_of(run: dict) -> dict[str, float]:
    return {m["key"]: m["value"] for m in run["data"].get("metrics", [])}


@pytest.fixture(scope="module")
def normals(tmp_path_factory, run) -> Path:
    """A folder of normal images the model did not train on."""
    folder = tmp_path_factory.mktemp("new-normals")
    for sample in [s for s in run.samples if s.label == 0 and s.split == "test"]:
        shutil.copy(sample.image, folder)
    return folder


@pytest.fixture(scope="module")
def calibrated(ui, run, normals, tmp_path_factory):
    """`anomaly calibrate` against the server: a new version with the same weights, promoted."""
    out = tmp_path_factory.mktemp("recalibrated") / "bundle"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", ui)
        result = CliRunner().invoke(app, ["calibrate", "--model", "models:/tiny@champion", "--data", str(normals),
                                          "--fpr", "0.2", "--experiment", "served", "--promote", "--out", str(out)])
    assert result.exit_code == 0, result.output
    run_id = re.search(r"MLflow run (\w+)", result.output)[1]
    return run_id, out


def test_the_ui_serves_the_embedded_store_the_training_was_logged_to(ui, run):
    logged = rest(ui, "runs/get", run_id=run.registration.run_id)["run"]
    metrics = metrics_of(logged)
    assert metrics["calibration/image_threshold"] == pytest.approx(run.calibration.image_threshold)
    assert {k: v for k, v in metrics.items() if k.startswith("painted/")} == pytest.approx(
        {f"painted/{k}": v for k, v in run.painted_aurocs.items()}) and run.painted_aurocs
    assert logged["info"]["status"] == "FINISHED"
    history = rest(ui, "metrics/get-history", run_id=run.registration.run_id, metric_key="val/loss")["metrics"]
    assert [m["step"] for m in history] == [0, 1, 2]


def test_calibrate_through_the_server_registers_a_new_version(ui, run, calibrated):
    run_id, out = calibrated
    calibration = json.loads((out / "calibration.json").read_text())
    logged = rest(ui, "runs/get", run_id=run_id)["run"]
    metrics, tags = metrics_of(logged), {t["key"]: t["value"] for t in logged["data"]["tags"]}
    assert metrics["calibration/image_threshold"] == pytest.approx(calibration["image_threshold"])
    assert metrics["previous/image_threshold"] == pytest.approx(run.calibration.image_threshold)
    assert calibration["target_fpr"] == 0.2 and calibration["image_threshold"] != run.calibration.image_threshold
    assert tags["anomaly.kind"] == "calibrate" and tags["source.version"] == "tiny/1"
    artifact = httpx.get(f"{ui}/get-artifact", params={"path": "calibration.json", "run_uuid": run_id}, timeout=30)
    assert artifact.json() == calibration
    alias = rest(ui, "registered-models/alias", name="tiny", alias="champion")["model_version"]
    assert alias["version"] == "2" and alias["run_id"] == run_id


def test_champion_loaded_through_the_server_scores_like_the_local_bundle(ui, run, calibrated, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", ui)
    images = [s.image for s in run.samples if s.split == "test"]
    local = Detector.load(run.bundle_path)
    served = Detector.load("models:/tiny@champion")
    assert served.version == "2" and served.info["name"] == "tiny"
    assert served.calibration.image_threshold == pytest.approx(json.loads(
        (calibrated[1] / "calibration.json").read_text())["image_threshold"])
    for key, value in local.model.state_dict().items():  # same weights, new calibration
        assert np.array_equal(served.model.state_dict()[key].cpu().numpy(), value.cpu().numpy()), key
    assert [p.score for p in served.predict(images)] == pytest.approx([p.score for p in local.predict(images)],
                                                                       rel=1e-6)


def test_run_page_in_a_browser_lists_the_metrics(ui, run, browser, tmp_path):
    experiment = rest(ui, "runs/get", run_id=run.registration.run_id)["run"]["info"]["experiment_id"]
    browser.get(f"{ui}/#/experiments/{experiment}/runs/{run.registration.run_id}")
    deadline = time.monotonic() + 60
    wanted = ("calibration/image_threshold", "painted/drawn_pixel_auroc", "test/image_auroc", "train-ssim-ae")
    while time.monotonic() < deadline and not all(w in browser.page_source for w in wanted):
        time.sleep(0.5)
    shot = os.environ.get("ANOMALY_UI_SCREENSHOT") or str(tmp_path / "run-page.png")
    browser.save_screenshot(shot)
    missing = [w for w in wanted if w not in browser.page_source]
    assert not missing, f"run page lacks {missing}; screenshot: {shot}"
