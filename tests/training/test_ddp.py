"""Lightning DDP for real on this CPU: `anomaly train --config ddp.yaml` with `devices: 2, strategy: ddp` runs two
processes (gloo; Lightning's launcher re-runs the command for local rank 1), and only global rank 0 calibrates,
validates on painted defects, writes the bundle and logs to MLflow.

Why the 2-process run must equal the 1-process run of the same seed: every epoch is one full-batch step (the batch
size is at least the 16 training images), so the 2-process step (each rank's mean gradient over its 8 images,
averaged by DDP) is the 1-process step over all 16; ssim-ae has no batch statistics and its loss draws nothing at
random. Weights, losses and thresholds then differ only by the order of float sums: TOLERANCE. A rank-0 calibration
on its share of the held-out slice would fail on n_images and the thresholds; one rank's share of the validation
would fail on val/loss (the ranks' shares of 2 images each have different means than the 4 together).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from anomaly import tracking
from anomaly.bundle import load_bundle
from anomaly.calibration import calibrate
from anomaly.config import TrainConfig
from anomaly.data import AnomalyDataModule, load_samples
from anomaly.detector import Detector
from anomaly.training import train
from tests.conftest import sample_subset

SETTINGS = dict(model="ssim-ae", image_size=[32, 32], epochs=2, width=8, latent_dim=32, batch_size=16, seed=0,
                accelerator="cpu")
TOLERANCE = dict(rel=1e-4, abs=1e-6)  # float sums in another order: measured differences are below 1e-6
EXPERIMENT = "ddp-two-processes"


def ddp_train(tmp_path: Path, data: Path) -> tuple[subprocess.CompletedProcess, float]:
    config = tmp_path / "ddp.yaml"
    config.write_text(yaml.safe_dump({**SETTINGS, "data": str(data), "out": str(tmp_path / "ddp"), "devices": 2,
                                      "num_nodes": 1, "strategy": "ddp", "experiment": EXPERIMENT}))
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "anomaly", "train", "--config", str(config)],
                            capture_output=True, text=True, timeout=400, cwd=tmp_path)
    return result, time.perf_counter() - start


@pytest.mark.scaleout
def test_two_processes_train_like_one_and_rank_0_alone_calibrates_logs_and_writes(tmp_path, mlflow_store):
    data = sample_subset(tmp_path / "tiny.csv", 20, 0, 0)  # 16 training normals, 4 held out
    ddp, ddp_seconds = ddp_train(tmp_path, data)
    assert ddp.returncode == 0, ddp.stdout + ddp.stderr
    start = time.perf_counter()
    single = train(TrainConfig(**{**SETTINGS, "image_size": (32, 32)}, data=str(data), out=str(tmp_path / "single"),
                               tracking=False), progress=False)
    single_seconds = time.perf_counter() - start

    # rank 0 alone reported: one line per epoch, one result, one bundle
    out = ddp.stdout
    assert [out.count(f"epoch {e}/2 ·") for e in (1, 2)] == [1, 1], out
    assert out.count("trained ssim-ae for 2 epochs in") == 1 and out.count("model bundle:") == 1, out
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == sorted(p.name for p in single.bundle_path.iterdir())

    # the held-out slice, every image once: the datamodule's (seeded by path) and the calibration's count
    held_out = AnomalyDataModule(load_samples(str(data)), (32, 32), 1, val_fraction=0.2, seed=0).val_samples
    assert held_out == single.val_samples and len(held_out) == 4
    bundle = load_bundle(tmp_path / "ddp")
    assert bundle.calibration.n_images == 4
    # the normal-score statistics: the bundle's own weights on the whole slice, computed here with numpy
    scores = np.array([p.score for p in Detector.load(tmp_path / "ddp").predict([s.image for s in held_out])])
    c = bundle.calibration
    assert [c.score_min, c.score_max, c.score_mean, c.score_p50] == pytest.approx(
        [scores.min(), scores.max(), scores.mean(), np.median(scores)], rel=1e-5)

    # the 1-process run of the same seed: same weights, thresholds and per-epoch losses within TOLERANCE
    weights = {k: v.numpy() for k, v in load_bundle(single.bundle_path).state_dict.items()}
    assert weights.keys() == bundle.state_dict.keys()
    assert all(np.allclose(bundle.state_dict[k].numpy(), weights[k], rtol=1e-4, atol=1e-6) for k in weights)
    for key in ("image_threshold", "pixel_threshold", "score_mean", "score_std", "map_low", "map_high"):
        assert getattr(c, key) == pytest.approx(getattr(single.calibration, key), **TOLERANCE), key

    # one MLflow run, with one value per epoch; one registered version
    client = tracking.client()  # the store the subprocess logged to (MLFLOW_TRACKING_URI), not mlflow's global
    [run] = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
    for key in ("train/loss", "val/loss", "val/ssim"):
        history = client.get_metric_history(run.info.run_id, key)
        assert [m.step for m in history] == [0, 1], key
        assert [m.value for m in history] == pytest.approx([e[key] for e in single.epoch_losses], **TOLERANCE), key
    assert run.data.metrics["calibration/image_threshold"] == pytest.approx(c.image_threshold)
    assert [str(v.version) for v in client.search_model_versions(f"name='{EXPERIMENT}'")] == ["1"]

    print(f"\nDDP 2 processes vs 1: image threshold {c.image_threshold:.7g} vs "
          f"{single.calibration.image_threshold:.7g}, pixel threshold {c.pixel_threshold:.7g} vs "
          f"{single.calibration.pixel_threshold:.7g}; wall time {ddp_seconds:.1f} s (the whole command, MLflow "
          f"included) vs {single_seconds:.1f} s (train(), no MLflow)")


@pytest.mark.parametrize("field, value, message", [("strategy", "ddp_spawn", "strategy must be one of"),
                                                   ("devices", 0, "devices must be >= 1"),
                                                   ("num_nodes", 0, "num-nodes must be >= 1")])
def test_distributed_options_are_checked_before_training(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{field: value})
