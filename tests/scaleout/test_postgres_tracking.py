"""MLflow on PostgreSQL behind a tracking server: train -> register -> promote -> serve by alias -> calibrate
-> audit --mlflow, every step through MLFLOW_TRACKING_URI=http://127.0.0.1:<port> (docs/deploy.md).
What MLflow's client reports is checked against the database's own tables, read with psycopg."""

from __future__ import annotations

import csv
import sys
import time

import httpx
import pytest

from .conftest import NORMALS, STEPS, anomaly, answers, free_port, spawn, stop, wait_until

pytestmark = pytest.mark.scaleout


def sql(uri: str, query: str) -> list[tuple]:
    """Rows of `query` straight from PostgreSQL (not through MLflow)."""
    import psycopg

    with psycopg.connect(uri.replace("postgresql+psycopg://", "postgresql://")) as connection:
        return connection.execute(query).fetchall()


def predict(url: str) -> dict:
    image = next(NORMALS.glob("*.jpg"))
    answer = httpx.post(url + "/v1/predict", files={"files": (image.name, image.read_bytes())}, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_train_register_promote_serve_calibrate_audit_on_postgres(tracking_server, registered, tmp_path):
    from mlflow import MlflowClient

    client, name, db = MlflowClient(tracking_server.url, registry_uri=tracking_server.url), registered.name, tracking_server.postgres
    aliases = f"select alias, version from registered_model_aliases where name = '{name}'"

    # train registered version 1 as the first champion (other tests here may have added versions since):
    # MLflow's answers are the database's own rows
    champion = client.get_model_version_by_alias(name, "champion").version
    versions = {v for (v,) in sql(db, f"select version from model_versions where name = '{name}'")}
    assert 1 in versions and versions == {int(v.version) for v in client.search_model_versions(f"name = '{name}'")}
    assert sql(db, aliases) == [("champion", int(champion))]
    new = str(max(versions) + 1)

    # serve by alias, polling it every second
    port, log = free_port(), tmp_path / "serve.log"
    env = {**tracking_server.env, "ANOMALY_RELOAD_INTERVAL_S": "1"}
    started = time.monotonic()
    server = spawn([sys.executable, "-m", "anomaly", "serve", "--model", f"models:/{name}@champion",
                    "--port", str(port), "--log-level", "warning"], log, env=env, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(url + "/readyz"), "anomaly serve", server, log, 180)
        STEPS["anomaly serve models:/scaleout@champion: ready"] = time.monotonic() - started
        first = predict(url)
        assert (first["model"]["name"], first["model"]["version"]) == (name, champion)

        # calibrate at another false-alarm rate: a new version, promoted
        anomaly("calibrate", "--model", f"models:/{name}@champion", "--data", str(NORMALS), "--fpr", "0.2",
                "--promote", cwd=tmp_path, env=tracking_server.env, step="anomaly calibrate --promote (v2)")
        assert client.get_model_version_by_alias(name, "champion").version == new
        assert sql(db, aliases) == [("champion", int(new))]
        assert {v for (v,) in sql(db, f"select version from model_versions where name = '{name}'")} == \
               versions | {int(new)}

        moved = time.monotonic()  # the served model follows the alias
        wait_until(lambda: httpx.get(url + "/v1/model", timeout=10).json()["version"] == new, "the alias move",
                   server, log, 60)
        STEPS["served model follows the alias to v2"] = time.monotonic() - moved
        second = predict(url)
        assert second["model"]["version"] == new
        assert second["results"][0]["threshold"] != first["results"][0]["threshold"]
    finally:
        stop(server)

    # audit by alias, logged as a run: tags name the new version, and the results reach the artifact store
    out = tmp_path / "audit"
    anomaly("audit", str(NORMALS), "--model", f"models:/{name}@champion", "--out", str(out), "--mlflow",
            "--overlays", "none", "--no-progress", cwd=tmp_path, env=tracking_server.env,
            step="anomaly audit --mlflow (166 images)")
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(list(NORMALS.glob("*.jpg"))) and {r["model_version"] for r in rows} == {new}
    [run] = client.search_runs([client.get_experiment_by_name("anomaly-audit").experiment_id])
    assert run.data.tags["model.version"] == new and run.data.tags["model.name"] == name
    assert run.data.metrics["images"] == len(rows)
    [(status, artifact_uri)] = sql(db, f"select status, artifact_uri from runs where run_uuid = '{run.info.run_id}'")
    assert status == "FINISHED" and artifact_uri.startswith("mlflow-artifacts:")
    stored = tracking_server.artifacts / artifact_uri.removeprefix("mlflow-artifacts:/") / "audit" / "results.csv"
    assert stored.read_text() == (out / "results.csv").read_text()
    # every model version's bundle is in the server's artifact folder, not on the client's disk
    assert len(list(tracking_server.artifacts.rglob("calibration.json"))) >= 2
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlflow.db").exists()
