"""`dae`: denoising autoencoder. Trained to map corrupted inputs to the clean image; scored by the
base's residual map on the clean (uncorrupted) input.

Options (`ModelConfig.options`, `anomaly train --option KEY=VALUE`), defaults:
    noise_std: 0.1     std of the additive Gaussian noise (images in [0, 1]); 0 disables
    salt_pepper: 0.02  fraction of pixels set to 0 or 1; 0 disables
    loss: "ssim"       training loss, "ssim" (as ssim-ae) or "l2" (as ae); the map is `--residual`
                       (default "ssim"; pass `--residual l2` with `loss=l2` for the classic L2 DAE)
"""

from torch import Tensor

from anomaly.config import ModelConfig
from anomaly.models import model_options
from anomaly.models.base import ReconstructionModel
from anomaly.models.dae.loss import denoising_losses
from anomaly.models.dae.torch_model import DenoisingAutoencoder, corrupt

DEFAULTS = {"noise_std": 0.1, "salt_pepper": 0.02, "loss": "ssim"}


class DenoisingAutoencoderModel(ReconstructionModel):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        options = model_options(config, DEFAULTS)
        self.noise_std, self.salt_pepper = float(options["noise_std"]), float(options["salt_pepper"])
        self.loss_kind = options["loss"]
        if self.noise_std < 0 or not 0 <= self.salt_pepper <= 1 or self.loss_kind not in ("l2", "ssim"):
            raise ValueError(f"dae options: expected noise_std >= 0, salt_pepper in [0, 1] and loss 'l2' or "
                             f"'ssim', got {self.noise_std}, {self.salt_pepper} and {self.loss_kind!r}")
        self.net = DenoisingAutoencoder(config.channels, config.image_size, config.width, config.depth,
                                        config.latent_dim)

    def losses(self, x: Tensor) -> dict[str, Tensor]:
        noisy = corrupt(x, self.noise_std, self.salt_pepper)  # (B, C, H, W), global RNG (seeded by train)
        return denoising_losses(x, self(noisy), self.loss_kind)
