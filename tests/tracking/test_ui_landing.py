"""`anomaly ui` opens where a run is reviewed: the runs of the latest run's experiment, in MLflow 3's
"Model training" view, not its GenAI overview (traces, a "Detect Issues" popup). Checked in headless chromium."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import httpx

from .conftest import EXPERIMENT, free_port, wait_for_text


def printed_landing(home) -> tuple[str, int]:
    """The URL a fresh `anomaly ui` on the same store prints (before its server boots), and its port."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    process = subprocess.Popen([sys.executable, "-m", "anomaly", "ui", "--port", str(port)], cwd=home.path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        line = process.stdout.readline()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    return re.search(r"open (\S+)", line)[1], port


def test_ui_opens_on_the_runs_of_the_latest_runs_experiment(home, ui, run, browser, tmp_path):
    experiment = httpx.get(f"{ui}/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": EXPERIMENT},
                           timeout=30).json()["experiment"]
    tags = {t["key"]: t["value"] for t in experiment.get("tags", [])}
    assert tags["mlflow.experimentKind"] == "custom_model_development"  # MLflow's own kind for trained models
    everywhere = [e["experiment_id"] for e in httpx.post(f"{ui}/api/2.0/mlflow/experiments/search",
                                                         json={"max_results": 1000}, timeout=30).json()["experiments"]]
    latest = httpx.post(f"{ui}/api/2.0/mlflow/runs/search", json={
        "experiment_ids": everywhere, "max_results": 1, "order_by": ["attributes.start_time DESC"]},
        timeout=30).json()["runs"][0]["info"]  # the package's other tests log runs too
    landing, port = printed_landing(home)
    assert landing == (f"http://127.0.0.1:{port}/#/experiments/{latest['experiment_id']}/runs"
                       "?workflowType=machine_learning")

    browser.get(landing.replace(f"http://127.0.0.1:{port}", ui))  # the `ui` fixture serves the same store
    text = wait_for_text(browser, (latest["run_name"], "matching run"))
    shot = os.environ.get("ANOMALY_UI_LANDING_SCREENSHOT") or str(tmp_path / "landing.png")
    browser.save_screenshot(shot)
    assert latest["run_name"] in text and "matching run" in text, f"no run list on the landing; see {shot}"
    assert f"/experiments/{latest['experiment_id']}/runs" in browser.current_url
    assert "Detect Issues" not in text and not re.search(r"Traces\s+0", text), f"GenAI overview; see {shot}"
