"""Live servers for the service tests: the real app under uvicorn on 127.0.0.1, talked to over HTTP."""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from service.app import create_app
from service.config import Settings

SAMPLE = Path(__file__).parents[2] / "anomaly" / "sample"
NORMAL_JPG = SAMPLE / "MT_Free" / "Imgs" / "exp4_num_148998.jpg"
DEFECT_JPG = next((SAMPLE / "MT_Break" / "Imgs").glob("*.jpg"))
LIMITS = dict(max_request_bytes=1_000_000, max_pixels=1_000_000, max_files=4, max_batch_size=8, max_wait_ms=10)
KEY = "s3cret-key"
# a keyed server that drops slow bodies fast, with the default body limit (uploads of tens of MB get in)
HOSTILE = dict(LIMITS, api_key=KEY, max_request_bytes=40 * 2**20, body_timeout_s=2.0, body_idle_timeout_s=1.0)


CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
HAVE_CHROMIUM = CHROMIUM.exists() and CHROMEDRIVER.exists()


@contextlib.contextmanager
def chromium(profile: Path, offline: bool = False):
    """Debian's headless chromium under Selenium. `offline`: every host name but 127.0.0.1 fails to
    resolve, and the performance log records each request the page makes (`get_log("performance")`)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--window-size=1280,1600", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    if offline:
        options.add_argument("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


class LiveServer:
    """uvicorn.Server in a thread, on a socket bound before start (no free-port race)."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings)
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", lifespan="on"))
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server at {self.url} did not start")
            time.sleep(0.02)
        return self

    def wait_ready(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while httpx.get(f"{self.url}/readyz").status_code != 200:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.url} not ready after {timeout} s")
            time.sleep(0.05)

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()


def start(settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(settings) as live:
        live.wait_ready()
        yield live


@pytest.fixture(scope="session")
def bundle(trained, tmp_path_factory) -> Path:
    """A private copy of the tiny trained bundle (reload tests replace theirs)."""
    return Path(shutil.copytree(trained.bundle_path, tmp_path_factory.mktemp("served") / "bundle"))


@pytest.fixture(scope="session")
def server(bundle) -> Iterator[LiveServer]:
    """No API key, small limits: 1 MB per request, 1 Mpixel per image, 4 files."""
    yield from start(Settings(model=str(bundle), **LIMITS))


@pytest.fixture(scope="session")
def hostile(bundle) -> Iterator[LiveServer]:
    """API key KEY, 40 MB bodies, 2 s for a whole body and 1 s of silence at most."""
    yield from start(Settings(model=str(bundle), **HOSTILE))


@pytest.fixture(scope="session")
def client(server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c
