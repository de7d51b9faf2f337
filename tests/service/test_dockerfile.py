"""The Dockerfile, checked without a Docker engine: its instructions are parsed, and its CMD and
HEALTHCHECK run here with its ENV (the model and port swapped for a test bundle and a free port),
once as the image runs it: another user than the bundle's owner, the bundle mounted read-only."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_until_healthy(cmd: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen:
    """`cmd` started and polled with the Dockerfile's HEALTHCHECK until it passes (60 s at most)."""
    health = json.loads(next(args for name, args in instructions() if name == "HEALTHCHECK").split("CMD", 1)[1])
    health[0] = sys.executable if health[0] == "python" else health[0]
    server = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while subprocess.run(health, env=env, capture_output=True, timeout=10).returncode != 0:
        if server.poll() is not None or time.monotonic() > deadline:
            server.terminate()
            pytest.fail(f"`{' '.join(cmd)}` did not pass its HEALTHCHECK:\n{server.communicate()[0][-3000:]}")
        time.sleep(0.3)
    return server


def dockerfile_env(model: Path, port: int) -> dict[str, str]:
    return {**os.environ, **env_of(instructions()), "ANOMALY_MODEL": str(model), "ANOMALY_PORT": str(port),
            "ANOMALY_HOST": "127.0.0.1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def test_cmd_with_the_dockerfile_env_serves_and_passes_its_healthcheck(bundle, tmp_path):
    port = free_port()
    cmd = json.loads(next(args for name, args in instructions() if name == "CMD"))
    server = serve_until_healthy(cmd, dockerfile_env(bundle, port), tmp_path)
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/v1/model", timeout=10).json()["uri"] == str(bundle)
    finally:
        server.terminate()
        server.wait(timeout=20)


NOBODY = 65534  # the image runs as uid 10001, which owns nothing it reads either


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("setpriv"),
                    reason="needs root, unshare and setpriv to mount read-only and run as another user")
def test_cmd_serves_a_read_only_bundle_as_another_user(trained):
    """`docker run -v "$PWD/runs/sample:/models/model:ro"` with `USER anomaly`: the bundle, as `train`
    wrote it (modes kept by the copy), bind-mounted read-only in a private mount namespace, and the
    CMD run as uid 65534 with a home of its own. It must start, pass the HEALTHCHECK and score."""
    root = Path(tempfile.mkdtemp(prefix="anomaly-docker-"))  # pytest's own folders are 0700 to others
    try:
        root.chmod(0o755)
        model = Path(shutil.copytree(trained.bundle_path, root / "models" / "model"))
        (root / "home").mkdir()
        os.chown(root / "home", NOBODY, NOBODY)
        port = free_port()
        env = {k: v for k, v in dockerfile_env(model, port).items() if k != "MLFLOW_TRACKING_URI"}
        env["HOME"] = str(root / "home")
        cmd = json.loads(next(args for name, args in instructions() if name == "CMD"))
        read_only = 'mount --bind -o ro "$0" "$0" && exec "$@"'  # in the namespace only, gone with it
        as_user = ["unshare", "--mount", "--propagation", "private", "sh", "-c", read_only, str(model),
                   "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *cmd]
        server = serve_until_healthy(as_user, env, root / "home")
        try:
            image = next(s.image for s in trained.samples if s.label == 1)
            with open(image, "rb") as f:
                response = httpx.post(f"http://127.0.0.1:{port}/v1/predict", files={"files": f}, timeout=30)
            assert response.status_code == 200, response.text
            assert response.json()["results"][0]["score"] > 0
        finally:
            server.terminate()
            server.wait(timeout=20)
    finally:
        shutil.rmtree(root)
