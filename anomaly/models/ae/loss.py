"""Reconstruction losses of the plain and SSIM autoencoders."""

from torch import Tensor
from torch.nn.functional import mse_loss

from anomaly.scoring import ssim_loss


def reconstruction_losses(x: Tensor, reconstruction: Tensor, kind: str) -> dict[str, Tensor]:
    """"l2": mean squared error; "ssim": 1 - mean SSIM (Bergmann et al. 2019, doi:10.5220/0007364503720380)."""
    if kind == "l2":
        l2 = mse_loss(reconstruction, x)
        return {"loss": l2, "l2": l2}
    if kind == "ssim":
        ssim = ssim_loss(x, reconstruction)
        return {"loss": ssim, "ssim": ssim, "l2": mse_loss(reconstruction, x).detach()}
    raise ValueError(f"unknown reconstruction loss {kind!r}; expected 'l2' or 'ssim'")
