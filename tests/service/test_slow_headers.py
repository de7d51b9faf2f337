"""Slowloris: request headers trickled a byte at a time are answered 408 and dropped within
ANOMALY_HEADER_TIMEOUT_S (service/slow_headers.py), while normal and keep-alive clients are not cut."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import uvicorn

from service.config import Settings, get_settings

from .conftest import LIMITS, NORMAL_JPG, LiveServer

TIMEOUT_S = 1.0


class HeaderTimedServer(LiveServer):
    """The live server with the protocol `anomaly serve` passes to uvicorn."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", lifespan="on",
                                                    http="service.slow_headers:HeaderTimeoutProtocol"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)


@pytest.fixture(scope="module")
def timed(bundle):
    assert Settings().header_timeout_s == 10  # the default
    with pytest.MonkeyPatch.context() as env:  # read as `anomaly serve` and plain uvicorn read it
        env.setenv("ANOMALY_HEADER_TIMEOUT_S", str(TIMEOUT_S))
        get_settings.cache_clear()
        try:
            with HeaderTimedServer(Settings(model=str(bundle), **LIMITS)) as live:
                live.wait_ready()
                yield live
        finally:
            get_settings.cache_clear()


def _connect(server: LiveServer) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def trickle(server: LiveServer, limit: float = 10.0) -> tuple[bytes, float]:
    """Send a request line and a header a byte every 0.3 s; what came back and when the server closed
    (seconds after connecting), or `limit` if it never did."""
    with _connect(server) as sock:
        start = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHo")
        sock.settimeout(0.3)
        data = b""
        while time.monotonic() - start < limit:
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                try:
                    sock.send(b"s")  # "Hosssss...": the headers never end
                except OSError:
                    pass
                continue
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
        return data, time.monotonic() - start


def _response(sock: socket.socket) -> bytes:
    """One whole response (headers and Content-Length body); its status line."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(65536)
    return head.split(b"\r\n")[0]


def test_trickled_headers_are_answered_408_and_dropped(timed):
    data, closed_after = trickle(timed)
    print(f"\ntrickled headers dropped after {closed_after:.2f} s (ANOMALY_HEADER_TIMEOUT_S={TIMEOUT_S})")
    assert data.startswith(b"HTTP/1.1 408 "), data
    assert TIMEOUT_S - 0.1 < closed_after < TIMEOUT_S + 1.0


def test_a_silent_connection_is_closed_without_an_answer(timed):
    with _connect(timed) as sock:
        start = time.monotonic()
        assert sock.recv(4096) == b""
        assert time.monotonic() - start < TIMEOUT_S + 1.0


def test_fifty_slow_clients_are_all_dropped(timed):
    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(lambda _: trickle(timed), range(50)))
    slowest = max(after for _, after in results)
    print(f"\n50 concurrent trickling clients: all dropped, slowest after {slowest:.2f} s")
    assert all(data.startswith(b"HTTP/1.1 408 ") for data, _ in results)
    assert slowest < TIMEOUT_S + 2.0


def test_normal_and_keep_alive_clients_are_not_cut(timed):
    request = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n"
    with _connect(timed) as sock:
        for pause in (0, 0, 1.5 * TIMEOUT_S):  # two quick requests, then one after an idle longer than the timeout
            time.sleep(pause)
            sock.sendall(request)
            assert _response(sock) == b"HTTP/1.1 200 OK"
    with _connect(timed) as sock:  # headers in pieces that finish in time, then a body after the timeout
        body = (b"--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.jpg\"\r\n"
                b"Content-Type: image/jpeg\r\n\r\n" + NORMAL_JPG.read_bytes() + b"\r\n--b--\r\n")
        head = (f"POST /v1/predict HTTP/1.1\r\nHost: test\r\nContent-Length: {len(body)}\r\n"
                "Content-Type: multipart/form-data; boundary=b\r\n\r\n").encode()
        for piece in (head[:10], head[10:40], head[40:]):
            sock.sendall(piece)
            time.sleep(0.25 * TIMEOUT_S)
        time.sleep(1.5 * TIMEOUT_S)
        sock.sendall(body)
        assert _response(sock) == b"HTTP/1.1 200 OK"
