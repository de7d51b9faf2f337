"""`twodec`: one encoder, two adversarially trained decoders (USAD, Audibert et al. KDD 2020,
doi:10.1145/3394486.3403392), with Lightning manual optimisation: per batch, an Adam step on
encoder + decoder1 for L_AE1, then a fresh forward and an Adam step on encoder + decoder2 for L_AE2
(see loss.py; n = current epoch + 1). forward(x) is AE1(x).

Anomaly map (USAD's score, per pixel): alpha * r(x, AE1(x)) + beta * r(x, AE2(AE1(x))), r the
`--residual` map (default "l2", USAD's squared error), smoothed by `smoothing_sigma`; the image
score is the base's reduction of it. Large beta: more sensitive (more detections and false alarms);
large alpha: less. Options: options.py.
"""

import torch
from torch import Tensor

from anomaly.config import ModelConfig
from anomaly.models import model_options
from anomaly.models.base import ReconstructionModel
from anomaly.models.twodec.loss import two_decoder_losses
from anomaly.models.twodec.torch_model import TwoDecoderAutoencoder
from anomaly.scoring import residual_map

class TwoDecoderModel(ReconstructionModel):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        weights = model_options(config).score_weights
        self.alpha, self.beta = float(weights[0]), float(weights[1])
        self.automatic_optimization = False
        self.net = TwoDecoderAutoencoder(config.channels, config.image_size, config.width, config.depth,
                                         config.latent_dim)

    def losses(self, x: Tensor) -> dict[str, Tensor]:
        return two_decoder_losses(x, *self.net.all_reconstructions(x), epoch=self.current_epoch + 1)

    @torch.no_grad()
    def anomaly_map(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, 1, H, W): alpha * r(x, AE1(x)) + beta * r(x, AE2(AE1(x))), smoothed."""
        ae1 = self.net(x)  # (B, C, H, W)
        ae2_of_ae1 = self.net.decoder2(self.net.encoder(ae1))
        kind = self.config.residual
        amap = self.alpha * residual_map(x, ae1, kind) + self.beta * residual_map(x, ae2_of_ae1, kind)
        return self.smooth(amap)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        x = batch["image"]
        opt1, opt2 = self.optimizers()
        for optimiser, key in ((opt1, "loss_ae1"), (opt2, "loss_ae2")):
            losses = self.losses(x)  # recomputed after the first step, as USAD does
            optimiser.zero_grad()
            self.manual_backward(losses[key])
            optimiser.step()
        self.log_dict({f"train/{k}": v.detach() for k, v in losses.items()}, on_step=False, on_epoch=True,
                      prog_bar=True, batch_size=len(x))

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        net = self.net
        return [torch.optim.Adam([*net.encoder.parameters(), *net.decoder1.parameters()], lr=self.config.lr),
                torch.optim.Adam([*net.encoder.parameters(), *net.decoder2.parameters()], lr=self.config.lr)]
