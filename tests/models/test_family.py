"""dae, inpaint, twodec, ganomaly: seeded reproducibility, learning on real images, maps, bundle round trip.

Tiny sizes throughout (32x48, width 4): the behaviour, not the quality, is under test.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from anomaly.bundle import load_bundle
from anomaly.config import ModelConfig, TrainConfig
from anomaly.data import decode_image
from anomaly.backends import TorchScorer, score_images
from anomaly.detector import Detector, preprocess
from anomaly.models import OPTIONS, build_model
from anomaly.training import train
from tests.conftest import sample_normals, sample_subset

FAMILY = ["dae", "inpaint", "twodec", "ganomaly"]
ROUND_TRIP = [*FAMILY, "draem"]  # every model beyond ae/ssim-ae/vae (those: tests/detector, tests/tracking)
TINY_OPTIONS = {"inpaint": {"mask_sizes": [4, 8], "msgms_scales": 3}, "draem": {"crop": 32, "seg_width": 4}}
SIZE = (32, 48)
# the loss term each test watches: the reconstruction the map is made from (adversarial totals need not fall)
WATCH = {"dae": "loss", "inpaint": "loss", "twodec": "l2_ae1", "ganomaly": "con"}


def small_config(name: str, **kw) -> ModelConfig:
    kw = {"lr": 3e-3, **kw}
    return ModelConfig(name=name, image_size=SIZE, channels=1, width=4, depth=3, latent_dim=16, **kw)


def sample_batch(n: int = 8) -> torch.Tensor:
    return sample_normals(n, SIZE)


def fit_on_batch(model: L.LightningModule, x: torch.Tensor, steps: int, seed: int = 0) -> L.LightningModule:
    """`steps` Lightning training steps (automatic or manual optimisation) on one batch, validating once."""
    L.seed_everything(seed, verbose=False)
    trainer = L.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        limit_val_batches=1, deterministic="warn")
    trainer.fit(model, DataLoader([{"image": x}] * steps, batch_size=None),
                DataLoader([{"image": x}], batch_size=None))
    return model.eval()


def seeded_losses(model, x: torch.Tensor) -> dict[str, float]:
    torch.manual_seed(7)  # the same noise / masks before and after training
    with torch.no_grad():
        return {k: v.item() for k, v in model.losses(x).items()}


def test_the_family_is_registered():
    assert set(FAMILY) <= set(OPTIONS)
    assert {name: small_config(name).residual for name in FAMILY} == {
        "dae": "ssim", "inpaint": "msgms", "twodec": "l2", "ganomaly": "l2"}


@pytest.mark.parametrize("name", FAMILY)
def test_seeded_training_is_reproducible(name):
    x = sample_batch(4)
    states = []
    for _ in range(2):
        torch.manual_seed(0)
        states.append(fit_on_batch(build_model(small_config(name)), x, steps=2, seed=0).state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    torch.manual_seed(0)
    assert not all(torch.equal(states[0][k], v) for k, v in build_model(small_config(name)).state_dict().items())


@pytest.mark.parametrize("name", FAMILY)
def test_loss_decreases_on_real_images_and_map_finds_a_defect(name):
    torch.manual_seed(0)
    model = build_model(small_config(name, lr=1e-2, smoothing_sigma=1.0))
    x = sample_batch(4)
    before = seeded_losses(model, x)
    after = seeded_losses(fit_on_batch(model, x, steps=30), x)
    assert after[WATCH[name]] < 0.9 * before[WATCH[name]], (before, after)
    assert all(np.isfinite(v) for v in after.values())
    assert model(x).shape == x.shape
    defective = x.clone()
    defective[:, :, 8:16, 20:30] = 1.0  # a bright patch
    amap = model.anomaly_map(defective)
    assert amap.shape == (4, 1, *SIZE) and torch.isfinite(amap).all() and (amap >= 0).all()
    assert amap[..., 8:16, 20:30].mean() > 1.5 * amap[..., 20:, :16].mean()
    torch.manual_seed(1)
    assert torch.equal(amap, model.anomaly_map(defective))  # scoring never draws from the global RNG


def test_ganomaly_image_score_adds_the_latent_error_to_the_map_reduction():
    torch.manual_seed(0)
    x = sample_batch(4)
    config = small_config("ganomaly", options={"latent_weight": 10.0})
    model = build_model(config).eval()
    scores, maps = score_images(model, config, x)
    z, _, z_hat = model.net.generator(x)
    expected = maps.flatten(1).amax(dim=1) + 10.0 * (z - z_hat).pow(2).mean(dim=1)
    torch.testing.assert_close(scores, expected)
    assert (scores > maps.flatten(1).amax(dim=1)).all()


def test_twodec_map_is_the_documented_weighting():
    torch.manual_seed(0)
    x = sample_batch(2)
    model = build_model(small_config("twodec", smoothing_sigma=0, options={"score_weights": [0.25, 0.75]})).eval()
    ae1 = model(x)
    ae2_of_ae1 = model.net.decoder2(model.net.encoder(ae1))
    expected = 0.25 * (x - ae1).pow(2) + 0.75 * (x - ae2_of_ae1).pow(2)
    torch.testing.assert_close(model.anomaly_map(x), expected)


def test_unknown_or_invalid_options_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="unknown option.*'noise'.*noise_std=0.1"):
        build_model(small_config("dae", options={"noise": 0.2}))
    with pytest.raises(ValueError, match="score_weights"):
        build_model(small_config("twodec", options={"score_weights": [1.0]}))
    with pytest.raises(ValueError, match="n_masks >= 2"):
        build_model(small_config("inpaint", options={"n_masks": 1}))


@pytest.fixture(scope="module")
def tiny_manifest(tmp_path_factory) -> str:
    """12 training normals and 2 + 2 test images of the bundled sample."""
    return str(sample_subset(tmp_path_factory.mktemp("manifest") / "manifest.csv", 12, 2, 2))


@pytest.fixture(scope="module")
def trained(tiny_manifest, tmp_path_factory):
    """name -> TrainResult of `anomaly.training.train` (2 epochs, 32x48), trained on first use."""
    results = {}

    def get(name: str):
        if name not in results:
            options = TINY_OPTIONS.get(name, {})
            config = TrainConfig(model=name, data=tiny_manifest, out=str(tmp_path_factory.mktemp("bundle") / name),
                                 image_size=SIZE, depth=3, width=4, latent_dim=16, epochs=2, batch_size=4, seed=0,
                                 accelerator="cpu", tracking=False, val_fraction=0.25, options=options)
            results[name] = train(config, progress=False)
        return results[name]

    return get


def _test_images(result) -> list:
    return [s.image for s in result.samples if s.split == "test"]


@pytest.mark.parametrize("name", ROUND_TRIP)
def test_bundle_round_trip_gives_identical_scores(trained, name):
    result = trained(name)
    assert all("train/loss" in e and "val/loss" in e for e in result.epoch_losses)  # 2 epochs: both validated
    bundle = load_bundle(result.bundle_path)
    assert bundle.config == result.model_config and bundle.config.options == result.model_config.options
    test = _test_images(result)
    predictions = Detector.load(result.bundle_path).predict(test)
    # the same weights scored in memory, without the bundle: the same scoring step exactly (conv-BN
    # fused, channels-last), the plain model to float32 rounding
    model = build_model(result.model_config)
    model.load_state_dict(bundle.state_dict)
    arrays = [decode_image(p, 1) for p in test]
    batch = preprocess(arrays, SIZE)
    scores, _ = TorchScorer(model, result.model_config, torch.device("cpu"))(batch)
    assert [p.score for p in predictions] == scores.tolist()
    plain, _ = score_images(model.eval(), result.model_config, batch)
    torch.testing.assert_close(plain, scores, rtol=1e-5, atol=1e-6)
    assert all(p.anomaly_map.shape == a.shape[1:] and np.isfinite(p.anomaly_map).all()
               for p, a in zip(predictions, arrays))
    assert [p.score for p in Detector.load(result.bundle_path).predict(test)] == [p.score for p in predictions]


def test_mlflow_round_trip_gives_identical_scores(trained, tmp_path, monkeypatch):
    """Each family model logged and registered in a temporary SQLite store, loaded back by version."""
    tracking = pytest.importorskip("anomaly.tracking")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    for name in ROUND_TRIP:
        result = trained(name)
        test = _test_images(result)
        with tracking.start_run("family", f"train-{name}", {}):
            version = tracking.log_bundle(result.bundle_path, f"family-{name}", Path(test[0]).read_bytes())
        expected = [p.score for p in Detector.load(result.bundle_path).predict(test)]
        detector = Detector.load(f"models:/family-{name}/{version}")
        assert detector.config == result.model_config
        assert [p.score for p in detector.predict(test)] == expected, name
    assert (tmp_path / "mlruns").is_dir()
