"""A tracked training in MLflow's embedded default store, read back with MlflowClient and compared
with the bundle on disk; the registry: aliases, versions, loading by URI, errors, promotion rule."""

from __future__ import annotations

import base64
import csv
import json
import shutil
import subprocess
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

import anomaly
from anomaly import tracking
from anomaly.cli import app
from anomaly.config import TrainConfig
from anomaly.data import load_samples
from anomaly.detector import Detector
from anomaly.metrics import image_auroc
from anomaly.painted import painted_validation, summary
from anomaly.training import train
from tests.conftest import SAMPLE_DIR, SAMPLE_MANIFEST
from tests.tracking.conftest import TINY

REPO = Path(__file__).parents[2]


def repo_store() -> dict[str, int]:
    """The embedded MLflow store in the checkout (README command 1 makes one there): file -> mtime."""
    paths = [REPO / "mlflow.db", *(REPO / "mlruns").rglob("*")]
    return {str(p.relative_to(REPO)): p.stat().st_mtime_ns for p in paths if p.exists()}


REPO_STORE_BEFORE = repo_store()  # at collection, before any test trains


@pytest.fixture(scope="module")
def mlflow_run(home, run):
    client = MlflowClient(tracking.tracking_uri())
    return client, client.get_run(run.registration.run_id)


def test_default_store_is_mlflows_own_default_in_the_working_directory(home, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.setattr(mlflow.tracking._tracking_service.utils, "_tracking_uri", None)
    assert tracking.tracking_uri() == mlflow.get_tracking_uri() == f"sqlite:///{home.path / 'mlflow.db'}"
    assert tracking.artifact_root() == home.path / "mlruns"


def test_a_training_run_carries_params_losses_calibration_tests_plots_and_tags(home, run, mlflow_run):
    client, logged = mlflow_run
    params, metrics, tags = logged.data.params, logged.data.metrics, logged.data.tags
    assert params["epochs"] == params["epochs_trained"] == "3" and params["image_size"] == "64x64" and params["model.residual"] == "ssim"
    for key in ("train/loss", "train/ssim", "val/loss", "val/ssim"):
        history = client.get_metric_history(logged.info.run_id, key)
        assert [m.step for m in history] == [0, 1, 2]
    assert [m.value for m in client.get_metric_history(logged.info.run_id, "train/loss")] == pytest.approx(
        [e["train/loss"] for e in run.epoch_losses])
    calibration = json.loads((run.bundle_path / "calibration.json").read_text())
    for key in ("image_threshold", "pixel_threshold", "score_mean", "score_std", "score_p99"):
        assert metrics[f"calibration/{key}"] == pytest.approx(calibration[key])
    assert json.loads(Path(client.download_artifacts(logged.info.run_id, "calibration.json")).read_text()) == calibration
    # test metrics against an independent AUROC of the bundle's own scores
    test = [s for s in run.samples if s.split == "test"]
    scores = [p.score for p in Detector.load(run.bundle_path).predict([s.image for s in test])]
    assert metrics["test/image_auroc"] == pytest.approx(image_auroc([s.label for s in test], scores))
    assert {"test/pixel_auroc", "test/aupro", "test/f1"} <= set(metrics)
    normal_scores = np.array([score for s, score in zip(test, scores) if s.label == 0])
    assert metrics["test/false_alarm_rate"] == pytest.approx((normal_scores >= calibration["image_threshold"]).mean())
    assert any(k.startswith("test/") and k.count("/") == 2 for k in metrics)  # per defect type
    assert any(k.startswith("system/cpu") for k in metrics)
    artifacts = {a.path for a in client.list_artifacts(logged.info.run_id, "plots")}
    assert artifacts == {"plots/score_histogram.png", "plots/roc.png", "plots/examples.png"}
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert tags["git.commit"].startswith(head.strip()) and tags["anomaly.version"] == anomaly.__version__
    assert tags["dataset.fingerprint"] == tracking.dataset_fingerprint(load_samples(params["data"]))
    assert "Image threshold" in tags["mlflow.note.content"]
    # painted-defect AUROCs and the reconstruction spread, as the saved bundle scores them again
    painted = painted_validation(Detector.load(run.bundle_path), run.samples, seed=run.config.seed,
                                 val_fraction=run.config.val_fraction)
    assert len(painted) == 5 and painted == pytest.approx(run.painted_aurocs)  # 4 AUROCs, the spread
    assert {k: v for k, v in metrics.items() if k.startswith("painted/")} == pytest.approx(
        {f"painted/{k}": v for k, v in painted.items()})
    assert summary(painted) in tags["mlflow.note.content"]
    assert (home.path / "mlflow.db").is_file() and (home.path / "mlruns" / "tiny").is_dir()
    assert repo_store() == REPO_STORE_BEFORE  # the tests never write to the checkout's own store


def test_dataset_fingerprint_follows_file_list_and_sizes_not_the_folder(tmp_path, manifest):
    samples = [s for s in load_samples(manifest)][:4]
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        for s in samples:
            (tmp_path / folder / Path(s.image).name).write_bytes(Path(s.image).read_bytes())
    a, b = load_samples(tmp_path / "a"), load_samples(tmp_path / "b")
    assert tracking.dataset_fingerprint(a) == tracking.dataset_fingerprint(b)
    assert tracking.dataset_fingerprint(a) != tracking.dataset_fingerprint(a[:3])
    (tmp_path / "b" / Path(samples[0].image).name).write_bytes(b"\0")
    assert tracking.dataset_fingerprint(a) != tracking.dataset_fingerprint(load_samples(tmp_path / "b"))


def test_registered_model_loads_by_alias_version_and_run_with_the_bundles_scores(run):
    images = [s.image for s in run.samples if s.split == "test"]
    expected = [p.score for p in Detector.load(run.bundle_path).predict(images)]
    for uri in ("models:/tiny@champion", "models:/tiny/1", f"runs:/{run.registration.run_id}/model"):
        detector = Detector.load(uri)
        assert detector.version == "1" and detector.info["run_id"] == run.registration.run_id, uri
        assert [p.score for p in detector.predict(images)] == pytest.approx(expected, rel=1e-6)
    # the pyfunc model (from code, nothing pickled) scores base64 image files the same way
    model_dir = Path(mlflow.artifacts.download_artifacts("models:/tiny/1"))
    assert not [p for p in model_dir.rglob("*") if p.suffix in (".pkl", ".pickle", ".cloudpickle")]
    pyfunc = mlflow.pyfunc.load_model("models:/tiny@champion")
    assert pyfunc.metadata.signature.inputs.input_names() == ["image"]
    frame = pd.DataFrame({"image": [base64.b64encode(Path(i).read_bytes()).decode() for i in images]})
    out = pyfunc.predict(frame)
    assert list(out.columns) == ["score", "normalised_score", "is_anomalous", "threshold"]
    assert out["score"].to_numpy() == pytest.approx(np.array(expected), rel=1e-6)


@pytest.mark.parametrize("uri, names", [
    ("models:/nope@champion", ["'nope'", "'tiny'"]),
    ("models:/tiny@production", ["'production'", "champion"]),
    ("models:/tiny/7", ["version '7'", "['1']"]),
    ("runs:/0123456789abcdef/model", ["0123456789abcdef"]),
])
def test_unknown_model_uris_name_the_problem_and_list_what_exists(run, uri, names):
    with pytest.raises(tracking.RegistryError) as error:
        Detector.load(uri)
    assert all(name in str(error.value) for name in names), str(error.value)


def test_promotion_rule(run, mlflow_run):
    client, logged = mlflow_run
    auroc, fingerprint = logged.data.metrics[tracking.CRITERION], logged.data.tags["dataset.fingerprint"]
    assert run.registration.promoted and "first champion" in run.registration.reason
    assert str(client.get_model_version_by_alias("tiny", "champion").version) == "1"
    painted = logged.data.metrics[tracking.FALLBACK_CRITERION]
    for key, value in ((tracking.CRITERION, auroc), (tracking.FALLBACK_CRITERION, painted)):
        assert not tracking.promote("tiny", "1", force=False, criterion=(key, value + 0.1), fingerprint="other")[0]
        assert not tracking.promote("tiny", "1", force=False, criterion=(key, value), fingerprint=fingerprint)[0]
        promoted, reason = tracking.promote("tiny", "1", force=False, criterion=(key, value + 0.001),
                                            fingerprint=fingerprint)
        assert promoted and reason.startswith(f"{key} {value + 0.001:.4f} > {value:.4f}")
    assert not tracking.promote("tiny", "1", force=False, criterion=None, fingerprint=fingerprint)[0]
    assert not tracking.promote("tiny", "1", force=False, criterion=("painted/missing", 1.0), fingerprint=fingerprint)[0]
    assert tracking.promote("tiny", "1", force=True, criterion=None, fingerprint="other") == (True, "--promote")


def test_without_labelled_images_the_painted_defects_choose_the_champion(home, tmp_path):
    folder = tmp_path / "normals"  # normal images only: no test split, so no test AUROC
    folder.mkdir()
    for row in [r for r in csv.DictReader(open(SAMPLE_MANIFEST)) if r["split"] == "train"][:16]:
        shutil.copy(SAMPLE_DIR / row["image"], folder)
    runs = [train(TrainConfig(data=str(folder), out=str(tmp_path / f"b{seed}"), experiment="normals-only",
                              **{**TINY, "seed": seed}), progress=False) for seed in (0, 1)]
    first, second = (r.registration for r in runs)
    assert first.promoted and "first champion" in first.reason and runs[0].report is None
    before, after = (r.painted_aurocs["drawn_pixel_auroc"] for r in runs)
    assert second.promoted == (after > before) and second.reason.startswith(tracking.FALLBACK_CRITERION)
    champion = tracking.client().get_model_version_by_alias("normals-only", "champion").version
    assert str(champion) == str(second.version if after > before else first.version)


def test_train_cli_passes_tracking_options(monkeypatch):
    seen = {}

    def fake_train(config, started):
        seen["config"], seen["started"] = config, started
        raise ValueError("stop here")

    monkeypatch.setattr("anomaly.training.train", fake_train)
    invoked = time.perf_counter()
    result = CliRunner().invoke(app, ["train", "--no-tracking", "--experiment", "e", "--register-as", "r",
                                      "--promote"])
    assert result.exit_code == 2 and "stop here" in result.output
    assert invoked < seen["started"] < time.perf_counter()  # --time-budget counts from the command's start
    config = seen["config"]
    assert (config.tracking, config.experiment, config.register_as, config.promote) == (False, "e", "r", True)
    CliRunner().invoke(app, ["train"])
    assert seen["config"].tracking is True and seen["config"].promote is False


def test_ui_points_to_the_server_when_the_store_is_one(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    result = CliRunner().invoke(app, ["ui"])
    assert result.exit_code == 2 and "open that address" in result.output
