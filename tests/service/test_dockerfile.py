"""The Dockerfile, checked without a Docker engine: its instructions are parsed, and its CMD and
HEALTHCHECK run here with its ENV (the model and port swapped for a test bundle and a free port)."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).parents[2]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def env_of(steps) -> dict[str, str]:
    env: dict[str, str] = {}
    for name, args in steps:
        if name == "ENV":
            env.update(part.split("=", 1) for part in shlex.split(args))
    return env


def test_dockerfile_is_slim_cpu_non_root_with_healthcheck():
    steps = instructions()
    assert steps[0] == ("FROM", "python:3.11-slim")
    runs = " ".join(args for name, args in steps if name == "RUN")
    torch_pin = re.search(r'"torch==([^"]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    assert f"--index-url https://download.pytorch.org/whl/cpu torch=={torch_pin}" in runs  # CPU wheel, same pin
    user = next(args for name, args in steps if name == "USER")
    assert user not in ("root", "0") and f"useradd --create-home --uid 10001 {user}" in runs
    for name, args in steps:
        if name == "COPY":
            for source in args.split()[:-1]:
                assert (ROOT / source).exists(), f"COPY source {source} is missing"
    health = next(args for name, args in steps if name == "HEALTHCHECK")
    assert "/healthz" in health and "--start-period" in health
    assert json.loads(next(args for name, args in steps if name == "CMD")) == ["anomaly", "serve"]
    assert {"ANOMALY_MODEL", "ANOMALY_HOST", "ANOMALY_PORT"} <= set(env_of(steps))
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", "runs", ".git"} <= set(ignored)


def test_cmd_with_the_dockerfile_env_serves_and_passes_its_healthcheck(bundle, tmp_path):
    steps = instructions()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, **env_of(steps), "ANOMALY_MODEL": str(bundle), "ANOMALY_PORT": str(port),
           "ANOMALY_HOST": "127.0.0.1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    cmd = json.loads(next(args for name, args in steps if name == "CMD"))
    health = json.loads(next(args for name, args in steps if name == "HEALTHCHECK").split("CMD", 1)[1])
    health[0] = sys.executable if health[0] == "python" else health[0]
    server = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(health, env=env, capture_output=True, timeout=10).returncode != 0:
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"`{' '.join(cmd)}` did not pass its HEALTHCHECK:\n{server.communicate()[0][-3000:]}")
            time.sleep(0.3)
        url = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{url}/v1/model", timeout=10).json()["uri"] == str(bundle)
    finally:
        server.terminate()
        server.wait(timeout=20)
