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


def test_each_region_is_boxed_with_a_thin_outline_and_its_peak_labelled():
    from anomaly.detector import Region

    image = np.full((1, 120, 160), 0.2, np.float32)
    heat = np.zeros((120, 160), np.float32)
    plain = overlay(image, heat)
    region = Region(bbox=(40, 50, 90, 80), area=1500, peak=0.87)  # x0, y0, x1, y1, end exclusive
    boxed = overlay(image, heat, regions=[region])
    changed = np.any(boxed != plain, axis=2)
    white = np.all(boxed == 255, axis=2)
    # the outline: every pixel of the box's four sides, one pixel wide at this size
    assert white[50, 40:90].all() and white[79, 40:90].all() and white[50:80, 40].all() and white[50:80, 89].all()
    assert not changed[51:79, 41:89].any()  # the inside stays as it was: the heatmap shows through
    label = changed[:50, :]  # the peak's label sits just above the box
    assert label[:, 40:90].sum() > 20 and not changed[:30].any()
    assert not changed[81:].any() and not changed[:, :40].any() and not changed[:, 120:].any()


def test_boxes_scale_with_a_thumbnail_and_a_box_at_the_top_edge_keeps_its_label_inside_the_image():
    from anomaly.detector import Region

    image = np.zeros((1, 60, 80), np.float32)
    region = Region(bbox=(0, 0, 40, 20), area=800, peak=3.14159)
    heat = np.zeros((60, 80), np.float32)
    boxed = overlay(image, heat, regions=[region], scale=0.5)
    white = np.all(boxed == 255, axis=2)
    assert white[0, 0:20].all() and white[9, 0:20].all() and white[0:10, 19].all()  # bbox halved
    changed = np.any(boxed != overlay(image, heat), axis=2)
    assert changed[11:30, :20].sum() > 20  # the label below the box, not cut off above the image
    assert not changed[:, 25:].any()
