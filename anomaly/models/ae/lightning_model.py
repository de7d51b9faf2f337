"""`ae` (L2 loss) and `ssim-ae` (SSIM loss): the same network, two losses."""

from torch import Tensor

from anomaly.config import ModelConfig
from anomaly.models.ae.loss import reconstruction_losses
from anomaly.models.ae.torch_model import Autoencoder
from anomaly.models.base import ReconstructionModel

LOSS_OF_MODEL = {"ae": "l2", "ssim-ae": "ssim"}


class AutoencoderModel(ReconstructionModel):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.loss_kind = LOSS_OF_MODEL[config.name]
        self.net = Autoencoder(config.channels, config.image_size, config.width, config.depth, config.latent_dim)

    def losses(self, x: Tensor) -> dict[str, Tensor]:
        return reconstruction_losses(x, self(x), self.loss_kind)
