"""Two stateless `anomaly serve` replicas on one registry alias, polling it every POLL_S seconds: promoting a
new version moves both, every request during the switch succeeds, and each answer names the version that
scored it (/v1/predict in its body, /v1/heatmap in X-Model-Version); no replica ever goes back."""

from __future__ import annotations

import sys
import threading
import time
from itertools import groupby

import httpx
import pytest

from .conftest import NORMALS, STEPS, anomaly, answers, free_port, spawn, stop, wait_until

pytestmark = pytest.mark.scaleout
POLL_S = 1.0
IMAGE = next(NORMALS.glob("*.jpg"))


class Traffic(threading.Thread):
    """Back-to-back requests to one replica, alternating /v1/predict and /v1/heatmap, until stopped:
    a list of (monotonic time answered, HTTP status or the exception's name, version that scored it)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.answers, self.halt = url, [], threading.Event()

    def run(self) -> None:
        data, n = IMAGE.read_bytes(), 0
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self.halt.is_set():
                n += 1
                try:
                    if n % 2:
                        answer = client.post("/v1/predict", files={"files": (IMAGE.name, data)})
                        version = answer.json()["model"]["version"] if answer.status_code == 200 else None
                    else:
                        answer = client.post("/v1/heatmap", files={"file": (IMAGE.name, data)})
                        version = answer.headers.get("X-Model-Version")
                    self.answers.append((time.monotonic(), answer.status_code, version))
                except httpx.HTTPError as error:
                    self.answers.append((time.monotonic(), type(error).__name__, None))

    def first(self, version: str, since: float) -> float | None:
        return next((t for t, _, v in self.answers if v == version and t >= since), None)


def test_two_replicas_follow_a_promotion_without_a_failed_request(tracking_server, registered, tmp_path):
    from mlflow import MlflowClient

    client, name = MlflowClient(tracking_server.url, registry_uri=tracking_server.url), registered.name
    old = client.get_model_version_by_alias(name, "champion").version
    # a new version, registered but not promoted: the same model calibrated at another false-alarm rate
    anomaly("calibrate", "--model", f"models:/{name}@champion", "--data", str(NORMALS), "--fpr", "0.3",
            cwd=tmp_path, env=tracking_server.env)
    new = str(max(int(v.version) for v in client.search_model_versions(f"name = '{name}'")))
    assert new != old and client.get_model_version_by_alias(name, "champion").version == old

    env = {**tracking_server.env, "ANOMALY_RELOAD_INTERVAL_S": str(POLL_S)}
    replicas, traffic = [], []
    try:
        for i in range(2):
            port = free_port()
            replicas.append((spawn([sys.executable, "-m", "anomaly", "serve", "--model", f"models:/{name}@champion",
                                    "--port", str(port), "--log-level", "warning"], tmp_path / f"replica{i}.log",
                                   env=env, cwd=tmp_path), f"http://127.0.0.1:{port}", tmp_path / f"replica{i}.log"))
        for process, url, log in replicas:
            wait_until(lambda: answers(url + "/readyz"), "a replica", process, log, 180)
        traffic = [Traffic(url) for _, url, _ in replicas]
        for t in traffic:
            t.start()
        time.sleep(2)  # both serving the old version under load

        promoted = time.monotonic()
        client.set_registered_model_alias(name, "champion", new)
        deadline = promoted + 60
        while any(t.first(new, promoted) is None for t in traffic) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2)  # and keep going on the new one
    finally:
        for t in traffic:
            t.halt.set()
        for t in traffic:
            t.join(timeout=60)
        for process, _, _ in replicas:
            stop(process)

    switch = [t.first(new, promoted) for t in traffic]
    assert None not in switch, f"a replica still served version {old} 60 s after the promotion"
    switch_s = [s - promoted for s in switch]
    for t in traffic:
        failed = [a for a in t.answers if a[1] != 200]
        assert not failed, f"{len(failed)} of {len(t.answers)} requests failed during the switch: {failed[:5]}"
        assert [v for v, _ in groupby(v for _, _, v in t.answers)] == [old, new]  # old, then new: never back
    STEPS["replicas: requests during the switch (all 200)"] = sum(len(t.answers) for t in traffic)
    STEPS["replicas: switch time after promotion, slower replica (s)"] = max(switch_s)
    # polling every POLL_S, then loading from the tracking server and warming up, beside the requests
    assert max(switch_s) < POLL_S + 30
