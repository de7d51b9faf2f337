"""Lightning DataModule: normal training images, a seeded normal-only validation slice."""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from anomaly.data.datasets import ImageDataset, Sample, parse_image_size
from anomaly.data.decode import image_mode

def _by_path(samples: list[Sample]) -> list[Sample]:
    return sorted(samples, key=lambda s: str(s.image))


class AnomalyDataModule(L.LightningDataModule):
    """Train on the normal images of split ``train``; validate on a seeded slice of them.

    The validation slice holds ``round(val_fraction * n)`` of the ``n`` training normals, at
    least 1 when ``n >= 2`` and ``val_fraction > 0``, at most ``n - 1``. It depends only on
    ``seed`` and the set of image paths (samples are sorted by path first), never on the input
    order. With ``scale`` (anomaly.tiling) images are resized by that factor keeping their aspect and
    batches hold ``image_size`` tiles: random ones for training, fixed ones for validation.
    ``train_samples`` / ``val_samples`` / ``test_samples`` are ready after ``__init__``.

    Files are checked twice before training: ``__init__`` reads every train/val header
    (missing, not an image, too large), and ``setup`` decodes every train/val image once
    (truncated files), which also fills the datasets' caches; either raises
    ``ImageDecodeError`` naming the file. Batches are dicts, see :class:`ImageDataset`.
    """

    def __init__(
        self,
        samples: list[Sample],
        image_size: tuple[int, int],
        channels: int,
        *,
        val_fraction: float,
        batch_size: int = 16,
        seed: int = 0,
        num_workers: int = 0,
        scale: float | None = None,
    ):
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        if num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {num_workers}")
        self.image_size = parse_image_size(image_size)
        self.channels = channels
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.seed = seed
        self.num_workers = num_workers
        self.scale = scale
        self.samples = list(samples)

        normals = _by_path([s for s in self.samples if s.split == "train" and s.label == 0])
        if not normals:
            raise ValueError(
                f"no training images: none of the {len(self.samples)} samples is normal with "
                "split 'train'; point the data at a folder of normal images"
            )
        n = len(normals)
        n_val = 0 if n < 2 or val_fraction == 0 else min(n - 1, max(1, round(val_fraction * n)))
        chosen = set(np.random.default_rng(seed).permutation(n)[:n_val].tolist())
        self.train_samples = [s for i, s in enumerate(normals) if i not in chosen]
        self.val_samples = [s for i, s in enumerate(normals) if i in chosen]

        for sample in self.train_samples + self.val_samples:
            image_mode(sample.image)  # header check: raises ImageDecodeError naming the file
        self.train_dataset = ImageDataset(self.train_samples, self.image_size, channels, scale=scale, tiles="random")
        self.val_dataset = ImageDataset(self.val_samples, self.image_size, channels, scale=scale, tiles="fixed")
        self._verified = False

    @property
    def test_samples(self) -> list[Sample]:
        """Samples of split ``test`` (normal and anomalous), in input order."""
        return [s for s in self.samples if s.split == "test"]

    def setup(self, stage: str | None = None) -> None:
        """Decode every train/val image once (fills the caches); bad files raise here."""
        if self._verified or stage not in (None, "fit", "validate"):
            return
        for dataset in (self.train_dataset, self.val_dataset):
            for index in range(len(dataset)):
                dataset[index]
        self._verified = True

    def _loader(self, dataset: ImageDataset, shuffle: bool) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed) if shuffle else None
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            generator=generator,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled with a generator seeded by ``seed``: same order for the same seed."""
        return self._loader(self.train_dataset, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_dataset, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        """Test images in batches; with a scale, whole scaled images of their own sizes one at a time."""
        dataset = ImageDataset(self.test_samples, self.image_size, self.channels, scale=self.scale, tiles="none")
        if self.scale is None:
            return self._loader(dataset, shuffle=False)
        return DataLoader(dataset, batch_size=1, num_workers=self.num_workers)
