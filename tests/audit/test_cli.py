"""`anomaly audit` as a command: exit codes for pipelines, the summary, and --mlflow."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from anomaly.cli import app


def audit(*args: str):
    return CliRunner().invoke(app, ["audit", *args, "--no-progress"], catch_exceptions=False)


@pytest.fixture(scope="module")
def good(inputs):
    return [str(p) for p in sorted((inputs / "a").glob("*.jpg"))[:3]]


def test_exit_0_when_done_and_summary_lists_files(trained, good, tmp_path):
    result = audit(*good, "--model", str(trained.bundle_path), "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "Audit summary" in result.output and "slowest stage" in result.output
    assert "results.csv" in result.output and "report.html" in result.output


def test_exit_1_on_anomaly_only_when_asked(trained, good, tmp_path):
    args = [*good, "--model", str(trained.bundle_path), "--threshold", "-1e9"]
    assert audit(*args, "--out", str(tmp_path / "1")).exit_code == 0
    assert audit(*args, "--out", str(tmp_path / "2"), "--fail-on-anomaly").exit_code == 1


def test_exit_2_when_a_file_failed_and_for_bad_usage(trained, inputs, good, tmp_path):
    model = ["--model", str(trained.bundle_path)]
    result = audit(*good, str(inputs / "empty.png"), *model, "--out", str(tmp_path / "a"), "--fail-on-anomaly")
    assert result.exit_code == 2 and "errors" in result.output
    assert audit(str(tmp_path / "none/*.png"), *model, "--out", str(tmp_path / "b")).exit_code == 2
    assert audit(*good, *model, "--out", str(tmp_path / "a")).exit_code == 2  # results exist: --resume?
    assert audit(*good, *model, "--out", str(tmp_path / "c"), "--overlays", "some").exit_code == 2


def test_mlflow_logs_the_audit_as_a_run(trained, inputs, good, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)  # nothing lands in the repository
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    result = audit(*good, str(inputs / "notes.png"), "--model", str(trained.bundle_path), "--out", "audit",
                   "--mlflow", "--experiment", "audits-test")
    assert result.exit_code == 2, result.output
    client = MlflowClient(uri)
    [run] = client.search_runs([client.get_experiment_by_name("audits-test").experiment_id])
    m = run.data.metrics
    assert (m["images"], m["errors"], m["scored"]) == (4, 1, 3) and 0 <= m["anomaly_rate"] <= 1
    assert m["score_p50"] <= m["score_p99"] <= m["score_max"]
    assert run.data.tags["model.uri"] == str(trained.bundle_path) and run.data.tags["anomaly.kind"] == "audit"
    artifacts = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "audit")}
    assert artifacts == {"results.csv", "results.jsonl", "report.html"}


def test_onnxruntime_backend_gives_the_torch_scores(trained, good, tmp_path):
    import csv

    def scores(out: Path) -> dict[str, float]:
        with open(out / "results.csv") as f:
            return {row["path"]: float(row["score"]) for row in csv.DictReader(f)}

    model = ["--model", str(trained.bundle_path)]
    assert audit(*good, *model, "--out", str(tmp_path / "torch")).exit_code == 0
    result = audit(*good, *model, "--out", str(tmp_path / "onnx"), "--backend", "onnxruntime")
    assert result.exit_code == 0, result.output
    torch_scores, onnx_scores = scores(tmp_path / "torch"), scores(tmp_path / "onnx")
    assert torch_scores.keys() == onnx_scores.keys() and len(torch_scores) == 3
    for path, score in torch_scores.items():
        assert onnx_scores[path] == pytest.approx(score, abs=1e-5)
    assert audit(*good, *model, "--out", str(tmp_path / "x"), "--backend", "tensorrt").exit_code == 2
