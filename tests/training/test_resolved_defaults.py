"""Defaults resolved at training: epochs 0 is the model's default (draem's under a time budget: as many as fit, at
most its budget_epochs; what ran is config.epochs), so are an unset input size and map smoothing;
precision "auto" picks bfloat16 mixed precision only where the hardware computes it fast."""

import pytest
import torch

from anomaly.bundle import load_bundle
from anomaly.config import ModelConfig, TrainConfig
from anomaly.models import OPTIONS, option_defaults
from anomaly.training import resolve_precision


@pytest.mark.parametrize("model, epochs, budget, expected",
                         [("draem", 0, 20.0, 700), ("draem", 0, 0.0, 60), ("ae", 0, 20.0, 30), ("draem", 7, 20.0, 7)])
def test_epochs_zero_trains_the_models_default(tmp_path, monkeypatch, model, epochs, budget, expected):
    import lightning as L

    from anomaly.training import train

    class StopAfterOneEpoch(L.Callback):
        max_epochs = None

        def on_train_epoch_end(self, trainer, pl_module):
            self.max_epochs, trainer.should_stop = trainer.max_epochs, True

    assert TrainConfig().epochs == 0 and TrainConfig().image_size is None
    monkeypatch.setattr(OPTIONS[model], "image_size", (32, 32))  # the default, small for speed
    config = TrainConfig(model=model, width=4, depth=2, epochs=epochs, time_budget=budget, batch_size=8,
                         tracking=False, out=str(tmp_path / model),
                         options={"crop": 16, "seg_width": 4} if model == "draem" else {})
    stop = StopAfterOneEpoch()
    result = train(config, progress=False, callbacks=[stop])
    assert result.epochs_asked == stop.max_epochs == expected and result.config.epochs == 1  # as asked, as run
    for resolved in (result.config, result.model_config):  # as logged and as saved in the bundle
        assert resolved.smoothing_sigma == (0.0 if model == "draem" else 4.0) and resolved.image_size == (32, 32)
    # every option is saved, so the bundle keeps its settings when a default changes
    saved = load_bundle(result.bundle_path).config.options
    assert saved == {**option_defaults(model), **config.options}


def test_unset_smoothing_is_the_models_default_and_a_given_one_is_kept():
    assert (ModelConfig(name="draem").smoothing_sigma, ModelConfig(name="ae").smoothing_sigma) == (0.0, 4.0)
    # draem's is chosen per input size: none at 128, 1 at 256; another size takes the nearest (halfway: 256's)
    sigmas = [ModelConfig(name="draem", image_size=size).smoothing_sigma
              for size in ((128, 128), (256, 256), (96, 160), (192, 192), (512, 384))]
    assert sigmas == [0.0, 1.0, 0.0, 1.0, 1.0]
    assert ModelConfig(name="ae", image_size=(128, 128)).smoothing_sigma == 4.0
    assert TrainConfig(model="ae", smoothing_sigma=0.0).model_config(1).smoothing_sigma == 0.0  # 0: none, set
    assert ModelConfig.from_dict({"name": "draem", "smoothing_sigma": 4.0}).smoothing_sigma == 4.0  # older bundles


def test_unset_image_size_is_the_models_default_and_a_given_one_is_kept():
    assert (ModelConfig(name="draem").image_size, ModelConfig(name="ae").image_size) == ((128, 128), (256, 256))
    assert TrainConfig(model="draem").model_config(1).image_size == (128, 128)
    assert TrainConfig(model="draem", image_size=(64, 64)).model_config(1).image_size == (64, 64)
    assert ModelConfig.from_dict({"name": "draem", "image_size": [256, 256]}).image_size == (256, 256)  # older bundles


def test_auto_precision_is_bf16_only_where_the_hardware_computes_it_fast():
    assert resolve_precision("auto", "cpu") == ("bf16-mixed" if torch.cpu._is_amx_tile_supported() else "32")
    for explicit in ("32", "bf16-mixed"):
        assert resolve_precision(explicit, "cpu") == explicit
    if not torch.cuda.is_available():
        assert resolve_precision("auto", "gpu") == "32"  # no GPU: nothing native to use


@pytest.mark.skipif(not (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()),
                    reason="this CPU has no native bfloat16")
def test_bf16_training_learns_the_same_as_float32(tmp_path):
    """A tiny draem trained both ways on the bundled sample from the same seed: bf16 rounds the
    convolutions (the losses differ) but the epochs' losses stay within 3% of float32's (the losses
    and SSIM statistics are computed in float32)."""
    import lightning as L

    from anomaly.training import train

    class EpochCounter(L.Callback):
        count = 0

        def on_train_epoch_end(self, trainer, pl_module):
            self.count += 1

    histories = {}
    for precision in ("32", "bf16-mixed"):
        config = TrainConfig(model="draem", image_size=(64, 64), width=8, depth=3, epochs=6, batch_size=8,
                             accelerator="cpu", precision=precision, tracking=False, out=str(tmp_path / precision),
                             options={"crop": 32, "seg_width": 8, "seg_depth": 2})
        epochs_seen = EpochCounter()
        result = train(config, progress=False, callbacks=[epochs_seen])
        assert result.config.precision == precision and epochs_seen.count == 6  # extra callbacks are run
        histories[precision] = torch.tensor([e["train/loss"] for e in result.epoch_losses])
    full, mixed = histories["32"], histories["bf16-mixed"]
    assert not torch.equal(full, mixed)
    assert ((mixed - full).abs() / full).max() < 0.03, histories
