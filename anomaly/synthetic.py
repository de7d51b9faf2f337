"""Synthetic defects from normal images alone, for self-supervised training (DRAEM-style).

Masks are thresholded Perlin noise at random scales (Zavrtanik et al. 2021, DRAEM,
doi:10.1109/ICCV48922.2021.00822): blobs, or thin crack-like curves around its zero level. No texture dataset ships with the product, so the defect
content is either another normal image of the batch (flipped, rotated, brightness-shifted; as
NSA, Schlüter et al. 2022, arXiv:2109.15222, does without Poisson blending) or procedural Perlin
texture. Everything is batched torch on the input's device, driven by an explicit generator.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


SOURCES = ("images", "texture", "both")


def _uniform(n: int, low: float, high: float, generator: torch.Generator, device: torch.device) -> Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, device=device)


def perlin_noise(shape: tuple[int, int], cells: tuple[int, int], *, generator: torch.Generator,
                 device: torch.device | str = "cpu", n: int | None = None) -> Tensor:
    """2-D Perlin gradient noise (Perlin 2002, doi:10.1145/566654.566636), (H, W) float32 in about [-1, 1],
    or (n, H, W) independent fields when `n` is given.

    `cells` = (rows, cols) of the gradient lattice; larger = finer blobs. Any `shape` works.
    """
    (h, w), (ry, rx) = shape, cells
    angles = 2 * math.pi * torch.rand(n or 1, ry + 1, rx + 1, generator=generator, device=device)
    gradients = torch.stack([torch.cos(angles), torch.sin(angles)], dim=-1)  # (n, ry+1, rx+1, 2)
    y = torch.linspace(0, ry, h + 1, device=device)[:-1]
    x = torch.linspace(0, rx, w + 1, device=device)[:-1]
    yy, xx = torch.meshgrid(y, x, indexing="ij")
    y0, x0 = yy.floor().long(), xx.floor().long()
    fy, fx = yy - y0, xx - x0  # position inside the cell, (H, W) in [0, 1)

    def corner(dy: int, dx: int) -> Tensor:
        g = gradients[:, y0 + dy, x0 + dx]  # (n, H, W, 2)
        return g[..., 0] * (fy - dy) + g[..., 1] * (fx - dx)

    fade = lambda t: t * t * t * (t * (t * 6 - 15) + 10)  # noqa: E731  (Perlin's quintic)
    uy, ux = fade(fy), fade(fx)
    top = torch.lerp(corner(0, 0), corner(0, 1), ux)
    bottom = torch.lerp(corner(1, 0), corner(1, 1), ux)
    noise = math.sqrt(2) * torch.lerp(top, bottom, uy)  # (n, H, W)
    return noise if n else noise[0]


def perlin_mask(shape: tuple[int, int], *, generator: torch.Generator, device: torch.device | str = "cpu",
                min_scale: int = 0, max_scale: int = 5, threshold: float = 0.5, line: bool = False) -> Tensor:
    """One non-empty mask (H, W) float32 in {0, 1} from Perlin noise at 2**a x 2**b cells: blobs where
    the noise exceeds `threshold`, or (`line=True`) thin crack-like curves where |noise| is near 0."""
    for _ in range(20):
        a, b = torch.randint(min_scale, max_scale + 1, (2,), generator=generator, device=device).tolist()
        if line:  # a stretch of the zero level set of isotropic noise: curves ~2-4 px wide
            a = b = min(max(a, 1), 3)
        noise = perlin_noise(shape, (2**a, 2**b), generator=generator, device=device)
        if line:
            band = noise.abs() < 0.01 * 2**a * 128 / max(shape)
            mask = (band & (perlin_noise(shape, (2, 2), generator=generator, device=device) > 0.2)).float()
        else:
            mask = (noise > threshold).float()
        if mask.any():
            return mask
    return mask


def synthesize(images: Tensor, *, generator: torch.Generator, p_defect: float = 0.5, p_line: float = 0.0,
               p_shade: float = 0.0, opacity: tuple[float, float] = (0.3, 1.0),
               sources: str = "both") -> tuple[Tensor, Tensor]:
    """Paint synthetic defects into a batch of normal images.

    images: (B, C, H, W) float32 in [0, 1]. Returns (defective images (B, C, H, W) in [0, 1],
    masks (B, 1, H, W) in {0, 1}); an image left clean (probability 1 - p_defect) has an empty mask.
    A mask is a thin curve (crack-like) with probability `p_line`, else a blob. Inside a mask, the
    image is blended with a defect source at a random opacity; outside, pixels are untouched.
    `sources`: "images" (another normal image), "texture" (procedural) or "both" (half each).
    With probability `p_shade` a defect is instead a shading change: a coarse blob where the image
    itself is darkened or brightened (gain 0.5-0.8 or 1.25-2), its texture kept (as MTD's "uneven").
    """
    if sources not in SOURCES:
        raise ValueError(f"sources must be one of {SOURCES}, got {sources!r}")
    b, c, h, w = images.shape
    device = images.device
    has_defect = torch.rand(b, generator=generator, device=device) < p_defect
    masks = torch.zeros(b, 1, h, w, device=device)
    shade = torch.zeros(b, dtype=torch.bool, device=device)
    for i in torch.nonzero(has_defect).flatten().tolist():
        kind = torch.rand(1, generator=generator, device=device).item()
        line, shade[i] = kind < p_line, p_line <= kind < p_line + p_shade
        masks[i, 0] = perlin_mask((h, w), generator=generator, device=device, line=line,
                                  max_scale=2 if shade[i] else 5)
    # source A: another image of the batch, randomly flipped/rotated and brightness-shifted
    other = images.roll(1, dims=0)
    if h == w:
        other = torch.rot90(other, int(torch.randint(4, (1,), generator=generator, device=device)), dims=(2, 3))
    if torch.rand(1, generator=generator, device=device).item() < 0.5:
        other = other.flip(3)
    other = other + _uniform(b, -0.3, 0.3, generator, device).view(b, 1, 1, 1)
    # source B: procedural texture around a random grey level
    texture = perlin_noise((h, w), (8, 8), generator=generator, device=device, n=b)  # (B, H, W)
    texture = _uniform(b, 0.0, 1.0, generator, device).view(b, 1, 1) + 0.3 * texture
    p_texture = {"images": 0.0, "texture": 1.0, "both": 0.5}[sources]
    use_texture = (torch.rand(b, generator=generator, device=device) < p_texture).view(b, 1, 1, 1)
    source = torch.where(use_texture, texture[:, None].expand(b, c, h, w), other)
    if shade.any():  # drawn only then, so that p_shade=0 leaves the random stream as it was
        gain = _uniform(b, 0.5, 0.8, generator, device)
        gain = torch.where(torch.rand(b, generator=generator, device=device) < 0.5, gain, 1 / gain)
        source = torch.where(shade.view(b, 1, 1, 1), images * gain.view(b, 1, 1, 1), source)
    source = source.clamp(0, 1)
    alpha = _uniform(b, *opacity, generator, device).view(b, 1, 1, 1) * masks
    return images * (1 - alpha) + source * alpha, masks
