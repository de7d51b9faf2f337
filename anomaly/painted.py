"""Drawn defects painted into held-out normal images: how well a trained model finds defects it never trained on.

Independent of training's synthesis (anomaly/synthetic.py): anti-aliased strokes drawn with PIL, blurred by
0.7 px and added to the image as a brightness shift. Two recipes, each giving half the images one defect:
  drawn  a scratch (a polyline 2-4 px wide), a stain (an ellipse) or holes (small dark discs), equally likely
  thin   a hairline crack: a polyline 1-2 px wide, brighter or darker by 0.1-0.3 grey levels
Every model is validated on the same defects, painted at VALIDATION_SIZE into the held-out normals of its
training seed (their scores resized to the model's input size, its maps back); a model with a scale
(anomaly.tiling) has them painted at its scaled images' own sizes and scores them tile by tile, as it predicts.
On MTD, `drawn` ranks trained models like the test split's pixel AUROC does and `thin` follows its cracks
(experiments/RESULTS.md, "Which validation tracks the test split"); the benchmarks choose settings on them, and
training logs them. Beside them, `reconstruction_spread` checks on the same normals that the model's output depends
on its input at all.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import islice

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter
from torch.utils.data import DataLoader

from anomaly.data import AnomalyDataModule, ImageDataset, Sample, resize
from anomaly.detector import Detector, to_model_scale
from anomaly.metrics import image_auroc, pixel_auroc
from anomaly.scoring import resize_map
VALIDATION_SEED = 20211011  # draw k of a recipe is seeded VALIDATION_SEED + k
VALIDATION_BATCH = 16  # images painted per batch, whatever the training batch size
VALIDATION_SIZE = (256, 256)  # defects are painted at this size whatever a model's input size
DRAWS = 5  # of each recipe, averaged
MAX_IMAGES = 512  # of the held-out normals, the first (the pixels of all are ranked together: ~160 MB at 512)
MAX_PIXELS = MAX_IMAGES * VALIDATION_SIZE[0] * VALIDATION_SIZE[1]  # at a scale: the first images up to as many pixels
DRAWN_KINDS = ("scratch", "stain", "hole")
WEAK_AUROC = 0.65  # drawn image AUROC under this: the model barely tells painted defects from normal images
SPREAD_IMAGES = 64  # held-out normals whose reconstructions reconstruction_spread compares, the first
COLLAPSED_SPREAD = 0.05  # spread under this: one output whatever the input (collapsed models measured <= 0.02,
# working ones >= 0.27: experiments/RESULTS.md, "The dense bottleneck's collapse")

Mark = Callable[[tuple[int, int], np.random.Generator, tuple[float, float]], tuple[np.ndarray, np.ndarray]]
Recipe = Callable[[torch.Tensor, torch.Generator, np.random.Generator], tuple[torch.Tensor, torch.Tensor]]


def wander(rng: np.random.Generator, start: tuple[float, float],
           segments: tuple[int, int]) -> list[tuple[float, float]]:
    """The points of a polyline from `start` (x, y), turning gently: segments 10-35 px long, as many as
    `rng.integers(*segments)`."""
    points, heading = [start], rng.uniform(0, 2 * np.pi)
    for _ in range(int(rng.integers(*segments))):
        heading += rng.uniform(-0.5, 0.5)
        step = rng.uniform(10, 35)
        points.append((points[-1][0] + step * np.cos(heading), points[-1][1] + step * np.sin(heading)))
    return points


def mark(shape: tuple[int, int], rng: np.random.Generator, kind: str,
         centre: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """A `scratch`, `stain`, `hole` or `hairline` around `centre` (x, y) in an image of `shape` (H, W): the
    brightness shift to add (H, W) float64 and the defect mask (H, W) bool, where the blurred stroke is at least
    half strength (a quarter for a hairline, which stays under half where a 1 px line steps diagonally)."""
    mask_img = Image.new("L", shape[::-1], 0)
    draw = ImageDraw.Draw(mask_img)
    cx, cy = centre
    if kind == "scratch":
        draw.line(wander(rng, centre, (2, 5)), fill=255, width=int(rng.integers(2, 5)))
        shift = rng.choice([-1, 1]) * rng.uniform(0.2, 0.35)
    elif kind == "stain":
        a, b = rng.uniform(8, 30, 2)
        draw.ellipse([cx - a, cy - b, cx + a, cy + b], fill=255)
        shift = rng.choice([-1, 1]) * rng.uniform(0.08, 0.18)
    elif kind == "hole":
        for _ in range(int(rng.integers(1, 4))):
            r = rng.uniform(2, 6)
            x0, y0 = cx + rng.uniform(-20, 20), cy + rng.uniform(-20, 20)
            draw.ellipse([x0 - r, y0 - r, x0 + r, y0 + r], fill=255)
        shift = -rng.uniform(0.3, 0.45)
    elif kind == "hairline":  # a crack: longer, thinner and fainter than a scratch
        draw.line(wander(rng, centre, (3, 7)), fill=255, width=int(rng.integers(1, 3)))
        shift = rng.choice([-1, 1]) * rng.uniform(0.1, 0.3)
    else:
        raise ValueError(f"cannot paint a {kind!r}: one of scratch, stain, hole, hairline")
    soft = np.asarray(mask_img.filter(ImageFilter.GaussianBlur(0.7)), dtype=np.float64) / 255
    return shift * soft, soft >= (0.25 if kind == "hairline" else 0.5)


def paint(image: np.ndarray, rng: np.random.Generator, kind: str,
          centre: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """`image` (H, W) in [0, 1] with a `mark` of `kind` added (clipped to [0, 1]), and its mask (H, W) bool."""
    shift, mask = mark(image.shape, rng, kind, centre)
    return np.clip(image + shift, 0, 1), mask


def painted(marker: Mark) -> Recipe:
    """A recipe that gives half the images of a (B, C, H, W) batch in [0, 1] one `marker(shape, rng, centre)`,
    the same shift in every channel, `centre` (x, y) drawn away from the edges. Returns (damaged, masks
    (B, 1, H, W) float)."""
    def recipe(clean: torch.Tensor, generator: torch.Generator, rng: np.random.Generator
               ) -> tuple[torch.Tensor, torch.Tensor]:
        damaged, masks = clean.clone(), torch.zeros_like(clean[:, :1])
        h, w = clean.shape[-2:]
        for i in np.flatnonzero(rng.random(len(clean)) < 0.5):
            centre = (rng.uniform(0.15 * w, 0.85 * w), rng.uniform(0.15 * h, 0.85 * h))
            shift, mask = marker((h, w), rng, centre)
            damaged[i] = torch.from_numpy(np.clip(clean[i].double().numpy() + shift, 0, 1))
            masks[i, 0] = torch.from_numpy(mask)
        return damaged, masks
    return recipe


RECIPES: dict[str, Recipe] = {
    "drawn": painted(lambda shape, rng, centre: mark(shape, rng, str(rng.choice(DRAWN_KINDS)), centre)),
    "thin": painted(lambda shape, rng, centre: mark(shape, rng, "hairline", centre)),
}


def normal_batches(samples: Sequence[Sample], channels: int, scale: float | None = None) -> DataLoader:
    """Normal `samples` at VALIDATION_SIZE in batches of VALIDATION_BATCH, in order: what the recipes paint into;
    with a `scale` (a model's), each at its scaled size, one per batch."""
    if scale is None:
        return DataLoader(ImageDataset(samples, VALIDATION_SIZE, channels), batch_size=VALIDATION_BATCH)
    return DataLoader(ImageDataset(samples, VALIDATION_SIZE, channels, scale=scale, tiles="none"), batch_size=1)


@torch.no_grad()
def recipe_aurocs(detector: Detector, normals: DataLoader, recipe: Recipe, draw: int) -> tuple[float, float]:
    """(image AUROC, pixel AUROC) of the detector's scores and maps on draw `draw` of `recipe` over the batches
    of `normals` (the first MAX_IMAGES; at a scale, the first up to MAX_PIXELS painted pixels), resized to its
    input size and its maps back; NaN for a draw without both a clean and a damaged image."""
    generator = torch.Generator().manual_seed(VALIDATION_SEED + draw)
    rng = np.random.default_rng(VALIDATION_SEED + draw)
    scores, maps, masks = [], [], []
    config, pixels = detector.config, 0
    for batch in islice(normals, math.ceil(MAX_IMAGES / normals.batch_size)):
        if pixels >= MAX_PIXELS:
            break
        pixels += batch["image"][:, 0].numel()
        damaged, mask = recipe(batch["image"], generator, rng)
        if config.scale is None:
            batch_scores, batch_maps = detector.score_batch(resize(damaged, config.image_size))
            scores.append(batch_scores.float().cpu().numpy())
            maps += list(resize_map(batch_maps.float().cpu(), tuple(damaged.shape[-2:]))[:, 0].numpy())
        else:  # already at model scale
            batch_scores, batch_maps = detector.score_at_scale(list(damaged))
            scores.append(batch_scores)
            maps += [m.numpy() for m in batch_maps]
        masks += list(mask[:, 0].numpy() > 0)
    has_defect = np.array([m.any() for m in masks])
    if has_defect.all() or not has_defect.any():
        return math.nan, math.nan
    return image_auroc(has_defect, np.concatenate(scores)), pixel_auroc(masks, maps)


def mean_aurocs(detector: Detector, normals: DataLoader, recipe: Recipe, draws: int = DRAWS,
                on_draw: Callable[[], None] = lambda: None) -> np.ndarray:
    """(image AUROC, pixel AUROC) of `recipe_aurocs`, averaged over draws 0 .. draws - 1 (those with both
    classes; NaN when none has). `on_draw()` is called after each draw (progress bars)."""
    values = []
    for draw in range(draws):
        values.append(recipe_aurocs(detector, normals, recipe, draw))
        on_draw()
    values = np.array(values)
    valid = ~np.isnan(values[:, 0])
    return values[valid].mean(axis=0) if valid.any() else np.array([math.nan, math.nan])


def painted_aurocs(detector: Detector, normals: DataLoader, draws: int = DRAWS,
                   on_draw: Callable[[], None] = lambda: None) -> dict[str, float]:
    """{"drawn_image_auroc", "drawn_pixel_auroc", "thin_image_auroc", "thin_pixel_auroc"}: each recipe's mean
    over `draws` on the batches of `normals`. Empty for fewer than two images; a recipe none of whose draws
    gave both a clean and a damaged image is left out. `on_draw()` is called after each of the
    len(RECIPES) * draws draws."""
    if len(normals.dataset) < 2:
        return {}
    values = {}
    for name, recipe in RECIPES.items():
        image, pixel = mean_aurocs(detector, normals, recipe, draws, on_draw)
        values.update({f"{name}_image_auroc": float(image), f"{name}_pixel_auroc": float(pixel)})
    return {k: v for k, v in values.items() if not math.isnan(v)}


def reconstruction_spread(detector: Detector, normals: Sequence[Sample]) -> float:
    """How much the model's reconstructions of `normals` (the first SPREAD_IMAGES) differ from image to image,
    against how much the images it was given do: the per-pixel standard deviation across the images, averaged
    over the pixels, of its reconstructions over that of its inputs (at model scale, resized to VALIDATION_SIZE).
    Near 0 the model outputs one image whatever its input, and its map is the distance to that image. NaN for
    an export without weights, fewer than two images or identical ones."""
    if not detector.has_weights or len(normals) < 2:
        return math.nan
    inputs, outputs = [], []
    for sample in normals[:SPREAD_IMAGES]:  # one at a time: a large image is held only while it is reconstructed
        array = detector.decode(sample.image)
        inputs.append(resize(to_model_scale(array, detector.config)[None], VALIDATION_SIZE)[0])
        outputs.append(resize(torch.from_numpy(detector.reconstruct([array])[0])[None], VALIDATION_SIZE)[0])
    given = torch.stack(inputs).std(0).mean()
    return float(torch.stack(outputs).std(0).mean() / given) if given > 0 else math.nan


def held_out_checks(detector: Detector, normals: Sequence[Sample], draws: int = DRAWS,
                    on_draw: Callable[[], None] = lambda: None) -> dict[str, float]:
    """`painted_aurocs` on `normals` and their "reconstruction_spread" (left out where NaN): what training
    validates a model on and `anomaly evaluate --painted` reports."""
    config = detector.config
    checks = painted_aurocs(detector, normal_batches(normals, config.channels, config.scale), draws, on_draw)
    spread = reconstruction_spread(detector, normals)
    return checks if math.isnan(spread) else {**checks, "reconstruction_spread": spread}


def painted_validation(detector: Detector, samples: Sequence[Sample], *, seed: int, val_fraction: float,
                       draws: int = DRAWS) -> dict[str, float]:
    """`held_out_checks` on the held-out normals of a run trained on `samples` with `seed` and `val_fraction`
    (the same images as its datamodule's validation whatever the training batch size)."""
    held_out = AnomalyDataModule(list(samples), VALIDATION_SIZE, detector.config.channels,
                                 val_fraction=val_fraction, seed=seed).val_samples
    return held_out_checks(detector, held_out, draws)


def summary(aurocs: dict[str, float], where: str = "the held-out normals") -> str:
    """`held_out_checks` in one line ("" without painted AUROCs), painted into `where`; with a warning when the
    drawn defects' image AUROC is under WEAK_AUROC, another when the reconstruction spread is under
    COLLAPSED_SPREAD."""
    cells = [f"{name} {aurocs[f'{name}_image_auroc']:.3f} / {aurocs[f'{name}_pixel_auroc']:.3f}"
             for name in RECIPES if f"{name}_image_auroc" in aurocs]
    if not cells:
        return ""
    line = f"Painted defects in {where}, image / pixel AUROC: {', '.join(cells)}."
    if "reconstruction_spread" in aurocs:
        line += f" Reconstruction spread {aurocs['reconstruction_spread']:.3f}."
    if aurocs.get("drawn_image_auroc", 1.0) < WEAK_AUROC:
        line += (f" Warning: drawn image AUROC under {WEAK_AUROC} (0.5 is chance): this model barely tells painted "
                 "defects from normal images and is unlikely to find real ones; the default model (draem) or more "
                 "epochs may.")
    if aurocs.get("reconstruction_spread", 1.0) < COLLAPSED_SPREAD:
        line += (f" Warning: its reconstructions hardly differ from image to image (spread "
                 f"{aurocs['reconstruction_spread']:.3f} of the images' own, under {COLLAPSED_SPREAD}): it outputs "
                 "about one image whatever its input, so its maps measure the distance to that image (brightness, "
                 "where the part is), not defects; the default model (draem) does not collapse so.")
    return line
