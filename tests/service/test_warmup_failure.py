"""A model that cannot score stops the server at startup: its cause is logged, the process exits nonzero,
and shutdown does not fail on the way out (plain `uvicorn --factory`, as a container would run it)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys

import pytest
import uvicorn

from service.app import create_app
from service.config import Settings


@pytest.fixture
def unscorable(trained, tmp_path):
    """The tiny bundle with an image-score reduction that does not exist: it loads, and fails on the first
    batch (or, where Detector.load checks the config, fails to load): either way it must not be served."""
    bundle = shutil.copytree(trained.bundle_path, tmp_path / "bundle")
    config = json.loads((bundle / "config.json").read_text())
    (bundle / "config.json").write_text(json.dumps({**config, "score_reduction": "foo"}))
    return bundle


def test_a_model_that_fails_warm_up_stops_startup_with_its_cause(unscorable):
    env = {**os.environ, "ANOMALY_MODEL": str(unscorable)}
    env.pop("ANOMALY_API_KEY", None)
    try:
        done = subprocess.run([sys.executable, "-m", "uvicorn", "--factory", "service.app:create_app",
                               "--port", "0"], env=env, capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired as still_serving:
        pytest.fail(f"the server kept running with a model that cannot score: {still_serving.stderr}")
    log = done.stderr
    assert done.returncode == 3, log  # uvicorn's "startup failed"
    assert "score_reduction" in log or "foo" in log, log
    assert "Application startup failed" in log
    assert "shutdown failed" not in log.lower() and "Exception in 'lifespan'" not in log


def test_a_model_that_loads_but_cannot_score_fails_startup_in_warm_up(bundle, caplog):
    """Weights on torch's "meta" device load (shapes only) and fail on the first batch: the warm-up branch."""
    app = create_app(Settings(model=str(bundle), device="meta"))
    server = uvicorn.Server(uvicorn.Config(app, port=0, log_level="warning", lifespan="on"))
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as exit:
        server.run()
    assert exit.value.code == 3 and not server.started
    [failure] = [r.getMessage() for r in caplog.records if r.name == "service.model"]
    assert f"the model {bundle} failed its warm-up (RuntimeError: " in failure
    assert not app.state.service.batcher.running  # stopped: the inference thread is gone
    assert not any("shutdown" in r.getMessage().lower() for r in caplog.records)
