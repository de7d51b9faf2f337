"""AnomalyDataModule: the seeded validation slice, batches, and bad files caught early."""

import random
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from PIL import Image

from anomaly.data import AnomalyDataModule, ImageDecodeError, Sample, read_manifest
from anomaly.tiling import scaled_shape

MANIFEST = Path(__file__).parents[2] / "anomaly/sample/manifest.csv"


@pytest.fixture
def samples(tmp_path) -> list[Sample]:
    """20 train normals, 2 test normals, 2 test anomalies: 24x36 grey PNGs."""
    out = []
    for i in range(24):
        path = tmp_path / f"img{i:02d}.png"
        Image.new("L", (36, 24), 10 * i).save(path)
        split, label = ("train", 0) if i < 20 else ("test", int(i >= 22))
        out.append(Sample(path, None, label, "good" if label == 0 else "dent", split))
    return out


def _paths(items: list[Sample]) -> list[str]:
    return [s.image.name for s in items]


def test_val_slice_normal_only_disjoint_and_seeded(samples):
    dm = AnomalyDataModule(samples, (32, 48), 1, val_fraction=0.2, seed=0)
    assert len(dm.val_samples) == 4 and len(dm.train_samples) == 16
    assert all(s.label == 0 and s.split == "train" for s in dm.train_samples + dm.val_samples)
    assert not set(_paths(dm.train_samples)) & set(_paths(dm.val_samples))
    assert _paths(dm.test_samples) == ["img20.png", "img21.png", "img22.png", "img23.png"]
    shuffled = random.Random(3).sample(samples, len(samples))
    again = AnomalyDataModule(shuffled, (32, 48), 1, val_fraction=0.2, seed=0)
    assert _paths(again.val_samples) == _paths(dm.val_samples)  # input order does not matter
    assert _paths(again.train_samples) == _paths(dm.train_samples)
    other = AnomalyDataModule(samples, (32, 48), 1, val_fraction=0.2, seed=1)
    assert _paths(other.val_samples) != _paths(dm.val_samples)


@pytest.mark.parametrize("n_train, fraction, n_val", [(1, 0.1, 0), (2, 0.1, 1), (20, 0.01, 1), (20, 0.5, 10),
                                                      (3, 0.9, 2), (20, 0.0, 0)])
def test_val_slice_size(samples, n_train, fraction, n_val):
    dm = AnomalyDataModule(samples[:n_train], (8, 8), 1, val_fraction=fraction)
    assert (len(dm.train_samples), len(dm.val_samples)) == (n_train - n_val, n_val)


def test_batches_have_rectangular_shapes_and_seeded_order(samples):
    dm = AnomalyDataModule(samples, (32, 48), 3, batch_size=4, val_fraction=0.2)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 3, 32, 48) and batch["image"].dtype == torch.float32
    assert batch["mask"].shape == (4, 1, 32, 48) and batch["label"].tolist() == [0, 0, 0, 0]
    order = [b["index"].tolist() for b in dm.train_dataloader()]
    assert order == [b["index"].tolist() for b in dm.train_dataloader()]  # same seed, same order
    assert sorted(sum(order, [])) == list(range(16)) and sum(order, []) != list(range(16))
    val = [b["index"].tolist() for b in dm.val_dataloader()]
    assert val == [[0, 1, 2, 3]]  # not shuffled
    test = next(iter(dm.test_dataloader()))
    assert test["label"].tolist() == [0, 0, 1, 1]


def test_validation_batches_are_of_the_training_batch_size(samples):
    dm = AnomalyDataModule(samples, (8, 8), 1, batch_size=7, val_fraction=0.9)
    assert [b["index"].tolist() for b in dm.val_dataloader()] == [list(range(7)), list(range(7, 14)), [14, 15, 16, 17]]


def test_the_validation_fraction_has_no_default_of_its_own(samples):
    """TrainConfig.val_fraction is its one home."""
    with pytest.raises(TypeError, match="val_fraction"):
        AnomalyDataModule(samples, (8, 8), 1)


def test_sample_manifest_batch():
    dm = AnomalyDataModule(read_manifest(MANIFEST), (32, 48), 1, batch_size=16, val_fraction=0.1)
    batch = next(iter(dm.val_dataloader()))
    assert batch["image"].shape == (len(dm.val_samples), 1, 32, 48)
    assert 0.0 <= batch["image"].min() and batch["image"].max() <= 1.0


def test_no_training_normals(samples):
    with pytest.raises(ValueError, match="no training images"):
        AnomalyDataModule(samples[20:], (8, 8), 1, val_fraction=0.2)


def test_unreadable_file_raises_at_construction(samples):
    bad = samples[5].image
    bad.write_text("this is not a png")
    with pytest.raises(ImageDecodeError, match=rf"{bad.name}: not an image"):
        AnomalyDataModule(samples, (8, 8), 1, val_fraction=0.2)


class _Counting(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Conv2d(1, 1, 1)
        self.steps = 0
        self.train_started = False

    def on_train_start(self):
        self.train_started = True  # runs after setup, before the first batch is fetched

    def training_step(self, batch, batch_idx):
        self.steps += 1
        return (self.layer(batch["image"]) - batch["image"]).abs().mean()

    def validation_step(self, batch, batch_idx):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_truncated_file_raises_before_any_training_step(samples):
    bad = samples[7].image
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])  # header intact: construction passes, decoding fails
    dm = AnomalyDataModule(samples, (8, 8), 1, val_fraction=0.2)
    model = _Counting()
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    with pytest.raises(ImageDecodeError, match=rf"{bad.name}: truncated image"):
        trainer.fit(model, datamodule=dm)
    assert not model.train_started and model.steps == 0


def test_with_a_scale_batches_are_tiles_of_the_scaled_images(tmp_path):
    """Images of two sizes at scale 0.5: training tiles are crops of the scaled image (found in it by brute
    force), validation tiles are the same every epoch, test images come whole at their scaled sizes."""
    rng = np.random.default_rng(0)
    samples = []
    for i, size in enumerate([(60, 100), (90, 40)] * 3):  # (H, W)
        path = tmp_path / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, size, dtype=np.uint8)).save(path)
        samples.append(Sample(path, None, 0, "good", "train" if i < 5 else "test"))
    dm = AnomalyDataModule(samples, (16, 16), 1, batch_size=2, val_fraction=0.4, scale=0.5)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (2, 1, 16, 16) and batch["mask"].shape == (2, 1, 16, 16)
    for tile, index in zip(batch["image"], batch["index"]):
        whole = dm.train_dataset._decode(dm.train_dataset.samples[int(index)])[0].half().float()
        assert tuple(whole.shape[-2:]) == scaled_shape(Image.open(dm.train_samples[int(index)].image).size[::-1], 0.5)
        windows = whole.unfold(1, 16, 1).unfold(2, 16, 1)  # (1, h - 15, w - 15, 16, 16)
        assert (windows == tile[:, None, None]).flatten(3).all(-1).any()  # the tile is one of its crops
    val = [b["image"] for b in dm.val_dataloader()]
    assert all(torch.equal(a, b) for a, b in zip(val, [b["image"] for b in dm.val_dataloader()]))
    [test] = list(dm.test_dataloader())
    assert test["image"].shape == (1, 1, 45, 20)  # 90x40 at 0.5, not resized to the tile


def test_scaled_images_cost_their_own_pixels_in_the_cache(tmp_path):
    """float16 at the scaled size: 1,000 grey 512x512 images at scale 1 would hold 1000 * 512 * 512 * 2 bytes
    = 500 MiB (RGB 1.5 GiB), within CACHE_BYTES (4 GiB)."""
    from anomaly.data.datasets import CACHE_BYTES, ImageDataset

    paths = []
    for i in range(3):
        paths.append(tmp_path / f"{i}.png")
        Image.new("L", (512, 512), 40 * i).save(paths[-1])
    dataset = ImageDataset([Sample(p, None, 0, "good", "train") for p in paths], (64, 64), 1, scale=1.0)
    for i in range(3):
        dataset[i]
    assert dataset.cache_bytes == 3 * 512 * 512 * 2
    assert 1000 * dataset.cache_bytes / 3 <= CACHE_BYTES / 8


def test_a_bad_scale_or_tile_read_is_named(samples):
    from anomaly.data.datasets import ImageDataset

    with pytest.raises(ValueError, match="scale must be a positive number"):
        ImageDataset(samples, (16, 16), 1, scale=0)
    with pytest.raises(ValueError, match="tiles must be one of random, fixed, none"):
        ImageDataset(samples, (16, 16), 1, scale=1.0, tiles="centre")
