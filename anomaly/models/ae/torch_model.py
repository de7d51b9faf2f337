"""Convolutional autoencoder with a dense bottleneck (Bergmann et al. 2019 style).

Each stage halves the resolution with a 4x4 stride-2 convolution and refines with a 3x3 one,
except at full resolution, where a 3x3 convolution would cost more than the rest of the network
(as in Bergmann et al.'s architecture); the decoder mirrors it with transposed convolutions.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def stage_widths(width: int, depth: int) -> list[int]:
    """Channels after each of `depth` stages: width, 2*width, ... capped at 8*width."""
    return [min(width * 2**i, width * 8) for i in range(depth)]


def bottleneck_shape(image_size: tuple[int, int], depth: int) -> tuple[int, int]:
    h, w = image_size
    factor = 2**depth
    if h % factor or w % factor:
        raise ValueError(
            f"image size {h}x{w} is not divisible by 2**depth = {factor}; "
            f"choose a size that is a multiple of {factor} (e.g. {h // factor * factor or factor}x"
            f"{w // factor * factor or factor}) or a smaller depth"
        )
    return h // factor, w // factor


def down(cin: int, cout: int, refine: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
    if refine:
        layers += [nn.Conv2d(cout, cout, 3, padding=1), nn.LeakyReLU(0.2, inplace=True)]
    return nn.Sequential(*layers)


def up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1), nn.LeakyReLU(0.2, inplace=True),
    )


class Encoder(nn.Module):
    """(B, C, H, W) -> (B, out_features) through `depth` stride-2 stages and a linear layer."""

    def __init__(self, channels: int, image_size: tuple[int, int], width: int, depth: int, out_features: int):
        super().__init__()
        widths = stage_widths(width, depth)
        self.stages = nn.Sequential(*[down(cin, cout, refine=i > 0)
                                      for i, (cin, cout) in enumerate(zip([channels, *widths], widths))])
        h, w = bottleneck_shape(image_size, depth)
        self.fc = nn.Linear(widths[-1] * h * w, out_features)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.stages(x).flatten(1))  # (B, out_features)


class Decoder(nn.Module):
    """(B, latent_dim) -> (B, C, H, W) in [0, 1]."""

    def __init__(self, channels: int, image_size: tuple[int, int], width: int, depth: int, latent_dim: int):
        super().__init__()
        widths = stage_widths(width, depth)[::-1]
        self.grid = (widths[0], *bottleneck_shape(image_size, depth))
        self.fc = nn.Linear(latent_dim, widths[0] * self.grid[1] * self.grid[2])
        self.stages = nn.Sequential(*[up(cin, cout) for cin, cout in zip(widths, widths[1:])])
        self.head = nn.ConvTranspose2d(widths[-1], channels, 4, stride=2, padding=1)  # to full resolution

    def forward(self, z: Tensor) -> Tensor:
        x = torch.nn.functional.leaky_relu(self.fc(z), 0.2).view(-1, *self.grid)  # (B, C', h, w)
        return torch.sigmoid(self.head(self.stages(x)))  # (B, C, H, W)


class Autoencoder(nn.Module):
    def __init__(self, channels: int, image_size: tuple[int, int], width: int, depth: int, latent_dim: int):
        super().__init__()
        self.encoder = Encoder(channels, image_size, width, depth, latent_dim)
        self.decoder = Decoder(channels, image_size, width, depth, latent_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x))  # (B, C, H, W)
