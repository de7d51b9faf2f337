"""`diffusion`: a denoising diffusion model trained on normal images only (DDPM, Ho et al. 2020,
arXiv:2006.11239), scored as AnoDDPM does (Wyatt et al. 2022, doi:10.1109/CVPRW56347.2022.00074).

A training step: per image a step t drawn uniformly from [1, train_level] and noise of the `noise` kind (both
from the globally seeded RNG), the clean image (in [-1, 1]) noised to x_t, and the U-Net's prediction of that
noise against it (loss.py). Scoring: the image noised to step `noise_level` with the fixed scoring noise (one
draw of `noise_seed`, the same for every image, so a score is a function of the image alone and the loop
exports to ONNX unrolled), denoised in `denoise_steps` DDIM steps; the map is 1 - MSGMS of the input and that
reconstruction (as inpaint's; `--residual l2|ssim|ssim+l2`: that residual instead), smoothed. Options: options.py.
"""

from __future__ import annotations

import torch
from torch import Tensor

from anomaly.config import ModelConfig
from anomaly.models import model_options
from anomaly.models.base import ReconstructionModel
from anomaly.models.diffusion.loss import noise_prediction_loss
from anomaly.models.diffusion.options import DiffusionOptions
from anomaly.models.diffusion.torch_model import DiffusionDenoiser, draw_noise
from anomaly.scoring import msgms_map

MSGMS_SCALES = 4


class DiffusionModel(ReconstructionModel):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.options: DiffusionOptions = model_options(config)
        o = self.options
        self.net = DiffusionDenoiser(config.channels, config.image_size, config.width, config.depth,
                                     timesteps=o.timesteps, noise_level=o.noise_level, denoise_steps=o.denoise_steps,
                                     noise=o.noise, noise_seed=o.noise_seed)

    def losses(self, x: Tensor) -> dict[str, Tensor]:
        t = torch.randint(1, self.options.train_level + 1, (len(x),), device=x.device)  # global RNG (seeded)
        noise = draw_noise(self.options.noise, tuple(x.shape), device=x.device)
        noised = self.net.noised(2 * x - 1, t, noise)
        return noise_prediction_loss(self.net.unet(noised, t), noise)

    @torch.no_grad()
    def anomaly_map(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, 1, H, W): 1 - MSGMS (or the `--residual`) of x and its denoised reconstruction, smoothed."""
        if self.config.residual != "msgms":
            return super().anomaly_map(x)
        return self.smooth(1 - msgms_map(x, self(x), scales=MSGMS_SCALES))
