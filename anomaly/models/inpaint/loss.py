"""RIAD's training loss (Zavrtanik et al. 2021, doi:10.1016/j.patcog.2020.107706, eq. 6):
L2 + lambda_S * (1 - SSIM) + lambda_G * (1 - MSGMS), on the image inpainted from all its masks."""

from torch import Tensor
from torch.nn.functional import mse_loss

from anomaly.scoring import msgms_map, ssim_loss


def inpainting_losses(x: Tensor, inpainted: Tensor, *, ssim_weight: float, msgms_weight: float,
                      scales: int) -> dict[str, Tensor]:
    """`x`, `inpainted`: (B, C, H, W) in [0, 1]; scalars, the total under "loss"."""
    l2 = mse_loss(inpainted, x)
    ssim = ssim_loss(x, inpainted)
    msgms = 1 - msgms_map(x, inpainted, scales=scales).mean()
    return {"loss": l2 + ssim_weight * ssim + msgms_weight * msgms, "l2": l2, "ssim": ssim, "msgms": msgms}
