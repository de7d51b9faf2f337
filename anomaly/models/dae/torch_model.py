"""Denoising autoencoder (Vincent et al. 2008, doi:10.1145/1390156.1390294): the plain autoencoder
of `anomaly.models.ae` fed corrupted inputs during training, plus the corruption itself."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from anomaly.models.ae.torch_model import Autoencoder


def corrupt(x: Tensor, noise_std: float, salt_pepper: float, generator: torch.Generator | None = None) -> Tensor:
    """(B, C, H, W) in [0, 1] -> (B, C, H, W) in [0, 1]: additive Gaussian noise of std `noise_std`,
    then a fraction `salt_pepper` of pixels (all channels together) set to 0 or 1 with equal odds."""
    noisy = x + noise_std * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    if salt_pepper > 0:
        u = torch.rand((x.shape[0], 1, *x.shape[2:]), generator=generator, device=x.device, dtype=x.dtype)
        noisy = torch.where(u < salt_pepper / 2, 0.0, torch.where(u < salt_pepper, 1.0, noisy))  # (B, C, H, W)
    return noisy.clamp(0, 1)


class DenoisingAutoencoder(nn.Module):
    """forward: the clean reconstruction of (B, C, H, W) -> (B, C, H, W); corruption is the loss's business."""

    def __init__(self, channels: int, image_size: tuple[int, int], width: int, depth: int, latent_dim: int):
        super().__init__()
        self.autoencoder = Autoencoder(channels, image_size, width, depth, latent_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.autoencoder(x)  # (B, C, H, W)
