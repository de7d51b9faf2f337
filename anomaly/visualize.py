"""Heatmap overlays and PNG encoding, shared by the service, the audit and MLflow plots."""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
from PIL import Image


@lru_cache(maxsize=None)
def colour_table(name: str = "jet") -> np.ndarray:
    """(256, 3) uint8 lookup table of a matplotlib colormap."""
    from matplotlib import colormaps

    return (colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a heatmap over an image.

    image: (C, H, W) float32 in [0, 1], C in {1, 3}; heat: (H, W) float in [0, 1] on a fixed scale.
    Returns (H, W, 3) uint8.
    """
    rgb = np.repeat(image, 3, axis=0) if image.shape[0] == 1 else image
    colours = colour_table()[np.clip(heat * 255, 0, 255).astype(np.uint8)]
    blended = (1 - alpha) * rgb.transpose(1, 2, 0) * 255 + alpha * colours
    return np.clip(blended, 0, 255).round().astype(np.uint8)


def encode_png(array: np.ndarray) -> bytes:
    """(H, W, 3) or (H, W) uint8 -> PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()
