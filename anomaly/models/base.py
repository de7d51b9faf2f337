"""The one LightningModule base of every reconstruction model.

A subclass sets `self.net` (a plain `nn.Module` whose forward returns a reconstruction) and
implements `losses(x) -> dict` with the total under "loss". The base logs the losses, builds the
optimiser and turns reconstructions into anomaly maps with `anomaly.scoring`.
"""

from __future__ import annotations

import lightning as L
import torch
from torch import Tensor

from anomaly.config import ModelConfig
from anomaly.scoring import gaussian_blur, residual_map


class ReconstructionModel(L.LightningModule):
    net: torch.nn.Module

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.save_hyperparameters(config.to_dict())

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) float32 in [0, 1] -> reconstruction (B, C, H, W), in training and evaluation."""
        return self.net(x)

    def losses(self, x: Tensor) -> dict[str, Tensor]:
        raise NotImplementedError

    @torch.no_grad()
    def anomaly_map(self, x: Tensor) -> Tensor:
        """(B, C, H, W) images -> (B, 1, H, W) smoothed residual between input and reconstruction."""
        return self.smooth(residual_map(x, self(x), self.config.residual))

    def smooth(self, amap: Tensor) -> Tensor:
        """Every model's last step: Gaussian smoothing of a (B, 1, H, W) map by `smoothing_sigma` (0 = none)."""
        return gaussian_blur(amap, self.config.smoothing_sigma) if self.config.smoothing_sigma > 0 else amap

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        losses = self.losses(batch["image"])
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, on_step=False, on_epoch=True,
                      prog_bar=True, batch_size=len(batch["image"]))
        return losses["loss"]

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        losses = self.losses(batch["image"])
        self.log_dict({f"val/{k}": v for k, v in losses.items()}, on_step=False, on_epoch=True,
                      prog_bar=True, batch_size=len(batch["image"]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.config.lr)
