"""Resolution that follows the data: images scaled by one factor (aspect kept) and scored tile by tile.

With `ModelConfig.scale` set, an image of H x W pixels is resized to `scaled_shape((H, W), scale)` (1.0: its
own size), padded by reflection where it is smaller than a tile, cut into tiles of `ModelConfig.image_size`
that overlap by `OVERLAP` of a tile (`tile_plan`), and the tiles' maps are stitched back into one map of the
scaled image's size (`stitch`, a weighted average whose `window` fades towards a tile's edges, where a
network sees the least context). Every model scores exact tiles of the size it was trained on, so the same
fixed-size step runs in torch and in the ONNX graph (anomaly/backends.py). Training takes random tile crops
of the scaled images (anomaly/data/datasets.py).

    plan = tile_plan((300, 500), (128, 128))          # [(y, x), ...] covering every pixel
    full = stitch(tile_maps, plan, (300, 500))        # (T, C, 128, 128) -> (C, 300, 500)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from statistics import median_high

import torch
import torch.nn.functional as F
from torch import Tensor

from anomaly.config import MAX_SCALE
from anomaly.scoring import image_scores

OVERLAP = 0.25  # of a tile's side shared with the next tile
TILE_BATCH = 32  # tiles per call of the scoring step

Scorer = Callable[[Tensor], tuple[Tensor, Tensor]]  # (T, C, h, w) tiles -> scores (T,), maps (T, 1, h, w)


def scaled_shape(shape: tuple[int, int], scale: float) -> tuple[int, int]:
    """(H, W) resized by `scale`, aspect kept: (max(1, round(H * scale)), max(1, round(W * scale)))."""
    if not scale > 0:
        raise ValueError(f"scale must be a positive number (1.0: the images' own size), got {scale!r}")
    return max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale))


def scale_for(shapes: Sequence[tuple[int, int]], tile: tuple[int, int]) -> float:
    """The scale (`--scale auto`) that brings the median short side of images of `shapes` (H, W) to the tile's
    short side, aspect kept: 208x512 images and 128x128 tiles give 0.615 (128x315). The upper median; three
    significant digits; at most MAX_SCALE. ValueError when there are no shapes."""
    if not shapes:
        raise ValueError("no images to choose a scale from")
    return min(MAX_SCALE, float(f"{min(tile) / median_high(min(shape) for shape in shapes):.3g}"))


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Offsets of tiles of `tile` pixels covering [0, length) (length >= tile), consecutive tiles sharing at
    least `overlap` pixels, spread evenly, the first at 0 and the last at length - tile."""
    if length < tile:
        raise ValueError(f"a side of {length} px is shorter than the tile's {tile}: pad it first (pad_to_tile)")
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, {tile}) pixels, got {overlap}")
    count = 1 + math.ceil((length - tile) / (tile - overlap))
    if count == 1:
        return [0]
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def tile_plan(shape: tuple[int, int], tile: tuple[int, int], overlap: float = OVERLAP) -> list[tuple[int, int]]:
    """Top-left corners (y, x) of the tiles covering an image of `shape` (H, W) >= `tile` (h, w), row by row;
    tiles overlap by at least `overlap` of their side."""
    (height, width), (th, tw) = shape, tile
    return [(y, x) for y in tile_starts(height, th, int(overlap * th))
            for x in tile_starts(width, tw, int(overlap * tw))]


def window(tile: tuple[int, int], overlap: float = OVERLAP) -> Tensor:
    """(h, w) float32 stitching weights in (0, 1]: 1 inside, a linear ramp over the `overlap` band at each
    edge (1/ramp at the outermost pixel, never 0, so every pixel has weight)."""
    def ramp(n: int) -> Tensor:
        width = max(1, int(overlap * n))
        i = torch.arange(n, dtype=torch.float32)
        return torch.minimum(torch.minimum(i + 1, n - i), torch.tensor(float(width))) / width
    return ramp(tile[0])[:, None] * ramp(tile[1])[None, :]


def stitch(tiles: Tensor, plan: Sequence[tuple[int, int]], shape: tuple[int, int],
           weights: Tensor | None = None) -> Tensor:
    """(T, C, h, w) tiles at the corners `plan` -> (C, H, W) their weighted average (`weights` (h, w), default
    `window`), `shape` = (H, W). Every pixel must be covered by a tile (`tile_plan`)."""
    if tiles.ndim != 4 or len(tiles) != len(plan):
        raise ValueError(f"expected (T, C, h, w) tiles, one per corner of the plan ({len(plan)}), got "
                         f"{tuple(tiles.shape)}")
    h, w = tiles.shape[-2:]
    weights = window((h, w)) if weights is None else weights
    weights = weights.to(tiles.dtype).to(tiles.device)
    total = tiles.new_zeros((tiles.shape[1], *shape))
    norm = tiles.new_zeros(shape)
    for tile, (y, x) in zip(tiles, plan):
        total[:, y:y + h, x:x + w] += tile * weights
        norm[y:y + h, x:x + w] += weights
    if not bool((norm > 0).all()):
        raise ValueError(f"the plan leaves pixels of the {shape[0]}x{shape[1]} image without a tile")
    return total / norm


def pad_to_tile(image: Tensor, tile: tuple[int, int]) -> Tensor:
    """(C, H, W) -> (C, max(H, h), max(W, w)): a side shorter than the tile's is extended at its end by
    reflection (repeated where the image is less than half the tile; a 1-pixel side is repeated)."""
    while image.shape[-2] < tile[0] or image.shape[-1] < tile[1]:
        height, width = image.shape[-2:]
        pad_h, pad_w = min(max(0, tile[0] - height), height - 1), min(max(0, tile[1] - width), width - 1)
        if (pad_h, pad_w) == (0, 0):  # only 1-pixel sides left short
            pad_h, pad_w = max(0, tile[0] - height), max(0, tile[1] - width)
            return F.pad(image[None], (0, pad_w, 0, pad_h), mode="replicate")[0]
        image = F.pad(image[None], (0, pad_w, 0, pad_h), mode="reflect")[0]
    return image


def random_tile(image: Tensor, tile: tuple[int, int], generator: torch.Generator | None = None) -> Tensor:
    """A (C, h, w) crop of `image` (C, H, W) >= tile at a uniformly drawn position."""
    (height, width), (th, tw) = image.shape[-2:], tile
    y = int(torch.randint(height - th + 1, (1,), generator=generator))
    x = int(torch.randint(width - tw + 1, (1,), generator=generator))
    return image[:, y:y + th, x:x + tw]


def cut(image: Tensor, tile: tuple[int, int],
        overlap: float = OVERLAP) -> tuple[Tensor, list[tuple[int, int]], tuple[int, int]]:
    """(C, H, W) image -> its tiles (T, C, h, w) (`pad_to_tile`, then `tile_plan`), their corners and the padded
    (H', W') to `stitch` them back into (then cropped to (H, W))."""
    padded = pad_to_tile(image, tile)
    shape = tuple(padded.shape[-2:])
    plan = tile_plan(shape, tile, overlap)
    return torch.stack([padded[:, y:y + tile[0], x:x + tile[1]] for y, x in plan]), plan, shape


def map_tiled(fn: Callable[[Tensor], Tensor], image: Tensor, tile: tuple[int, int], *, overlap: float = OVERLAP,
              tile_batch: int = TILE_BATCH) -> Tensor:
    """(C, H, W) image -> fn's (T, K, h, w) output on its tiles stitched into (K, H, W) (e.g. a reconstruction)."""
    tiles, plan, shape = cut(image, tile, overlap)
    out = torch.cat([fn(tiles[i:i + tile_batch]).float().cpu() for i in range(0, len(tiles), tile_batch)])
    return stitch(out, plan, shape, window(tile, overlap))[:, :image.shape[-2], :image.shape[-1]]


def score_tiled(scorer: Scorer, images: Sequence[Tensor], tile: tuple[int, int], *, reduction: str, topk: float,
                overlap: float = OVERLAP, tile_batch: int = TILE_BATCH) -> tuple[Tensor, list[Tensor]]:
    """(C, H_i, W_i) images at model scale -> image scores (N,) and maps [(H_i, W_i)], each stitched from its
    tiles. An image's score is `reduction` of its whole map plus the largest per-tile term a model adds to its
    map's reduction (ganomaly's latent error; zero for the others). Tiles of all images run together in
    batches of `tile_batch`."""
    tiles, plans, shapes = zip(*(cut(image, tile, overlap) for image in images))
    crops = torch.cat(tiles)
    scores, maps = [], []
    for i in range(0, len(crops), tile_batch):
        batch_scores, batch_maps = scorer(crops[i:i + tile_batch])
        scores.append(batch_scores.float().cpu())
        maps.append(batch_maps.float().cpu())
    tile_scores, tile_maps = torch.cat(scores), torch.cat(maps)
    extra = tile_scores - image_scores(tile_maps, reduction, topk)
    out_scores, out_maps, start = [], [], 0
    weights = window(tile, overlap)
    for image, plan, shape in zip(images, plans, shapes):
        part = slice(start, start + len(plan))
        full = stitch(tile_maps[part], plan, shape, weights)[:, :image.shape[-2], :image.shape[-1]]
        out_scores.append(image_scores(full[None], reduction, topk)[0] + extra[part].max())
        out_maps.append(full[0])
        start += len(plan)
    return torch.stack(out_scores), out_maps
