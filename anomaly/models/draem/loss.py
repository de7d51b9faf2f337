"""DRAEM's losses: repair (L2 + SSIM) and focal segmentation loss (Lin et al. 2017, arXiv:1708.02002)."""

import torch
from torch import Tensor
from torch.nn.functional import binary_cross_entropy_with_logits, mse_loss

from anomaly.scoring import ssim_loss


def focal_loss(logits: Tensor, target: Tensor, gamma: float = 2.0) -> Tensor:
    """Mean binary focal loss; logits and target (B, 1, H, W), target in {0, 1}."""
    bce = binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_true = torch.exp(-bce)
    return ((1 - p_true) ** gamma * bce).mean()


def draem_losses(clean: Tensor, repaired: Tensor, logits: Tensor, mask: Tensor) -> dict[str, Tensor]:
    l2 = mse_loss(repaired, clean)
    ssim = ssim_loss(clean, repaired)
    focal = focal_loss(logits, mask)
    return {"loss": l2 + ssim + focal, "l2": l2, "ssim": ssim, "focal": focal}
