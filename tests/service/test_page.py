"""The page at / in headless Debian chromium (Selenium + chromedriver): upload, then score, verdict, overlay."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .conftest import NORMAL_JPG

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                                reason="Debian chromium and chromedriver are not installed")


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "profile", ignore_errors=True)


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
