"""`anomaly export` and `anomaly evaluate --backend onnxruntime`, and logging an export to MLflow."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from anomaly.cli import app
from anomaly.export import ONNX


def test_export_then_evaluate_on_both_backends_gives_the_same_metrics(trained, tmp_path):
    runner = CliRunner()
    out = tmp_path / "onnx"
    result = runner.invoke(app, ["export", "--model", str(trained.bundle_path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / ONNX).is_file() and "max abs difference to torch" in " ".join(result.output.split())
    reports = {}
    for model, backend in ((trained.bundle_path, "torch"), (out, "onnxruntime")):
        result = runner.invoke(app, ["evaluate", "--model", str(model), "--backend", backend, "--json"])
        assert result.exit_code == 0, result.output
        reports[backend] = json.loads(result.output)
    for key in ("image_auroc", "pixel_auroc", "f1", "threshold", "n_normal", "n_anomalous"):
        assert reports["onnxruntime"][key] == pytest.approx(reports["torch"][key], abs=1e-4), key


def test_unknown_backend_and_format_are_clear_errors(trained, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["evaluate", "--model", str(trained.bundle_path), "--backend", "tvm"])
    assert result.exit_code == 2 and "expected one of torch, onnxruntime" in result.output
    result = runner.invoke(app, ["export", "--model", str(trained.bundle_path), "--out", str(tmp_path / "x"),
                                 "--format", "tflite"])
    assert result.exit_code == 2 and "expected onnx" in result.output


def test_log_export_attaches_the_folder_to_the_model_version(trained, tmp_path, mlflow_store):
    import mlflow

    from anomaly import tracking
    from anomaly.detector import Detector
    from anomaly.export import export_onnx

    assert str(mlflow_store) in tracking.tracking_uri()  # the session's temporary store, never the repo
    folder = export_onnx(Detector.load(trained.bundle_path), tmp_path / "onnx")
    client = tracking.client()
    with mlflow.start_run(experiment_id=tracking.experiment_id("export-test", client)) as run:
        pass
    client.create_registered_model("export-test")
    version = client.create_model_version("export-test", f"runs:/{run.info.run_id}/model", run.info.run_id)
    location = tracking.log_export(f"models:/export-test/{version.version}", folder)
    assert location == f"runs:/{run.info.run_id}/onnx"
    names = sorted(a.path for a in client.list_artifacts(run.info.run_id, "onnx"))
    assert f"onnx/{ONNX}" in names and "onnx/calibration.json" in names
    assert client.get_model_version("export-test", version.version).tags["onnx_export"] == location
