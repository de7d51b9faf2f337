"""What `anomaly train` prints into a log (stdout a pipe, as under nohup or CI): one line per epoch, and none of
the third-party chatter unless --verbose; `anomaly evaluate`'s progress covers the painted-defect step."""

import re
import subprocess
import sys

from anomaly.detector import Detector
from anomaly.evaluation import evaluate
from anomaly.painted import DRAWS, RECIPES
from tests.conftest import sample_subset

TINY = ["--model", "ssim-ae", "--image-size", "64", "--width", "8", "--latent-dim", "32", "--batch-size", "8",
        "--accelerator", "cpu"]
NOISE = ["litlogger", "LeafSpec", "Add type hints", "Downloading artifacts", "GPU available", "INFO mlflow",
         "UserWarning", "warnings.warn", "image_threshold, method =",  # a warning's source line
         "Successfully registered model", "Created version"]


def train(tmp_path, *args: str, verbose: bool = False) -> subprocess.CompletedProcess:
    data = sample_subset(tmp_path / "tiny.csv", 16, 3, 3)
    return subprocess.run([sys.executable, "-m", "anomaly", *["--verbose"] * verbose, "train", "--data", str(data),
                           *TINY, "--out", str(tmp_path / "bundle"), *args],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)


def test_a_log_gets_one_line_per_epoch_and_no_third_party_noise(tmp_path):
    result = train(tmp_path, "--epochs", "3", "--experiment", "progress")  # tracked: MLflow's chatter too
    assert result.returncode == 0, result.stderr
    epochs = re.findall(r"^epoch (\d)/3 · train/loss \d\.\d+ · val/loss \d\.\d+ · \d+\.\d s · ETA 0:00:\d\d$",
                        result.stdout, re.M)
    assert epochs == ["1", "2", "3"], result.stdout
    output = result.stdout + result.stderr
    assert not [n for n in NOISE if n in output], output
    assert re.search(r"^warning: .*\d+ normal images", result.stderr, re.M)  # ours (anomaly.calibration): one line


def test_verbose_shows_the_third_party_output(tmp_path):
    result = train(tmp_path, "--epochs", "1", "--no-tracking", "--no-evaluate", verbose=True)
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "litlogger" in output and "LeafSpec" in output and "UserWarning" in output
    assert re.search(r"^epoch 1/1 · ", result.stdout, re.M)


def test_evaluate_reports_progress_through_every_painted_draw(trained):
    detector = Detector.load(trained.bundle_path)
    draws = []
    normals = [s for s in trained.samples if s.split == "test" and s.label == 0]
    report, _ = evaluate(detector, normals, painted=True, on_draw=lambda: draws.append(1))
    assert report.painted and len(draws) == len(RECIPES) * DRAWS
