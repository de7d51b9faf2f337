"""docs/deploy.md's topology on loopback: PostgreSQL, an `mlflow server` on it with its own artifact store,
and one tiny model trained and registered through it by `anomaly train`. Every command runs as a user would
run it (a subprocess with MLFLOW_TRACKING_URI=http://127.0.0.1:<port>); each server is stopped at the end.

PostgreSQL refuses to run as root: as root (CI) it runs as Debian's `postgres` user, in a data folder
made for it under /tmp (pytest's own temp folders are closed to other users).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from tests.conftest import SAMPLE_DIR, sample_subset

MODEL_NAME = "scaleout"
# the small settings of the other tests' tiny models: seconds per epoch on 2 cores
TRAIN_ARGS = ["--model", "ssim-ae", "--image-size", "64", "--epochs", "2", "--width", "8", "--latent-dim", "32",
              "--batch-size", "8", "--accelerator", "cpu", "--seed", "0"]
NORMALS = SAMPLE_DIR / "MT_Free" / "Imgs"
STEPS: dict[str, float] = {}  # step -> seconds (or a count, a rate), shown in the terminal summary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(ready, what: str, process: subprocess.Popen, log: Path, seconds: float) -> None:
    """Poll `ready()` until it is true; fail with the log when the process exits or time runs out."""
    deadline = time.monotonic() + seconds
    while not ready():
        if process.poll() is not None:
            pytest.fail(f"{what} exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what} was not ready in {seconds:.0f} s:\n{log.read_text()[-4000:]}")
        time.sleep(0.3)


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def stop(process: subprocess.Popen, grace: float = 10) -> None:
    """SIGTERM to the process group the process leads (its workers with it), SIGKILL after `grace` s."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def spawn(args: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.Popen:
    """A server in its own process group (so that `stop` ends it and its children), output to `log`."""
    with open(log, "w") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                start_new_session=True)


def anomaly(*args: str, cwd: Path, env: dict[str, str] | None = None, step: str | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    """`anomaly ARGS` as a user runs it; fails the test with its output on a non-zero exit."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "anomaly", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if step:
        STEPS[step] = time.monotonic() - started
    assert done.returncode == 0, f"anomaly {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


def postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
    if not found:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; .ci/run does)")
    return found[-1].parent


@pytest.fixture(scope="package")
def postgres() -> Iterator[str]:
    """A PostgreSQL server on 127.0.0.1 with an empty database `mlflow` (user `mlflow`, trust auth on
    loopback) -> its SQLAlchemy URI. Data in a temp folder, removed afterwards."""
    binaries = postgres_bin()
    as_root = os.geteuid() == 0
    run_as = ["runuser", "-u", "postgres", "--"] if as_root else []
    folder = Path(tempfile.mkdtemp(prefix="anomaly-pg-"))
    if as_root:
        shutil.chown(folder, "postgres")
    data, port, log = folder / "data", free_port(), folder / "postgres.log"
    started, server = time.monotonic(), None
    try:
        subprocess.run([*run_as, binaries / "initdb", "-D", data, "-U", "mlflow", "--auth=trust", "-E", "UTF8",
                        "--no-sync"], check=True, capture_output=True)
        server = spawn([*run_as, binaries / "postgres", "-D", data, "-h", "127.0.0.1", "-p", str(port),
                        "-k", folder, "-c", "fsync=off"], log)
        isready = [binaries / "pg_isready", "-q", "-h", "127.0.0.1", "-p", str(port)]
        wait_until(lambda: subprocess.run(isready).returncode == 0, "postgres", server, log, 60)
        subprocess.run([binaries / "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "mlflow", "mlflow"],
                       check=True, capture_output=True)
        STEPS["postgres: initdb, start, createdb"] = time.monotonic() - started
        # psycopg (3) named explicitly: SQLAlchemy 2.0 reads a bare postgresql:// as psycopg2, 2.1 as psycopg
        yield f"postgresql+psycopg://mlflow@127.0.0.1:{port}/mlflow"
    finally:
        if server is not None:
            stop(server)  # SIGTERM: PostgreSQL's smart shutdown; the tracking server has closed its connections
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="package")
def tracking_server(postgres: str, tmp_path_factory) -> Iterator[SimpleNamespace]:
    """`mlflow server` on the PostgreSQL store with artifacts in a folder it serves (the client uploads
    through the server: mlflow-artifacts:/), one worker -> url, artifacts folder, environment for commands."""
    home = tmp_path_factory.mktemp("scaleout")
    artifacts, port, log = home / "artifacts", free_port(), home / "mlflow-server.log"
    started = time.monotonic()
    server = spawn([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", postgres,
                    "--artifacts-destination", str(artifacts), "--host", "127.0.0.1", "--port", str(port),
                    "--workers", "1"], log, cwd=home,
                   env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})  # GenAI jobs: 8 idle processes
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(url + "/health"), "mlflow server", server, log, 240)
        STEPS["mlflow server: start on postgres (tables created)"] = time.monotonic() - started
        env = {**os.environ, "MLFLOW_TRACKING_URI": url}
        # clients built in-process name the registry too: mlflow.set_registry_uri (anomaly.tracking.client, run
        # in-process by earlier tests) is a module global that a client without registry_uri would use
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("MLFLOW_TRACKING_URI", url)
            yield SimpleNamespace(url=url, artifacts=artifacts, home=home, env=env, postgres=postgres, log=log)
    finally:
        stop(server)


@pytest.fixture(scope="package")
def registered(tracking_server) -> SimpleNamespace:
    """`anomaly train` through the tracking server: the first version of `scaleout`, champion as the first."""
    home = tracking_server.home
    manifest = sample_subset(home / "tiny.csv", 16, 3, 3)
    anomaly("train", "--data", str(manifest), "--out", str(home / "bundle"), *TRAIN_ARGS, "--experiment", MODEL_NAME,
            "--register-as", MODEL_NAME, cwd=home, env=tracking_server.env, step="anomaly train (v1, first champion)")
    return SimpleNamespace(name=MODEL_NAME, version="1", bundle=home / "bundle", manifest=manifest)


def pytest_terminal_summary(terminalreporter) -> None:
    """The measured steps, for the issue's note and docs/deploy.md."""
    if STEPS:
        terminalreporter.write_sep("-", "scale-out steps")
        for step, value in STEPS.items():
            terminalreporter.write_line(f"{step}: {value:.1f}")
