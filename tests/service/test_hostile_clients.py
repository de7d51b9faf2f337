"""Hostile clients against a real server over raw sockets: the key is checked before the body is read,
a blank key refuses to start, stalled and trickling uploads are answered 408 and dropped in time."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import pytest
from pydantic import ValidationError

from service.config import Settings

from .conftest import HOSTILE, KEY, LiveServer

MULTIPART = b"multipart/form-data; boundary=b"


def _connect(server: LiveServer) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _head(path: str, length: int, key: str | None = None, content_type: bytes = MULTIPART) -> bytes:
    key_line = f"X-API-Key: {key}\r\n".encode() if key else b""
    return (f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {length}\r\n".encode() + key_line
            + b"Content-Type: " + content_type + b"\r\n\r\n")


def _answer(sock: socket.socket) -> tuple[bytes, float]:
    """The status line and when it arrived (monotonic), or b"" when the server closed without one."""
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n")[0], time.monotonic()


def _until_closed(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def time_to_401(server: LiveServer, body: bytes) -> float:
    """Seconds from the first byte sent to the status line, while `body` is still being sent behind it."""
    request = _head("/v1/predict", len(body)) + body
    with _connect(server) as sock:
        sender = threading.Thread(target=sock.sendall, args=(request,), daemon=True)
        start = time.monotonic()
        sender.start()
        status, at = _answer(sock)
        sender.join(timeout=10)
    assert status == b"HTTP/1.1 401 Unauthorized", status
    return at - start


def test_the_key_is_checked_before_the_body_is_read(hostile):
    # headers only, the body never comes: an answer can only come from the headers
    for content_type in (MULTIPART, b"multipart/form-data", b"text/plain"):  # the body need not even parse
        with _connect(hostile) as sock:
            sock.settimeout(5)
            sock.sendall(_head("/v1/predict", 900_000, content_type=content_type))
            status, _ = _answer(sock)
            assert status == b"HTTP/1.1 401 Unauthorized", (content_type, status)
    with _connect(hostile) as sock:  # malformed multipart, sent whole, without a key: 401, not 400
        sock.sendall(_head("/v1/predict", 15) + b"garbage garbage")
        assert _answer(sock)[0] == b"HTTP/1.1 401 Unauthorized"

    small = min(time_to_401(hostile, b"x" * 2_000) for _ in range(5))
    large = min(time_to_401(hostile, os.urandom(30 * 2**20)) for _ in range(3))
    print(f"\n401 without a key: small upload {small * 1000:.1f} ms, 30 MB upload {large * 1000:.1f} ms")
    assert large < small + 0.05


@pytest.mark.parametrize("key", ["", "   ", "\t"])
def test_a_blank_key_refuses_to_start(key, bundle):
    with pytest.raises(ValidationError, match="set but blank, which would leave every route open"):
        Settings(model=str(bundle), api_key=key)
    if key == "":  # the environment, through plain uvicorn: one line, no traceback, nonzero exit
        env = {**os.environ, "ANOMALY_MODEL": str(bundle), "ANOMALY_API_KEY": key}
        done = subprocess.run([sys.executable, "-m", "uvicorn", "--factory", "service.app:create_app", "--port", "0"],
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode != 0 and "Traceback" not in done.stderr
        assert done.stderr.strip().splitlines()[-1] == (
            "error: invalid service settings: ANOMALY_API_KEY: set but blank, which would leave every route "
            "open: set a real key, or unset the variable to serve without one")


def test_a_stalled_upload_is_answered_408_and_dropped(hostile):
    with _connect(hostile) as sock:  # Content-Length says 1000, 10 bytes come, then nothing
        start = time.monotonic()
        sock.sendall(_head("/v1/predict", 1000, KEY) + b"--b\r\nConte")
        reply = _until_closed(sock)
        took = time.monotonic() - start
    print(f"\nstalled upload: 408 and closed after {took:.2f} s (idle limit {HOSTILE['body_idle_timeout_s']} s)")
    assert reply.startswith(b"HTTP/1.1 408 ") and b'"code":"request_timeout"' in reply
    assert HOSTILE["body_idle_timeout_s"] <= took < HOSTILE["body_idle_timeout_s"] + 1


def test_a_trickling_upload_is_dropped_at_the_body_deadline(hostile):
    with _connect(hostile) as sock:  # a byte every 0.25 s: never idle for 1 s, but never done either
        start = time.monotonic()
        sock.sendall(_head("/v1/predict", 10_000, KEY)
                     + b"--b\r\nContent-Disposition: form-data; name=files; filename=a.png\r\n\r\n")
        reply = b""
        sock.settimeout(0.25)
        while time.monotonic() - start < 10:
            try:
                sock.sendall(b"x")
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:  # reset: dropped
                break
            if not chunk:
                break
            reply += chunk
        took = time.monotonic() - start
    print(f"\ntrickling upload: dropped after {took:.2f} s (body limit {HOSTILE['body_timeout_s']} s)")
    assert reply.startswith(b"HTTP/1.1 408 ")
    assert HOSTILE["body_timeout_s"] <= took < HOSTILE["body_timeout_s"] + 1
