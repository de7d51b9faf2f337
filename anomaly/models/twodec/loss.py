"""USAD's two objectives at epoch n >= 1 (Audibert et al. 2020, doi:10.1145/3394486.3403392, eq. 7-8):

    L_AE1 = 1/n ||x - AE1(x)||^2 + (1 - 1/n) ||x - AE2(AE1(x))||^2   (AE1 learns to fool AE2)
    L_AE2 = 1/n ||x - AE2(x)||^2 - (1 - 1/n) ||x - AE2(AE1(x))||^2   (AE2 learns to tell them apart)

Reconstruction dominates early; the adversarial term takes over as n grows.
"""

from torch import Tensor
from torch.nn.functional import mse_loss


def two_decoder_losses(x: Tensor, ae1: Tensor, ae2: Tensor, ae2_of_ae1: Tensor, epoch: int) -> dict[str, Tensor]:
    """(B, C, H, W) images and reconstructions; `epoch` n counts from 1. "loss" = L_AE1 + L_AE2."""
    if epoch < 1:
        raise ValueError(f"epoch counts from 1, got {epoch}")
    w = 1 / epoch
    l2_ae1, l2_ae2, l2_ae2_of_ae1 = mse_loss(ae1, x), mse_loss(ae2, x), mse_loss(ae2_of_ae1, x)
    loss_ae1 = w * l2_ae1 + (1 - w) * l2_ae2_of_ae1
    loss_ae2 = w * l2_ae2 - (1 - w) * l2_ae2_of_ae1
    return {"loss": loss_ae1 + loss_ae2, "loss_ae1": loss_ae1, "loss_ae2": loss_ae2, "l2_ae1": l2_ae1,
            "l2_ae2": l2_ae2, "l2_ae2_of_ae1": l2_ae2_of_ae1}
