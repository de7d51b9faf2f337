"""/docs (Swagger UI) and /redoc render in headless chromium with the network off: every host but
127.0.0.1 fails to resolve, and the performance log shows that no request left the server's address
(ReDoc's credit logo on its CDN is blocked by the page's Content-Security-Policy before it is sent)."""

from __future__ import annotations

import json

import httpx
import pytest

from .conftest import HAVE_CHROMIUM, chromium

pytestmark = pytest.mark.skipif(not HAVE_CHROMIUM, reason="Debian chromium and chromedriver are not installed")


@pytest.fixture
def offline(tmp_path):
    with chromium(tmp_path / "profile", offline=True) as driver:
        yield driver


def _sent(driver) -> list[str]:
    """The URL of every request the page sent: Network.requestWillBeSent in the performance log, less
    those the browser blocked itself (Network.loadingFailed with a blockedReason, e.g. "csp")."""
    messages = [json.loads(entry["message"])["message"] for entry in driver.get_log("performance")]
    blocked = {m["params"]["requestId"] for m in messages
               if m["method"] == "Network.loadingFailed" and m["params"].get("blockedReason")}
    return [m["params"]["request"]["url"] for m in messages
            if m["method"] == "Network.requestWillBeSent" and m["params"]["requestId"] not in blocked]


def _operations(url: str) -> dict[str, str]:
    """path -> summary of every operation in the schema."""
    schema = httpx.get(url + "/openapi.json").json()
    return {path: op["summary"] for path, ops in schema["paths"].items() for op in ops.values()}


def _left_the_machine(driver, url: str) -> list[str]:
    """Network requests (http, https, ws, wss) to anywhere but the server (chrome://, data: and blob: stay in)."""
    return [u for u in _sent(driver) if u.startswith(("http:", "https:", "ws:", "wss:"))
            and not u.startswith(url + "/")]


def test_swagger_ui_lists_every_operation_offline(server, offline, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    operations = _operations(server.url)
    offline.get(server.url + "/docs")
    WebDriverWait(offline, 30).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) == len(operations))
    paths = {e.get_attribute("data-path") for e in offline.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
    assert paths == set(operations)
    assert offline.find_element(By.CSS_SELECTOR, ".info .title").text.startswith("anomaly")
    offline.save_screenshot(str(tmp_path / "docs-offline.png"))  # docs/img/docs-offline.png is this one
    assert _left_the_machine(offline, server.url) == []


def test_redoc_renders_every_operation_offline(server, offline):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    operations = _operations(server.url)
    offline.get(server.url + "/redoc")
    WebDriverWait(offline, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".api-content h2"))
    headings = {e.text for e in offline.find_elements(By.CSS_SELECTOR, ".api-content h2")}
    assert set(operations.values()) <= headings
    assert _left_the_machine(offline, server.url) == []
