"""`anomaly audit` as a command: exit codes for pipelines, the summary, --mlflow, file names that are not UTF-8."""

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from anomaly.audit import engine
from anomaly.cli import app
from tests.audit.conftest import sample_images


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


def test_a_file_name_that_is_not_utf8_is_audited_reported_and_resumed(trained, detector, tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    image = sample_images()[0]
    shutil.copy(image, folder / "plain.jpg")
    odd = os.path.join(os.fsencode(folder), b"\xff\xfe-x.jpg")  # not UTF-8: os.fsdecode gives surrogates
    shutil.copy(image, odd)
    args = [str(folder), "--model", str(trained.bundle_path), "--out", str(out), "--overlays", "all",
            "--batch-size", "1"]
    result = audit(*args)
    assert result.exit_code == 0, result.output

    jsonl = (out / "results.jsonl").read_bytes()
    rows = [json.loads(line) for line in jsonl.decode("utf-8").splitlines()]  # valid UTF-8
    assert [r["path"] for r in rows] == [str(folder / "plain.jpg"), os.fsdecode(odd)]
    assert os.fsencode(rows[1]["path"]) == odd and b"\\udcff\\udcfe-x.jpg" in jsonl  # the exact name, escaped
    [reference] = detector.predict([image])
    assert rows[0]["score"] == rows[1]["score"] == pytest.approx(reference.score, abs=1e-6)
    assert rows[1]["verdict"] in ("normal", "anomalous") and (out / rows[1]["overlay"]).is_file()
    csv_text = (out / "results.csv").read_bytes().decode("utf-8")
    report = (out / "report.html").read_bytes().decode("utf-8")
    shown = str(folder / "\\xff\\xfe-x.jpg")
    assert f"\n{shown}," in csv_text and f'<td class="path">{shown}</td>' in report
    assert report.count('<img class="thumb"') == 2

    result = audit(*args, "--resume")  # the row maps back to the same file: nothing to do
    assert result.exit_code == 0 and "2 images already audited, 0 to go" in result.output
    (out / "results.jsonl").write_bytes(jsonl[:-40])  # killed while writing the odd name's row
    result = audit(*args, "--resume")
    assert result.exit_code == 0 and "1 images already audited, 1 to go" in result.output
    assert (out / "results.jsonl").read_bytes() == jsonl


def test_exit_3_not_1_when_the_audit_stops(trained, good, tmp_path, monkeypatch):
    """Python exits 1 on an uncaught exception, the code that means "anomalies found"."""
    (tmp_path / "file").write_text("")
    result = audit(*good, "--model", str(trained.bundle_path), "--out", str(tmp_path / "file" / "out"))
    assert result.exit_code == 3 and "the audit stopped: NotADirectoryError" in result.output

    calls, render = [], engine.render

    def bug(*args, **kwargs):  # a bug in the third image's rendering
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("boom")
        return render(*args, **kwargs)

    monkeypatch.setattr(engine, "render", bug)
    args = [*good, "--model", str(trained.bundle_path), "--out", str(tmp_path / "out"), "--batch-size", "1"]
    result = CliRunner().invoke(app, ["audit", *args, "--no-progress"])
    assert result.exit_code == 3 and "the audit stopped: RuntimeError: boom" in result.output
    assert "rerun the same command with --resume" in result.output
    monkeypatch.undo()
    result = audit(*args, "--resume")
    assert result.exit_code == 0 and "2 images already audited, 1 to go" in result.output
