"""A tracked tiny training in MLflow's embedded default store (a temp working directory), and the
real `anomaly ui` server on that store, booting in the background while the model trains."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")

from anomaly import tracking
from anomaly.config import TrainConfig
from anomaly.training import TrainResult, train
from tests.conftest import sample_subset

TINY = dict(model="ssim-ae", image_size=(64, 64), epochs=3, width=8, latent_dim=32, batch_size=8, seed=0,
            accelerator="cpu")
EXPERIMENT = "tiny"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="package")
def manifest(tmp_path_factory) -> Path:
    """A small subset of the bundled sample (absolute paths): 16 train normals, 3 + 3 test images."""
    return sample_subset(tmp_path_factory.mktemp("data") / "tiny.csv", 16, 3, 3)


@pytest.fixture(scope="package")
def home(tmp_path_factory):
    """A working directory with no MLFLOW_TRACKING_URI: the embedded default store lives here.
    `anomaly ui` is started on it right away (its boot takes a while) and killed at the end."""
    path = tmp_path_factory.mktemp("home")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    port = free_port()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(path)
        patch.delenv("MLFLOW_TRACKING_URI")
        patch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "1")  # short runs get system metrics too
        tracking.client().search_experiments()  # create the store's tables before the server opens it
        with open(path / "ui.log", "w") as log:
            process = subprocess.Popen([sys.executable, "-m", "anomaly", "ui", "--port", str(port)], cwd=path,
                                       env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield SimpleNamespace(path=path, url=f"http://127.0.0.1:{port}", process=process)
        finally:
            os.killpg(process.pid, signal.SIGTERM)  # the server and its uvicorn worker
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


@pytest.fixture(scope="package")
def run(home, manifest) -> TrainResult:
    """One tracked training, logged to the embedded store, registered as `tiny` v1."""
    config = TrainConfig(data=str(manifest), out=str(home.path / "bundle"), experiment=EXPERIMENT, **TINY)
    return train(config, progress=False)


@pytest.fixture(scope="package")
def ui(home, run) -> str:
    """The URL of `anomaly ui` once /health answers (bounded wait)."""
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        if home.process.poll() is not None:
            pytest.fail(f"anomaly ui exited with {home.process.returncode}:\n{(home.path / 'ui.log').read_text()}")
        try:
            if httpx.get(f"{home.url}/health", timeout=2).status_code == 200:
                return home.url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"anomaly ui did not answer /health in 150 s:\n{(home.path / 'ui.log').read_text()}")


@pytest.fixture
def browser(tmp_path):
    """Headless Debian chromium driven by Selenium (skipped where it is not installed)."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("chromium / chromedriver are not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for_text(driver, wanted: tuple[str, ...], seconds: float = 60) -> str:
    """The page's visible text once it holds every string of `wanted` (or when `seconds` have passed)."""
    deadline = time.monotonic() + seconds
    while True:
        text = driver.find_element("tag name", "body").text
        if all(w in text for w in wanted) or time.monotonic() > deadline:
            return text
        time.sleep(0.5)
