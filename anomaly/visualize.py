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
    Returns (H, W, 3) uint8, computed in 8 bits by PIL (a palette lookup, `Image.blend`): within 1.5 grey
    levels of the float blend and a fraction of its cost (the audit renders one per image).
    """
    base = Image.fromarray(to_uint8(image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0))).convert("RGB")
    colours = Image.fromarray(np.clip(heat * 255, 0, 255).astype(np.uint8))  # "L": palette indices
    colours.putpalette(colour_table().tobytes())
    return np.asarray(Image.blend(base, colours.convert("RGB"), alpha))


def to_uint8(values: np.ndarray) -> np.ndarray:
    """Floats in [0, 1] (clipped) -> uint8 0-255, rounded."""
    return np.rint(np.clip(values * np.float32(255), 0, 255)).astype(np.uint8)


def encode_png(array: np.ndarray) -> bytes:
    """(H, W, 3) or (H, W) uint8 -> PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()
