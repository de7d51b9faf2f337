"""anomaly.tiling against brute force: every pixel covered, stitching as a per-pixel weighted average, padding
as numpy's reflection, and tiled scoring equal to a whole-image pass away from the tiles' edges."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from anomaly.scoring import image_scores
from anomaly.tiling import (OVERLAP, pad_to_tile, random_tile, scaled_shape, score_tiled, stitch, tile_plan,
                            tile_starts, window)

SHAPES = [(64, 64), (65, 64), (64, 200), (300, 500), (500, 1250), (127, 1000)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("tile", [(64, 64), (32, 48)])
def test_the_plan_covers_every_pixel_with_tiles_inside_the_image_overlapping_as_asked(shape, tile):
    plan = tile_plan(shape, tile)
    coverage = np.zeros(shape, int)
    for y, x in plan:
        assert 0 <= y <= shape[0] - tile[0] and 0 <= x <= shape[1] - tile[1]
        coverage[y:y + tile[0], x:x + tile[1]] += 1
    assert coverage.min() >= 1
    for length, side in zip(shape, tile):
        starts = tile_starts(length, side, int(OVERLAP * side))
        assert starts[0] == 0 and starts[-1] == length - side
        assert all(side - (b - a) >= int(OVERLAP * side) for a, b in zip(starts, starts[1:]))
        assert len(starts) == 1 + int(np.ceil((length - side) / (side - int(OVERLAP * side))))  # no spare tile


def test_plan_errors_name_the_problem():
    with pytest.raises(ValueError, match="shorter than the tile"):
        tile_starts(10, 64, 16)
    with pytest.raises(ValueError, match="overlap must be in"):
        tile_starts(100, 64, 64)
    with pytest.raises(ValueError, match="positive number"):
        scaled_shape((10, 10), 0)


def test_scaled_shape_keeps_the_aspect():
    assert scaled_shape((500, 1250), 1.0) == (500, 1250)
    assert scaled_shape((500, 1250), 0.5) == (250, 625)
    assert scaled_shape((3, 5), 0.1) == (1, 1)  # never empty


def brute_force_stitch(tiles: np.ndarray, plan, shape, weights: np.ndarray) -> np.ndarray:
    out = np.zeros((tiles.shape[1], *shape))
    h, w = tiles.shape[-2:]
    for i in range(shape[0]):
        for j in range(shape[1]):
            num, den = 0.0, 0.0
            for tile, (y, x) in zip(tiles, plan):
                if y <= i < y + h and x <= j < x + w:
                    num = num + tile[:, i - y, j - x] * weights[i - y, j - x]
                    den += weights[i - y, j - x]
            out[:, i, j] = num / den
    return out


def test_stitch_is_the_per_pixel_weighted_average_of_the_tiles_covering_it():
    shape, tile = (70, 90), (32, 32)
    plan = tile_plan(shape, tile)
    tiles = torch.rand(len(plan), 2, *tile, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    weights = window(tile)
    expected = brute_force_stitch(tiles.numpy(), plan, shape, weights.double().numpy())
    np.testing.assert_allclose(stitch(tiles, plan, shape).numpy(), expected, rtol=1e-12, atol=1e-12)


def test_stitching_constants_gives_the_constant_and_tiles_of_one_image_give_it_back():
    shape, tile = (300, 500), (64, 64)
    plan = tile_plan(shape, tile)
    assert torch.allclose(stitch(torch.full((len(plan), 1, *tile), 0.37), plan, shape), torch.tensor(0.37))
    image = torch.rand(3, *shape)
    tiles = torch.stack([image[:, y:y + 64, x:x + 64] for y, x in plan])
    torch.testing.assert_close(stitch(tiles, plan, shape), image)


def test_window_is_one_inside_and_ramps_to_a_positive_edge():
    weights = window((32, 64))
    assert weights.min() > 0 and weights[8:-8, 16:-16].eq(1).all()
    assert weights[0, 32] == pytest.approx(1 / 8) and weights[32 // 2, 0] == pytest.approx(1 / 16)


def test_stitch_refuses_a_plan_that_leaves_pixels_uncovered():
    with pytest.raises(ValueError, match="without a tile"):
        stitch(torch.ones(1, 1, 8, 8), [(0, 0)], (8, 16))


@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (5, 1), (3, 40), (20, 31), (50, 10), (64, 64), (100, 70)])
def test_padding_reflects_like_numpy_and_keeps_the_image(shape):
    image = torch.rand(2, *shape)
    padded = pad_to_tile(image, (32, 32))
    assert tuple(padded.shape) == (2, max(shape[0], 32), max(shape[1], 32))
    assert torch.equal(padded[:, :shape[0], :shape[1]], image)
    pad = [(0, 0), (0, max(0, 32 - shape[0])), (0, max(0, 32 - shape[1]))]
    if all(p[1] < s for p, s in zip(pad[1:], shape)):  # one reflection suffices: numpy's symmetric-less reflect
        np.testing.assert_array_equal(padded.numpy(), np.pad(image.numpy(), pad, mode="reflect"))
    if shape[0] == 1:
        assert (padded == padded[:, :1]).all()  # a 1-pixel side is repeated


def test_random_tiles_lie_inside_and_follow_the_generator():
    image = torch.arange(50 * 70, dtype=torch.float32).reshape(1, 50, 70)
    crops = [random_tile(image, (16, 16), torch.Generator().manual_seed(3)) for _ in range(2)]
    assert torch.equal(crops[0], crops[1]) and crops[0].shape == (1, 16, 16)
    y, x = divmod(int(crops[0][0, 0, 0]), 70)
    assert torch.equal(crops[0], image[:, y:y + 16, x:x + 16])


def blur_scorer(radius: int, reduction: str = "max", topk: float = 0.01):
    """A local fully convolutional 'model': box blur of (2 radius + 1)^2 with zero padding, its score the map's
    `reduction` plus 0.25 (a per-tile term, as ganomaly adds)."""
    kernel = torch.full((1, 1, 2 * radius + 1, 2 * radius + 1), 1 / (2 * radius + 1) ** 2)

    def scorer(batch):
        maps = F.conv2d(batch[:, :1], kernel, padding=radius)
        return image_scores(maps, reduction, topk) + 0.25, maps
    return scorer


def test_tiled_scoring_equals_a_whole_image_pass_where_no_tile_edge_is_near():
    radius, tile, shape = 2, (32, 32), (100, 150)
    image = torch.rand(1, *shape, generator=torch.Generator().manual_seed(1))
    scorer = blur_scorer(radius)
    scores, [tiled] = score_tiled(scorer, [image], tile, reduction="max", topk=0.01)
    whole = scorer(image[None])[1][0, 0]
    # brute force: pixels at least `radius` from every edge of every tile that covers them (image edges are
    # edges of the whole image too, where both passes pad with zeros)
    plan, exact = tile_plan(shape, tile), np.ones(shape, bool)
    for y, x in plan:
        covered, keep = np.zeros(shape, bool), np.zeros(shape, bool)
        covered[y:y + 32, x:x + 32] = True
        y0, y1 = (y + radius if y > 0 else 0), (y + 32 - radius if y + 32 < shape[0] else shape[0])
        x0, x1 = (x + radius if x > 0 else 0), (x + 32 - radius if x + 32 < shape[1] else shape[1])
        keep[y0:y1, x0:x1] = True
        exact &= ~covered | keep
    assert exact.mean() > 0.5
    np.testing.assert_allclose(tiled.numpy()[exact], whole.numpy()[exact], atol=1e-6)
    assert float((tiled - whole).abs().mean()) < 0.01  # the seams: a blend of tiles, never far off
    assert scores[0] == pytest.approx(float(tiled.max()) + 0.25)


def test_tiled_scores_reduce_each_stitched_map_and_small_images_are_padded_not_stretched():
    scorer = blur_scorer(0, "topk", 0.1)  # the identity
    images = [torch.rand(1, 20, 45), torch.rand(1, 70, 33)]
    scores, maps = score_tiled(scorer, images, (32, 32), reduction="topk", topk=0.1, tile_batch=3)
    for image, amap, score in zip(images, maps, scores):
        torch.testing.assert_close(amap, image[0])
        k = max(1, round(0.1 * image.numel()))
        assert float(score) == pytest.approx(float(image.flatten().topk(k).values.mean()) + 0.25, abs=1e-6)
