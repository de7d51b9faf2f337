"""A tiny model trained at scale 1 (native resolution, 64x64 tiles) on a synthetic texture, for the tests of
large and non-square images (tests/tiling, tests/service, tests/audit, tests/export)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from anomaly.config import TrainConfig
from anomaly.training import TrainResult, train

TILE = (64, 64)


def texture(shape: tuple[int, int], seed: int) -> np.ndarray:
    """(H, W) float32 in [0, 1]: a 16-px checker of sines at a random phase plus pixel noise (sigma 0.03)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:shape[0], :shape[1]]
    phase = rng.uniform(0, 2 * np.pi, 2)
    base = 0.5 + 0.15 * np.sin(2 * np.pi * x / 16 + phase[0]) * np.sin(2 * np.pi * y / 16 + phase[1])
    return np.clip(base + rng.normal(0, 0.03, shape), 0, 1).astype(np.float32)


def save_png(image: np.ndarray, path: Path) -> Path:
    Image.fromarray(np.round(image * 255).astype(np.uint8)).save(path)
    return path


def train_scaled(folder: Path, n: int = 6, shape: tuple[int, int] = (256, 256)) -> TrainResult:
    """An `ae` (width 8, latent 32) trained 20 epochs at scale 1 on random 64x64 tiles of `n` textures of
    `shape` written to `folder`/normals: a few seconds on 2 cores."""
    normals = folder / "normals"
    normals.mkdir(parents=True)
    for i in range(n):
        save_png(texture(shape, i), normals / f"normal_{i}.png")
    return train(TrainConfig(model="ae", data=str(normals), out=str(folder / "bundle"), image_size=TILE, scale=1.0,
                             epochs=20, width=8, latent_dim=32, batch_size=8, seed=0, accelerator="cpu",
                             tracking=False, val_fraction=0.34), progress=False)
