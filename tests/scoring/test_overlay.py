"""The heatmap overlay (anomaly.visualize.overlay) against its definition computed in floats."""

import numpy as np
import pytest

from anomaly.visualize import colour_table, overlay


@pytest.mark.parametrize("channels", [1, 3])
def test_overlay_is_the_alpha_blend_of_image_and_colour_mapped_heat(channels):
    rng = np.random.default_rng(channels)
    image = rng.random((channels, 37, 53), dtype=np.float32)
    heat = rng.uniform(-0.2, 1.2, (37, 53)).astype(np.float32)  # out of range: clipped to the table's ends
    alpha = 0.3
    colours = colour_table()[np.clip(heat * 255, 0, 255).astype(np.uint8)].astype(np.float64)
    expected = (1 - alpha) * np.broadcast_to(image.transpose(1, 2, 0), (37, 53, 3)) * 255 + alpha * colours
    got = overlay(image, heat, alpha)
    assert got.dtype == np.uint8 and got.shape == (37, 53, 3)
    assert np.abs(got - expected).max() <= 1.5  # the image is rounded to 8 bits before the blend, the blend after
