"""The page at / in headless Debian chromium (Selenium + chromedriver): upload, then score, verdict, overlay."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import HAVE_CHROMIUM, NORMAL_JPG, chromium

pytestmark = pytest.mark.skipif(not HAVE_CHROMIUM, reason="Debian chromium and chromedriver are not installed")


@pytest.fixture
def browser(tmp_path):
    with chromium(tmp_path / "profile") as driver:
        yield driver


def test_upload_shows_score_verdict_and_overlay(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server.url + "/")
    browser.find_element(By.ID, "file").send_keys(str(NORMAL_JPG))
    WebDriverWait(browser, 30).until(EC.text_to_be_present_in_element((By.ID, "status"), "done"))
    assert browser.find_element(By.ID, "verdict").text in ("normal", "anomalous")
    assert float(browser.find_element(By.ID, "score").text) > 0
    assert 0 < float(browser.find_element(By.ID, "normalised").text) < 1
    overlay = browser.find_element(By.ID, "overlay")
    assert overlay.is_displayed() and overlay.get_attribute("src").startswith("data:image/png;base64,")
    assert browser.execute_script("return arguments[0].naturalWidth", overlay) > 0  # the PNG decoded


def test_a_bad_file_shows_the_service_error(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    browser.get(server.url + "/")
    browser.find_element(By.ID, "file").send_keys(str(bad))
    WebDriverWait(browser, 30).until(EC.text_to_be_present_in_element((By.ID, "status"), "error"))
    assert "not an image" in browser.find_element(By.ID, "status").text


def test_the_page_overlay_boxes_each_region_the_api_reports(bundle, browser, tmp_path):
    """A copy of the tiny bundle whose pixel threshold is the median normal pixel: regions on any image."""
    import base64
    import io
    import json
    import shutil

    import httpx
    import numpy as np
    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    from service.config import Settings

    from .conftest import LIMITS, start

    sensitive = Path(shutil.copytree(bundle, tmp_path / "sensitive"))
    calibration = json.loads((sensitive / "calibration.json").read_text())
    calibration["pixel_threshold"] = calibration["map_low"]
    (sensitive / "calibration.json").write_text(json.dumps(calibration))
    for server in start(Settings(model=str(sensitive), **LIMITS)):
        with NORMAL_JPG.open("rb") as f:
            [result] = httpx.post(server.url + "/v1/predict", files={"files": f}, timeout=30).json()["results"]
        assert result["regions"]
        browser.get(server.url + "/")
        browser.find_element(By.ID, "file").send_keys(str(NORMAL_JPG))
        WebDriverWait(browser, 30).until(EC.text_to_be_present_in_element((By.ID, "status"), "done"))
        source = browser.find_element(By.ID, "overlay").get_attribute("src")
    shown = np.asarray(Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))).convert("RGB"))
    white = np.all(shown == 255, axis=2)
    boxed = [r for r in result["regions"] if white[r["bbox"][1], r["bbox"][0]:r["bbox"][2]].all()]
    # the last box drawn is whole; a later box's label may cover part of an earlier one
    assert result["regions"][-1] in boxed and len(boxed) >= len(result["regions"]) / 2
