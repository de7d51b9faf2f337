"""`anomaly train` / `anomaly evaluate` as a user runs them: real processes, real files."""

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score


def anomaly(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "anomaly", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


@pytest.fixture(scope="module")
def cli_bundle(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    config = tmp / "tiny.yaml"
    config.write_text("model: vae\nimage-size: 32x48\nepochs: 9\nwidth: 4\nlatent_dim: 8\nbatch_size: 16\n"
                      "depth: 3\n")
    # CLI options override the YAML (epochs 9 -> 2)
    result = anomaly("train", "--config", str(config), "--epochs", "2", "--out", str(tmp / "bundle"),
                     "--accelerator", "cpu")
    return tmp / "bundle", result


def test_train_writes_a_bundle_and_reports_test_metrics(cli_bundle):
    bundle, result = cli_bundle
    assert result.returncode == 0, result.stderr
    config = json.loads((bundle / "config.json").read_text())
    assert config["name"] == "vae" and config["image_size"] == [32, 48] and config["latent_dim"] == 8
    assert "image AUROC" in result.stdout and "good + break" in result.stdout
    assert re.search(r"image / pixel AUROC: drawn [01]\.\d{3} / [01]\.\d{3}, thin [01]\.\d{3} / [01]\.\d{3}\.",
                     result.stdout.replace("\n", ""))
    assert f"model bundle: {bundle}" in result.stdout.replace("\n", "")


def test_evaluate_json_matches_an_independent_auroc(cli_bundle, trained):
    bundle, _ = cli_bundle
    result = anomaly("evaluate", "--model", str(bundle), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {"image_auroc", "pixel_auroc", "aupro", "f1", "per_defect", "threshold"} <= set(report)
    assert set(report["per_defect"]) == {"blowhole", "break"}
    from anomaly.detector import Detector

    test = [s for s in trained.samples if s.split == "test"]
    scores = [p.score for p in Detector.load(bundle).predict([s.image for s in test])]
    assert report["image_auroc"] == pytest.approx(roc_auc_score([s.label for s in test], scores))
    normal_scores = np.array([score for s, score in zip(test, scores) if s.label == 0])
    assert report["false_alarm_rate"] == pytest.approx((normal_scores >= report["threshold"]).mean())
    assert report["target_fpr"] == 0.01 and report["painted"] == {}  # labelled data: painted only when asked


def test_evaluate_on_normal_images_alone_reports_false_alarms_and_painted_defects(cli_bundle, trained, tmp_path):
    """A folder of new normal images (read as split 'train'): no AUROC to compute, so the false alarms at the
    threshold and the painted defects found in them are what tells a user whether the model still fits."""
    from anomaly.data import scan_folder
    from anomaly.detector import Detector
    from anomaly.painted import held_out_checks

    bundle, _ = cli_bundle
    new_normals = [s for s in trained.samples if s.split == "test" and s.label == 0]
    for i, sample in enumerate(new_normals):
        shutil.copy(sample.image, tmp_path / f"new-{i}{sample.image.suffix}")
    missing = anomaly("evaluate", "--model", str(bundle), "--data", str(tmp_path))
    assert missing.returncode == 2 and "use --split train" in missing.stderr

    result = anomaly("evaluate", "--model", str(bundle), "--data", str(tmp_path), "--split", "train", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["n_normal"] == len(new_normals) and report["n_anomalous"] == 0 and report["image_auroc"] is None
    detector = Detector.load(bundle)
    samples = scan_folder(tmp_path)
    scores = np.array([p.score for p in detector.predict([s.image for s in samples])])
    assert report["false_alarm_rate"] == pytest.approx((scores >= report["threshold"]).mean())
    assert report["painted"] == pytest.approx(held_out_checks(detector, samples))
    assert set(report["painted"]) == {"drawn_image_auroc", "drawn_pixel_auroc", "thin_image_auroc", "thin_pixel_auroc",
                                      "reconstruction_spread"}

    table = anomaly("evaluate", "--model", str(bundle), "--data", str(tmp_path), "--split", "train").stdout
    table = " ".join(table.split())
    assert f"false alarms: {report['false_alarm_rate']:.1%} of the {len(new_normals)} normal images (the threshold was calibrated " \
           "for 1.0%)" in table
    assert "Painted defects in the normal images" in table
    assert f"drawn {report['painted']['drawn_image_auroc']:.3f} / {report['painted']['drawn_pixel_auroc']:.3f}" in table
    skipped = anomaly("evaluate", "--model", str(bundle), "--data", str(tmp_path), "--split", "train", "--json",
                      "--no-painted")
    assert json.loads(skipped.stdout)["painted"] == {}
