"""Live servers for the service tests: the real app under uvicorn on 127.0.0.1, talked to over HTTP."""

from __future__ import annotations

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
NORMAL_JPG = SAMPLE / "MT_Free" / "Imgs" / "exp1_num_154549.jpg"
DEFECT_JPG = next((SAMPLE / "MT_Crack" / "Imgs").glob("*.jpg"))
LIMITS = dict(max_request_bytes=1_000_000, max_pixels=1_000_000, max_files=4, max_batch_size=8, max_wait_ms=10)


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
def client(server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c
