"""`anomaly audit --engine ray --ray-address` on a Ray cluster of two node processes (`ray start --head` and
`ray start --address`, token authentication on), scoring a registry model: the same rows as the local engine.

The nodes are started without MLFLOW_TRACKING_URI, as on a cluster whose nodes know nothing of the driver:
the actors find the tracking server only because the audit hands it to them."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from anomaly.audit import read_rows

from .conftest import SAMPLE_DIR, STEPS, anomaly, free_port, spawn, stop

pytestmark = pytest.mark.scaleout
pytest.importorskip("ray")

INPUTS = str(SAMPLE_DIR / "MT_*" / "Imgs" / "*.jpg")  # the bundled sample: 166 normals, 12 defects
RATE = re.compile(r"(\d+) in ([\d.]+) s \(([\d.]+) images/s\)")  # the audit summary's "audited now" cell


def active_nodes(address: str, env: dict[str, str]) -> int:
    status = subprocess.run([sys.executable, "-m", "ray.scripts.scripts", "status", "--address", address],
                            env=env, capture_output=True, text=True, timeout=60).stdout
    active = status.split("Active:")[1].split("Pending:")[0] if "Active:" in status else ""
    return len(re.findall(r"^\s*1 node_", active, re.M))


@pytest.fixture(scope="module")
def ray_cluster(tracking_server) -> Iterator[SimpleNamespace]:
    """A head and one worker node, 1 CPU each, in a temp folder of their own (so no other `ray.init()` on this
    machine finds the cluster); each `ray start --block` leads a process group that `stop` ends."""
    folder = Path(tempfile.mkdtemp(prefix="ray-"))  # short: Ray's socket paths must fit 107 characters
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RAY_"))}
    env |= {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    port = free_port()
    ray = [sys.executable, "-m", "ray.scripts.scripts", "start", "--block", "--num-cpus", "1",
           "--temp-dir", str(folder)]
    started = time.monotonic()
    head = spawn([*ray, "--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--include-dashboard",
                  "false", "--dashboard-port", str(free_port()), "--disable-usage-stats"], folder / "head.log",
                 env=env, cwd=folder)
    nodes = [head]
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while "Ray runtime started" not in (folder / "head.log").read_text():
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ray head did not start:\n{(folder / 'head.log').read_text()[-4000:]}")
            time.sleep(0.5)
        nodes.append(spawn([*ray, "--address", address], folder / "node.log", env=env, cwd=folder))
        while active_nodes(address, env) < 2:
            if nodes[1].poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the second ray node did not join:\n{(folder / 'node.log').read_text()[-4000:]}")
            time.sleep(1)
        STEPS["ray cluster: head + node up"] = time.monotonic() - started
        yield SimpleNamespace(address=address, env=env)
    finally:
        for node in reversed(nodes):
            stop(node, grace=15)
        shutil.rmtree(folder, ignore_errors=True)


def test_cluster_audit_gives_the_local_rows(ray_cluster, registered, tracking_server, tmp_path):
    model = f"models:/{registered.name}/{registered.version}"
    common = [INPUTS, "--model", model, "--overlays", "anomalous", "--batch-size", "16", "--no-progress"]
    env = {**tracking_server.env, **{k: v for k, v in ray_cluster.env.items() if k.startswith("RAY_")}}
    local = anomaly("audit", *common, "--out", str(tmp_path / "local"), cwd=tmp_path, env=env,
                    step="audit, local engine (178 images)")
    # 2 actors of 1 CPU on 2 nodes of 1 CPU: one actor on each node
    remote = anomaly("audit", *common, "--out", str(tmp_path / "ray"), "--engine", "ray", "--ray-address",
                     ray_cluster.address, "--workers", "2", cwd=tmp_path, env=env,
                     step="audit, ray cluster, 2 actors (178 images)")
    for name, done in (("local", local), ("ray cluster", remote)):  # the summary's rate: scoring, not start-up
        STEPS[f"{name} rows/s"] = float(RATE.search(done.stdout).group(3))

    rows, reference = read_rows(tmp_path / "ray"), read_rows(tmp_path / "local")
    assert len(rows) == len(reference) == 178 and not any(r["error"] for r in rows)
    assert [r["path"] for r in rows] == [r["path"] for r in reference]
    for row, ref in zip(rows, reference):
        assert {k: v for k, v in row.items() if k not in ("score", "normalised_score")} == \
               {k: v for k, v in ref.items() if k not in ("score", "normalised_score")}
        assert row["score"] == pytest.approx(ref["score"], abs=1e-5)
        assert row["normalised_score"] == pytest.approx(ref["normalised_score"], abs=1e-5)
    assert {r["model_version"] for r in rows} == {registered.version}
    assert sorted(p.name for p in (tmp_path / "ray" / "overlays").iterdir()) == \
           sorted(p.name for p in (tmp_path / "local" / "overlays").iterdir())
