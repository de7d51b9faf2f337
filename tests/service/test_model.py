"""The served model's source: URIs parsed by anomaly.model_uri, mlflow touched only by anomaly.tracking; the
threads it is built on."""

from __future__ import annotations

import ast
import threading
from pathlib import Path

import httpx
import pytest

from anomaly.detector import Detector
from service.config import Settings
from service.metrics import Metrics
from service.model import ModelService, bundle_fingerprint

from .conftest import LIMITS, start

tracking = pytest.importorskip("anomaly.tracking")
SERVICE = Path(__file__).parents[2] / "service"


def test_no_service_module_touches_mlflow():
    """mlflow (and MlflowClient objects, via tracking.client) stay inside anomaly/tracking.py."""
    for path in sorted(SERVICE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                assert not any(a.name.split(".")[0] == "mlflow" for a in node.names), path.name
            elif isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] != "mlflow", path.name
                assert not (node.module == "anomaly.tracking" and any(a.name == "client" for a in node.names)), \
                    f"{path.name} imports tracking.client"
            elif isinstance(node, ast.Attribute):
                assert not (node.attr == "client" and getattr(node.value, "id", None) == "tracking"), path.name


def test_model_uris_are_parsed_in_one_place():
    """The URI grammar lives in anomaly.model_uri: no service module matches runs:/ or models:/ itself."""
    for path in sorted(SERVICE.glob("*.py")):
        tree = ast.parse(path.read_text())
        assert not any(a.name == "re" for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names), path.name
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("startswith", "fullmatch", "match"):
                assert "runs:/" not in ast.unparse(node) and "models:/" not in ast.unparse(node), path.name


def _unchanged(uri: str, version: str | None, digest: str | None = None) -> bool:
    service = ModelService(Settings(model=uri), Metrics())
    service.fingerprint = (version, "run-id", digest)
    return service._unchanged()


def test_polling_asks_tracking_where_an_alias_points(monkeypatch):
    asked: list[str] = []

    def alias_version(uri: str) -> str | None:
        asked.append(uri)
        if uri.endswith("@gone"):
            raise tracking.RegistryError("model 'svc' has no alias 'gone'")
        return "3"

    monkeypatch.setattr(tracking, "alias_version", alias_version)
    assert _unchanged("models:/svc@champion", "3") and not _unchanged("models:/svc@champion", "2")
    assert not _unchanged("models:/svc@gone", "3")  # let the reload report it
    assert _unchanged("models:/svc/2", "2") and _unchanged("runs:/abc/model", None)  # pinned
    assert not _unchanged("models:/svc/latest", "2")  # only a full reload can tell
    assert asked == ["models:/svc@champion", "models:/svc@champion", "models:/svc@gone"]


def test_polling_compares_a_folder_by_content(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"1")
    digest = bundle_fingerprint(str(tmp_path))
    assert _unchanged(str(tmp_path), None, digest)
    (tmp_path / "weights.bin").write_bytes(b"2")
    assert not _unchanged(str(tmp_path), None, digest)


def test_models_are_built_on_threads_that_end(bundle, monkeypatch):
    """Loading a model runs torch, and a thread that ran torch keeps an OpenMP pool that slows the inference
    thread's: the service loads on a thread of its own that ends, at startup and at each reload."""
    builders = []
    load = Detector.load.__func__

    def recording_load(cls, *args, **kwargs):
        builders.append(threading.current_thread())
        return load(cls, *args, **kwargs)

    monkeypatch.setattr(Detector, "load", classmethod(recording_load))
    for live in start(Settings(model=str(bundle), **LIMITS)):
        assert httpx.post(live.url + "/v1/model/reload", timeout=30).status_code == 200
        assert len(builders) == 2 and threading.main_thread() not in builders
        assert not any(thread.is_alive() for thread in builders)  # while the service serves on
