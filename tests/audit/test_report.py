"""report.html opened from disk in headless Debian chromium: images load, rows match results.csv,
the verdict filter hides rows. Plus the histogram, without a browser."""

import csv
import os
import shutil

import pytest

from anomaly.audit import AuditOptions, expand_inputs, run_audit
from anomaly.audit.report import histogram_svg

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def report(detector, inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    paths, _ = expand_inputs([str(inputs)])
    # the median normal score as threshold: about half the images on each side of it
    summary = run_audit(detector, paths, AuditOptions(out=out, threshold=detector.calibration.score_p50))
    assert summary.anomalous and summary.anomalous < summary.images - summary.errors
    return out


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip("Debian chromium / chromedriver not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_report_in_a_browser(report, browser):
    from selenium.webdriver.common.by import By

    browser.get((report / "report.html").as_uri())
    with (report / "results.csv").open() as f:
        table = {r["path"]: r for r in csv.DictReader(f)}
    rows = browser.find_elements(By.CSS_SELECTOR, "#results tbody tr")
    shown = [(r.get_attribute("data-path"), r.get_attribute("data-verdict")) for r in rows]
    assert sorted(shown) == sorted((p, r["verdict"]) for p, r in table.items())
    scores = [float(table[p]["score"]) for p, v in shown if v != "error"]
    assert scores == sorted(scores, reverse=True) and [v for _, v in shown][-3:] == ["error"] * 3

    images = browser.find_elements(By.CSS_SELECTOR, "#results img")
    assert len(images) == len(table) - 3  # every scored image has its overlay thumbnail
    assert all(browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", i) > 0
               for i in images)
    assert browser.find_element(By.ID, "histogram").is_displayed()

    browser.find_element(By.CSS_SELECTOR, "button[data-filter=anomalous]").click()
    visible = [r.get_attribute("data-verdict") for r in rows if r.is_displayed()]
    assert visible and set(visible) == {"anomalous"}
    assert browser.find_element(By.ID, "shown").text == str(len(visible))
    assert len(visible) == sum(r["verdict"] == "anomalous" for r in table.values())
    browser.find_element(By.CSS_SELECTOR, "button[data-filter=all]").click()
    assert all(r.is_displayed() for r in rows)


def test_report_is_self_contained(report):
    text = (report / "report.html").read_text()
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in text
    assert "<script src" not in text and 'rel="stylesheet"' not in text


def test_histogram_marks_the_threshold():
    svg = histogram_svg([0.1, 0.2, 0.2, 0.9], threshold=0.5, bins=4)
    assert svg.count("<rect") == 4 and "threshold 0.5" in svg and svg.count('fill="#c33"') == 2
    assert "No scored images" in histogram_svg([], 0.5)
