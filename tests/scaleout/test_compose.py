"""deploy/docker-compose.yml states the topology the other tests here run on loopback: the same commands,
flags and settings (no Docker needed; `docker compose config` also runs where Docker is installed)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import typer
import yaml

from anomaly.cli import app
from anomaly.model_uri import parse_model_uri

pytestmark = pytest.mark.scaleout
ROOT = Path(__file__).parents[2]
COMPOSE = ROOT / "deploy" / "docker-compose.yml"
COMMANDS = typer.main.get_command(app).commands


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def words(service: dict) -> list[str]:
    return shlex.split(service["command"])


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_tracking_server_on_postgres_with_its_artifact_store(services):
    argv = words(services["mlflow"])
    assert argv[:2] == ["mlflow", "server"]
    # the driver the tests use: SQLAlchemy's psycopg (3) dialect, installed by the [postgres] extra
    assert option(argv, "--backend-store-uri").startswith("postgresql+psycopg://")
    assert option(argv, "--artifacts-destination") == "/mlartifacts"
    assert services["mlflow"]["environment"]["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    tracking = services["serve"]["environment"]["MLFLOW_TRACKING_URI"]  # the Host header clients send
    assert tracking.removeprefix("http://") in option(argv, "--allowed-hosts").split(",")
    assert services["postgres"]["environment"]["POSTGRES_DB"] in option(argv, "--backend-store-uri")


def test_replicas_follow_the_alias_train_registers(services):
    serve, train = services["serve"], services["train"]
    assert words(serve) == ["anomaly", "serve"] and serve["deploy"]["replicas"] >= 2
    model = parse_model_uri(serve["environment"]["ANOMALY_MODEL"])
    assert model is not None and model.kind == "alias"
    assert float(serve["environment"]["ANOMALY_RELOAD_INTERVAL_S"]) > 0
    assert option(words(train), "--register-as") == model.name


def test_audits_run_on_the_ray_cluster(services):
    head, worker, audit = (words(services[name]) for name in ("ray-head", "ray-worker", "audit"))
    assert head[:4] == ["ray", "start", "--head", "--block"] and worker[:3] == ["ray", "start", "--block"]
    assert option(worker, "--address") == option(audit, "--ray-address") == f"ray-head:{option(head, '--port')}"
    assert option(audit, "--engine") == "ray" and "--mlflow" in audit
    tokens = {s["environment"]["RAY_AUTH_TOKEN"] for s in services.values()
              if "RAY_AUTH_TOKEN" in s.get("environment", {})}
    assert len(tokens) == 1 and {"ray-head", "ray-worker", "audit"} <= {
        n for n, s in services.items() if "RAY_AUTH_TOKEN" in s.get("environment", {})}


@pytest.mark.parametrize("name", ["serve", "train", "audit"])
def test_anomaly_commands_use_real_options(services, name):
    argv = words(services[name])
    known = {opt for param in COMMANDS[argv[1]].params for opt in [*param.opts, *param.secondary_opts]}
    assert not [w for w in argv[2:] if w.startswith("--") and w not in known]


def test_the_image_installs_what_the_services_run():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(d.startswith("psycopg") for d in extras["postgres"]) and any(d.startswith("ray") for d in extras["ray"])
    build = yaml.safe_load(COMPOSE.read_text())["x-app"]["build"]
    assert (COMPOSE.parent / build["context"] / build.get("dockerfile", "Dockerfile")).resolve() == ROOT / "Dockerfile"
    assert build["args"]["EXTRAS"] == "[ray,postgres]"
    assert 'ARG EXTRAS=""' in (ROOT / "Dockerfile").read_text()
    assert 'pip install ".${EXTRAS}"' in (ROOT / "Dockerfile").read_text()


def have_compose() -> bool:
    docker = shutil.which("docker")
    return docker is not None and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0


@pytest.mark.skipif(not have_compose(), reason="Docker Compose is not installed")
def test_docker_compose_accepts_the_file():
    done = subprocess.run(["docker", "compose", "-f", str(COMPOSE), "config", "-q"], capture_output=True,
                          text=True, env={**os.environ, "RAY_AUTH_TOKEN": "x"})
    assert done.returncode == 0, done.stderr
