"""What `anomaly train` makes of its "model's default" and "hardware's default" settings."""

import pytest
import torch

from anomaly.config import TrainConfig
from anomaly.models import DEFAULT_EPOCHS, MODEL_CLASSES
from anomaly.training import resolve_precision, resolved


def test_epochs_zero_means_the_models_own_default():
    assert TrainConfig().epochs == 0
    assert resolved(TrainConfig(model="draem")).epochs == DEFAULT_EPOCHS["draem"]
    assert {resolved(TrainConfig(model=name)).epochs for name in MODEL_CLASSES if name not in DEFAULT_EPOCHS} == {30}
    assert resolved(TrainConfig(model="draem", epochs=7)).epochs == 7  # an explicit value wins
    assert resolved(TrainConfig(model="draem")).replace(model="ae").epochs == DEFAULT_EPOCHS["draem"]  # resolved once


def test_auto_precision_is_bf16_only_where_the_hardware_has_it():
    cpu_bf16 = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert resolve_precision("auto", "cpu") == ("bf16-mixed" if cpu_bf16 else "32")
    for explicit in ("32", "bf16-mixed"):
        assert resolve_precision(explicit, "cpu") == explicit
    if not torch.cuda.is_available():
        assert resolve_precision("auto", "gpu") == "32"  # no GPU: nothing native to use
    assert resolved(TrainConfig(accelerator="cpu")).precision in ("32", "bf16-mixed")


@pytest.mark.skipif(not (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()),
                    reason="this CPU has no native bfloat16")
def test_bf16_training_learns_the_same_as_float32(tmp_path):
    """A tiny draem trained both ways on the bundled sample from the same seed: bf16 rounds the
    convolutions (the losses differ) but the epochs' losses stay within 3% of float32's (the losses
    and SSIM statistics are computed in float32)."""
    from anomaly.training import train

    histories = {}
    for precision in ("32", "bf16-mixed"):
        config = TrainConfig(model="draem", image_size=(64, 64), width=8, depth=3, epochs=6, batch_size=8,
                             accelerator="cpu", precision=precision, tracking=False, out=str(tmp_path / precision),
                             options={"crop": 32, "seg_width": 8, "seg_depth": 2})
        histories[precision] = torch.tensor([e["train/loss"] for e in train(config, progress=False).epoch_losses])
    full, mixed = histories["32"], histories["bf16-mixed"]
    assert not torch.equal(full, mixed)
    assert ((mixed - full).abs() / full).max() < 0.03, histories
