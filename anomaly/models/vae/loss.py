"""Beta-VAE loss (Higgins et al. 2017): reconstruction + beta * KL(q(z|x) || N(0, I))."""

import torch
from torch import Tensor
from torch.nn.functional import mse_loss


def vae_losses(x: Tensor, reconstruction: Tensor, mean: Tensor, log_var: Tensor, beta: float) -> dict[str, Tensor]:
    """Per-pixel mean squared error plus the KL divergence per image divided by the pixel count
    (C*H*W), so that beta balances the two terms independently of the image size."""
    l2 = mse_loss(reconstruction, x)
    kl = -0.5 * torch.sum(1 + log_var - mean.pow(2) - log_var.exp(), dim=1).mean() / x[0].numel()
    return {"loss": l2 + beta * kl, "l2": l2, "kl": kl}
