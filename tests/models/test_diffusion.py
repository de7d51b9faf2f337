"""diffusion: its schedule, noise and DDIM steps against hand-written formulas; seeded training that learns on real
images; deterministic maps; bundle, MLflow, ONNX, CLI and service round trips.

Tiny sizes throughout (32x48, width 4): the behaviour, not the quality, is under test.
"""

from __future__ import annotations

import contextlib
import csv
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

from anomaly.bundle import load_bundle
from anomaly.config import ModelConfig
from anomaly.detector import Detector
from anomaly.export import export_onnx
from anomaly.models import build_model
from anomaly.models.diffusion.torch_model import linear_alpha_bars, pyramid_noise
from tests.conftest import sample_normals
from tests.models.test_family import SIZE, fit_on_batch, seeded_losses

TINY = {"timesteps": 100, "train_level": 50, "noise_level": 20, "denoise_steps": 2}


def tiny(**options) -> ModelConfig:
    return ModelConfig(name="diffusion", image_size=SIZE, channels=1, width=4, depth=3, lr=3e-3,
                       options={**TINY, **options})


def test_alpha_bars_are_the_cumulative_product_of_linear_betas():
    betas = np.linspace(1e-4, 0.02, 1000)
    expected = np.concatenate([[1.0], np.cumprod(1 - betas)])
    np.testing.assert_allclose(linear_alpha_bars(1000).numpy(), expected, rtol=1e-12)
    assert linear_alpha_bars(100)[-1] < 1e-3  # T = 100: betas scaled by 10, still ending near pure noise


def test_pyramid_noise_is_standardised_and_smoother_than_white_noise():
    generator = torch.Generator().manual_seed(0)
    noise = pyramid_noise((3, 1, 64, 64), generator)
    torch.testing.assert_close(noise.mean(dim=(1, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(noise.std(dim=(1, 2, 3)), torch.ones(3), atol=1e-5, rtol=0)

    def neighbour_correlation(x: torch.Tensor) -> float:
        return float(np.corrcoef(x[..., :, 1:].flatten(), x[..., :, :-1].flatten())[0, 1])

    assert neighbour_correlation(noise) > 0.25 > 0.1 > abs(neighbour_correlation(torch.randn(3, 1, 64, 64)))
    assert torch.equal(noise, pyramid_noise((3, 1, 64, 64), torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("steps", [1, 2])
def test_reconstruction_is_the_ddim_update_from_the_fixed_noise(steps):
    """x_t0 = sqrt(a0) (2x - 1) + sqrt(1 - a0) noise; per step x0 = clamp((x_t - sqrt(1 - a) eps) / sqrt(a), -1, 1),
    x_next = sqrt(a_next) x0 + sqrt(1 - a_next) eps (DDIM, eta 0), written out here by hand."""
    torch.manual_seed(0)
    model = build_model(tiny(denoise_steps=steps, noise="gaussian")).eval()
    x = sample_normals(2, SIZE)
    a = linear_alpha_bars(100).float()
    noise = torch.randn((1, 1, *SIZE), generator=torch.Generator().manual_seed(0))  # noise_seed 0
    visited = [20, 0] if steps == 1 else [20, 10, 0]
    xt = a[20].sqrt() * (2 * x - 1) + (1 - a[20]).sqrt() * noise
    with torch.no_grad():
        for t, t_next in zip(visited, visited[1:]):
            eps = model.net.unet(xt, torch.tensor([t]))
            x0 = ((xt - (1 - a[t]).sqrt() * eps) / a[t].sqrt()).clamp(-1, 1)
            xt = a[t_next].sqrt() * x0 + (1 - a[t_next]).sqrt() * eps
        torch.testing.assert_close(model(x), (x0 + 1) / 2)


def test_seeded_training_is_reproducible_and_changes_the_weights():
    x = sample_normals(4, SIZE)
    states = []
    for _ in range(2):
        torch.manual_seed(0)
        states.append(fit_on_batch(build_model(tiny()), x, steps=2, seed=0).state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    torch.manual_seed(0)
    assert not all(torch.equal(states[0][k], v) for k, v in build_model(tiny()).state_dict().items())


def test_noise_prediction_loss_decreases_on_real_images_and_the_map_finds_a_defect():
    torch.manual_seed(0)
    model = build_model(ModelConfig(**{**tiny(noise_level=10).to_dict(), "residual": "l2", "smoothing_sigma": 1.0,
                                     "lr": 1e-2}))
    x = sample_normals(8, SIZE)
    before = seeded_losses(model, x)["loss"]
    after = seeded_losses(fit_on_batch(model, x, steps=60), x)["loss"]
    assert after < 0.6 * before, (before, after)
    defective = x.clone()
    defective[:, :, 8:16, 20:30] = 1.0  # a bright patch
    amap = model.anomaly_map(defective)
    assert amap.shape == (8, 1, *SIZE) and torch.isfinite(amap).all() and (amap >= 0).all()
    assert amap[..., 8:16, 20:30].mean() > 1.5 * amap[..., 20:, :16].mean()


def test_scoring_is_deterministic_and_per_image():
    """The same image gets the same map whatever the global RNG and whatever else is in its batch."""
    torch.manual_seed(0)
    model = build_model(tiny()).eval()
    x = sample_normals(4, SIZE)
    torch.manual_seed(1)
    first = model.anomaly_map(x)
    torch.manual_seed(2)
    assert torch.equal(first, model.anomaly_map(x))
    torch.testing.assert_close(model.anomaly_map(x[2:3]), first[2:3])
    other_seed = build_model(tiny(noise_seed=1)).eval()
    other_seed.load_state_dict(model.state_dict())
    assert not torch.equal(first, other_seed.anomaly_map(x))


@pytest.mark.parametrize("residual", ["msgms", "l2", "ssim"])
def test_other_residuals_compare_the_same_reconstruction(residual):
    from anomaly.scoring import l2_map, msgms_map, residual_map

    torch.manual_seed(0)
    config = ModelConfig(**{**tiny().to_dict(), "residual": residual, "smoothing_sigma": 0.0})
    model = build_model(config).eval()
    x = sample_normals(2, SIZE)
    expected = {"msgms": lambda: 1 - msgms_map(x, model(x), scales=4), "l2": lambda: l2_map(x, model(x)),
                "ssim": lambda: residual_map(x, model(x), "ssim")}[residual]()
    torch.testing.assert_close(model.anomaly_map(x), expected)


@pytest.mark.parametrize(("options", "message"), [
    ({"noise": "simplex"}, "noise must be one of"),
    ({"noise_level": 60}, "train_level must be in \\[noise_level=60"),
    ({"denoise_steps": 21}, "denoise_steps must be in \\[1, noise_level=20\\]"),
    ({"noise_level": 0}, "noise_level must be in \\[1, timesteps=100\\]"),
    ({"timesteps": 1}, "timesteps must be in"),
])
def test_invalid_options_are_refused_naming_the_rule(options, message):
    with pytest.raises(ValueError, match=message):
        build_model(tiny(**options))


def test_trains_and_scores_through_cli_bundle_mlflow_export_audit_and_service(tmp_path, monkeypatch):
    """One tiny run through every door: `anomaly train` (tracked), the bundle, the registered MLflow version,
    the ONNX export (parity), `anomaly audit` and the service's /predict."""
    from tests.conftest import sample_subset

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    manifest = sample_subset(tmp_path / "manifest.csv", 12, 2, 2)
    out = tmp_path / "bundle"
    options = [arg for key, value in TINY.items() for arg in ("--option", f"{key}={value}")]
    subprocess.run([sys.executable, "-m", "anomaly", "train", "--model", "diffusion", "--data", str(manifest),
                    "--out", str(out), "--image-size", "32x48", "--width", "4", "--depth", "3", "--epochs", "2",
                    "--batch-size", "4", "--val-fraction", "0.25", "--accelerator", "cpu", "--register-as",
                    "family-diffusion", *options], check=True, capture_output=True, text=True)
    bundle = load_bundle(out)
    assert bundle.config.name == "diffusion" and bundle.config.options["noise_level"] == 20
    test = [line.split(",")[0] for line in manifest.read_text().splitlines()[1:]][-4:]
    expected = [p.score for p in Detector.load(out).predict(test)]
    assert len(set(expected)) == 4 and all(np.isfinite(expected))
    assert [p.score for p in Detector.load("models:/family-diffusion/1").predict(test)] == expected

    exported = export_onnx(bundle, tmp_path / "onnx")
    onnx_scores = [p.score for p in Detector.load(exported, backend="onnxruntime").predict(test)]
    np.testing.assert_allclose(onnx_scores, expected, atol=1e-4)

    audit = tmp_path / "audit"
    subprocess.run([sys.executable, "-m", "anomaly", "audit", *test, "--model", str(out), "--out", str(audit),
                    "--no-progress"], check=True, capture_output=True, text=True)
    with open(audit / "results.csv") as f:
        audited = {Path(row["path"]).name: float(row["score"]) for row in csv.DictReader(f)}
    assert [audited[Path(p).name] for p in test] == pytest.approx(expected, rel=1e-6)

    from tests.service.conftest import LIMITS, start
    from service.config import Settings

    with contextlib.contextmanager(start)(Settings(model=str(out), **LIMITS)) as live:
        answer = httpx.post(f"{live.url}/v1/predict", files=[("files", ("a.jpg", Path(test[0]).read_bytes()))])
    assert answer.status_code == 200, answer.text
    assert answer.json()["results"][0]["score"] == pytest.approx(expected[0], rel=1e-5)
