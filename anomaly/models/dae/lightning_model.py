"""`dae`: denoising autoencoder. Trained to map corrupted inputs to the clean image; scored by the
base's residual map on the clean (uncorrupted) input (`--residual l2` with `--option loss=l2`: the
classic L2 DAE). Options: options.py.
"""

from torch import Tensor

from anomaly.config import ModelConfig
from anomaly.models import model_options
from anomaly.models.base import ReconstructionModel
from anomaly.models.dae.loss import denoising_losses
from anomaly.models.dae.options import DAEOptions
from anomaly.models.dae.torch_model import DenoisingAutoencoder, corrupt

class DenoisingAutoencoderModel(ReconstructionModel):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.options: DAEOptions = model_options(config)
        self.net = DenoisingAutoencoder(config.channels, config.image_size, config.width, config.depth,
                                        config.latent_dim)

    def losses(self, x: Tensor) -> dict[str, Tensor]:
        noisy = corrupt(x, float(self.options.noise_std), float(self.options.salt_pepper))  # global RNG (seeded)
        return denoising_losses(x, self(noisy), self.options.loss)
