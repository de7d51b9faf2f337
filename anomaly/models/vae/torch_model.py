"""Convolutional variational autoencoder (Kingma & Welling 2014, arXiv:1312.6114)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from anomaly.models.ae.torch_model import Decoder, Encoder


class VariationalAutoencoder(nn.Module):
    def __init__(self, channels: int, image_size: tuple[int, int], width: int, depth: int, latent_dim: int):
        super().__init__()
        self.encoder = Encoder(channels, image_size, width, depth, 2 * latent_dim)
        self.decoder = Decoder(channels, image_size, width, depth, latent_dim)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B, C, H, W) -> mean and log-variance, each (B, latent_dim)."""
        mean, log_var = self.encoder(x).chunk(2, dim=1)
        return mean, log_var.clamp(-30.0, 20.0)

    def forward(self, x: Tensor) -> Tensor:
        """Reconstruction of the posterior mean (deterministic): (B, C, H, W)."""
        return self.decoder(self.encode(x)[0])

    def sample_reconstruction(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Reparameterised sample: reconstruction (B, C, H, W), mean and log-variance (B, latent_dim)."""
        mean, log_var = self.encode(x)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)
        return self.decoder(z), mean, log_var
