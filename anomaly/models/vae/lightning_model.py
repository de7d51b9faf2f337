"""`vae`: trained on reparameterised samples, scored by reconstruction of the posterior mean."""

from torch import Tensor

from anomaly.config import ModelConfig
from anomaly.models.base import ReconstructionModel
from anomaly.models.vae.loss import vae_losses
from anomaly.models.vae.torch_model import VariationalAutoencoder


class VAEModel(ReconstructionModel):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.net = VariationalAutoencoder(config.channels, config.image_size, config.width, config.depth,
                                          config.latent_dim)

    def losses(self, x: Tensor) -> dict[str, Tensor]:
        reconstruction, mean, log_var = self.net.sample_reconstruction(x)
        return vae_losses(x, reconstruction, mean, log_var, self.config.beta)
