"""`ganomaly`: encoder-decoder-encoder generator with a discriminator (Akcay et al. ACCV 2018,
arXiv:1805.06725), with Lightning manual optimisation: per batch an Adam step on the generator for
L_G (loss.py), then one on the discriminator for real-vs-reconstruction cross-entropy; the
discriminator is re-initialised when its loss collapses below 1e-5, as in the paper's code.
forward(x) is the reconstruction x_hat.

Scoring: the map is the base's `--residual` map of x and x_hat (default "l2"), smoothed, so the
heatmap shows where the reconstruction disagrees. The paper's score is the latent consistency
||G_E(x) - E(x_hat)||^2; here it enters the image score through `image_score_bias`, which
`anomaly.backends.score_images` adds to the map's reduction:

    score = reduce(map) + latent_weight * mean((z - z_hat)^2)

Options (the loss weights and latent_weight): options.py.
"""

import dataclasses

import torch
from torch import Tensor

from anomaly.config import ModelConfig
from anomaly.models import model_options
from anomaly.models.base import ReconstructionModel
from anomaly.models.ganomaly.loss import discriminator_loss, generator_losses, latent_error
from anomaly.models.ganomaly.torch_model import Ganomaly

def _reset(module: torch.nn.Module) -> None:
    if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
        module.reset_parameters()


class GanomalyModel(ReconstructionModel):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        options = {k: float(v) for k, v in dataclasses.asdict(model_options(config)).items()}
        self.latent_weight = options.pop("latent_weight")
        self.weights = options
        self.automatic_optimization = False
        self.net = Ganomaly(config.channels, config.image_size, config.width, config.depth, config.latent_dim)

    def _losses(self, x: Tensor) -> tuple[dict[str, Tensor], Tensor, Tensor]:
        """Generator losses, the real logits and x_hat (kept for the discriminator's step)."""
        z, x_hat, z_hat = self.net.generator(x)
        logit_real, features_real = self.net.discriminator(x)
        _, features_fake = self.net.discriminator(x_hat)
        return generator_losses(x, x_hat, z, z_hat, features_real, features_fake, **self.weights), logit_real, x_hat

    def losses(self, x: Tensor) -> dict[str, Tensor]:
        """"loss" (L_G), "adv", "con", "enc" and the discriminator's "disc"."""
        losses, logit_real, x_hat = self._losses(x)
        return {**losses, "disc": discriminator_loss(logit_real, self.net.discriminator(x_hat)[0])}

    @torch.no_grad()
    def image_score_bias(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B,): latent_weight * GANomaly's latent error, added to the image score."""
        z, _, z_hat = self.net.generator(x)
        return self.latent_weight * latent_error(z, z_hat)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        x = batch["image"]
        opt_g, opt_d = self.optimizers()
        losses, logit_real, x_hat = self._losses(x)
        opt_g.zero_grad()
        self.manual_backward(losses["loss"])
        opt_g.step()
        # the discriminator is unchanged by the generator's step: its real logits are still valid
        disc = discriminator_loss(logit_real, self.net.discriminator(x_hat.detach())[0])
        opt_d.zero_grad()
        self.manual_backward(disc)
        opt_d.step()
        if disc.item() < 1e-5:
            self.net.discriminator.apply(_reset)
        self.log_dict({f"train/{k}": v.detach() for k, v in {**losses, "disc": disc}.items()}, on_step=False,
                      on_epoch=True, prog_bar=True, batch_size=len(x))

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        return [torch.optim.Adam(self.net.generator.parameters(), lr=self.config.lr, betas=(0.5, 0.999)),
                torch.optim.Adam(self.net.discriminator.parameters(), lr=self.config.lr, betas=(0.5, 0.999))]
