"""A small time-conditioned U-Net that predicts the noise of a noised image (DDPM, Ho et al. 2020,
arXiv:2006.11239), its noise schedule, and the scoring path: noise an image part of the way, denoise it back
in a few deterministic DDIM steps (Song et al. 2021, arXiv:2010.02502).

Images enter in [0, 1] and are diffused in [-1, 1]. ResBlocks with GroupNorm and SiLU, the time embedding
added after the first convolution of each; no attention (CPU budget). Fully convolutional.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def linear_alpha_bars(timesteps: int) -> Tensor:
    """(T + 1,) float64: alpha_bar[t] = prod_{s <= t} (1 - beta_s), betas linear from 1e-4 to 0.02 (scaled by
    1000 / T, as improved DDPM does for other T); alpha_bar[0] = 1 (the clean image)."""
    scale = 1000 / timesteps
    betas = torch.linspace(scale * 1e-4, min(scale * 0.02, 0.999), timesteps, dtype=torch.float64)
    return torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - betas, dim=0)])


def pyramid_noise(shape: tuple[int, ...], generator: torch.Generator | None = None, *, device: torch.device | str = "cpu",
                  persistence: float = 0.8, octaves: int = 6) -> Tensor:
    """(B, C, H, W) noise of zero mean and unit variance per image: Gaussian noise drawn at H/2^k x W/2^k
    (k = 0 .. octaves - 1, while both sides stay >= 2), upsampled bilinearly and weighted persistence^k.
    Its low octaves play the part of AnoDDPM's simplex noise (large smooth structures get noised too)."""
    b, c, h, w = shape
    total = torch.zeros(shape, device=device)
    for k in range(octaves):
        size = (h >> k, w >> k)
        if min(size) < 2:
            break
        octave = torch.randn((b, c, *size), generator=generator, device=device)
        total = total + persistence**k * F.interpolate(octave, size=(h, w), mode="bilinear", align_corners=False)
    total = total - total.mean(dim=(1, 2, 3), keepdim=True)
    return total / total.std(dim=(1, 2, 3), keepdim=True)


def draw_noise(kind: str, shape: tuple[int, ...], generator: torch.Generator | None = None, *,
               device: torch.device | str = "cpu") -> Tensor:
    """`kind` "gaussian" (standard normal) or "pyramid" (`pyramid_noise`) of `shape`."""
    if kind == "gaussian":
        return torch.randn(shape, generator=generator, device=device)
    if kind == "pyramid":
        return pyramid_noise(shape, generator, device=device)
    raise ValueError(f"unknown noise {kind!r}; expected 'gaussian' or 'pyramid'")


def timestep_embedding(t: Tensor, dim: int) -> Tensor:
    """(B,) steps -> (B, dim) sinusoidal embedding (Vaswani et al. 2017), dim even."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * freqs[None]  # (B, half)
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(channels, 8), channels)


class ResBlock(nn.Module):
    """(B, cin, H, W), time embedding (B, E) -> (B, cout, H, W)."""

    def __init__(self, cin: int, cout: int, embed_dim: int):
        super().__init__()
        self.norm1, self.conv1 = norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.time = nn.Linear(embed_dim, cout)
        self.norm2, self.conv2 = norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: Tensor, embedding: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x))) + self.time(embedding)[:, :, None, None]
        return self.skip(x) + self.conv2(F.silu(self.norm2(h)))


class NoiseUNet(nn.Module):
    """U-Net eps_theta: noised images (B, C, H, W) in [-1, 1] and steps (B,) or (1,) -> predicted noise (B, C, H, W).

    `depth` stride-2 stages (H, W divisible by 2**depth): a 4x4 stride-2 stem to half resolution (3x3
    convolutions at full resolution would cost more than the rest of the network, as in anomaly.models.ae),
    then `depth - 1` ResBlock + stride-2 stages of widths width, 2 width, ... (capped at 8 width), mirrored
    with skip connections, and a 4x4 stride-2 transposed convolution back to full resolution."""

    def __init__(self, channels: int, width: int, depth: int):
        super().__init__()
        widths = [min(width * 2**i, width * 8) for i in range(depth)]
        self.width, embed_dim = width, 4 * width
        self.time_mlp = nn.Sequential(nn.Linear(width, embed_dim), nn.SiLU(), nn.Linear(embed_dim, embed_dim))
        self.stem = nn.Conv2d(channels, width, 4, stride=2, padding=1)
        self.down_blocks = nn.ModuleList(ResBlock(cin, cout, embed_dim) for cin, cout in zip(widths, widths[1:]))
        self.downsample = nn.ModuleList(nn.Conv2d(c, c, 3, stride=2, padding=1) for c in widths[1:])
        self.middle = ResBlock(widths[-1], widths[-1], embed_dim)
        self.upsample = nn.ModuleList(nn.ConvTranspose2d(c, c, 4, stride=2, padding=1) for c in widths[:0:-1])
        self.up_blocks = nn.ModuleList(ResBlock(2 * cin, cout, embed_dim)
                                       for cin, cout in zip(widths[:0:-1], widths[-2::-1]))
        self.head = nn.Sequential(norm(width), nn.SiLU(), nn.ConvTranspose2d(width, channels, 4, stride=2, padding=1))

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        embedding = self.time_mlp(timestep_embedding(t, self.width))  # (B or 1, E)
        h = self.stem(x)  # (B, w, H/2, W/2)
        skips = []
        for block, down in zip(self.down_blocks, self.downsample):
            h = block(h, embedding)
            skips.append(h)
            h = down(h)  # halves H, W
        h = self.middle(h, embedding)
        for up, block in zip(self.upsample, self.up_blocks):
            h = block(torch.cat([up(h), skips.pop()], dim=1), embedding)
        return self.head(h)  # (B, C, H, W)


class DiffusionDenoiser(nn.Module):
    """The noise-predicting U-Net with its schedule; forward(x) is the scoring reconstruction: x noised to
    step `noise_level` with the fixed `scoring_noise`, then denoised in `denoise_steps` DDIM steps (eta 0)."""

    def __init__(self, channels: int, image_size: tuple[int, int], width: int, depth: int, *, timesteps: int,
                 noise_level: int, denoise_steps: int, noise: str, noise_seed: int):
        super().__init__()
        self.unet = NoiseUNet(channels, width, depth)
        self.register_buffer("alpha_bars", linear_alpha_bars(timesteps).float(), persistent=False)
        generator = torch.Generator().manual_seed(noise_seed)
        self.register_buffer("scoring_noise", draw_noise(noise, (1, channels, *image_size), generator), persistent=False)
        # the steps visited, t0 > ... > 0, as Python ints: a trace unrolls the loop with them as constants
        self.schedule = [round(noise_level * (1 - i / denoise_steps)) for i in range(denoise_steps + 1)]

    def noised(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """q(x_t | x_0): x0 (B, C, H, W) in [-1, 1], steps t (B,), noise (B, C, H, W) -> x_t."""
        a = self.alpha_bars[t][:, None, None, None]
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) in [0, 1] -> the denoised reconstruction (B, C, H, W) in [0, 1]."""
        t0 = self.schedule[0]
        a = self.alpha_bars[t0]
        xt = a.sqrt() * (2 * x - 1) + (1 - a).sqrt() * self.scoring_noise  # (B, C, H, W)
        x0 = xt
        for t, t_next in zip(self.schedule, self.schedule[1:]):
            a, a_next = self.alpha_bars[t], self.alpha_bars[t_next]
            eps = self.unet(xt, torch.full((1,), t, device=x.device))
            x0 = ((xt - (1 - a).sqrt() * eps) / a.sqrt()).clamp(-1, 1)
            xt = a_next.sqrt() * x0 + (1 - a_next).sqrt() * eps
        return (x0 + 1) / 2
