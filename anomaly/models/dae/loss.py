"""Denoising loss: the reconstruction of a corrupted image compared with the clean image."""

from torch import Tensor

from anomaly.models.ae.loss import reconstruction_losses


def denoising_losses(x: Tensor, reconstruction_of_noisy: Tensor, kind: str) -> dict[str, Tensor]:
    """`kind` "l2" or "ssim" as `anomaly.models.ae.loss.reconstruction_losses`, against the clean `x`."""
    return reconstruction_losses(x, reconstruction_of_noisy, kind)
