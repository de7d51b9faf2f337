"""`anomaly serve` as a user starts it, on the onnxruntime backend: same scores as torch in process."""

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from anomaly.detector import Detector

from .conftest import DEFECT_JPG, NORMAL_JPG


def test_serve_backend_option_scores_like_torch(bundle, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "anomaly", "serve", "--model", str(bundle), "--port", str(port),
               "--backend", "onnxruntime", "--log-level", "warning"]
    server = subprocess.Popen(command, cwd=tmp_path, env=os.environ, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"`anomaly serve --backend onnxruntime` did not get ready:\n{server.communicate()[0][-3000:]}")
            time.sleep(0.3)
        files = [("files", (p.name, p.read_bytes(), "image/jpeg")) for p in (NORMAL_JPG, DEFECT_JPG)]
        served = httpx.post(f"{url}/v1/predict", files=files, timeout=60).json()["results"]
    finally:
        server.terminate()
        server.wait(timeout=20)
    expected = Detector.load(bundle, backend="torch").predict([NORMAL_JPG, DEFECT_JPG])
    assert [r["score"] for r in served] == pytest.approx([p.score for p in expected], abs=1e-5)
