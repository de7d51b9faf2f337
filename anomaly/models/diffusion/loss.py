"""The diffusion model's loss: the simple noise-prediction objective of DDPM (Ho et al. 2020, arXiv:2006.11239, eq. 14)."""

from torch import Tensor
from torch.nn.functional import mse_loss


def noise_prediction_loss(predicted: Tensor, noise: Tensor) -> dict[str, Tensor]:
    """Mean squared error between the predicted and the drawn noise, both (B, C, H, W); "loss" is it."""
    loss = mse_loss(predicted, noise)
    return {"loss": loss}
