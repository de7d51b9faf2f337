"""`draem`: repair synthetic defects, segment where input and repair disagree (Zavrtanik et al. 2021,
doi:10.1109/ICCV48922.2021.00822); options and their measured defaults in options.py.

A training step: random square crops of the batch (`crop`; with `edge_crops` as likely to touch an image
edge as not), synthetic defects painted into a share of them (anomaly.synthetic), then the repair network's
L2 + SSIM loss against the clean crop plus the segmentation network's focal loss against the defect mask
(loss.py); Adam, its learning rate annealed to 0 over the training steps (`schedule`). Validation: the same
losses on the clean held-out normals (no defect: the focal loss counts false alarms). The anomaly map is the
defect probability on whole images, smoothed like every model's.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from anomaly.config import ModelConfig
from anomaly.models import model_options
from anomaly.models.base import ReconstructionModel
from anomaly.models.draem.loss import draem_losses
from anomaly.models.draem.options import DraemOptions
from anomaly.models.draem.torch_model import Draem
from anomaly.synthetic import synthesize


class DraemModel(ReconstructionModel):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.options: DraemOptions = model_options(config)
        seg_depth = self.options.seg_depth
        halvings = seg_depth + self.options.seg_stride - 1  # the segmentation U-Net's
        factor = 2 ** max(config.depth, halvings)
        if self.options.crop % factor:
            raise ValueError(f"draem crop {self.options.crop} must be a multiple of {factor} (2**max(depth, "
                             f"seg_depth + seg_stride - 1)); e.g. --option crop={max(factor, 128 // factor * factor)}")
        if any(side % factor for side in config.image_size):
            raise ValueError(f"draem image size {config.image_size[0]}x{config.image_size[1]} must be a multiple of "
                             f"{factor} on each side (2**max(depth, seg_depth + seg_stride - 1)): the segmentation "
                             f"U-Net halves it {halvings} times; choose another "
                             "--image-size, a smaller seg_depth or seg_stride 1")
        self.net = Draem(config.channels, config.width, config.depth, self.options.seg_width, seg_depth,
                         self.options.seg_stride)
        self.generator: torch.Generator | None = None  # the training defects' own stream

    def _generator(self, device: torch.device) -> torch.Generator:
        if self.generator is None or self.generator.device != device:
            seed = int(torch.randint(2**31, (1,)).item())  # drawn from the globally seeded RNG
            self.generator = torch.Generator(device).manual_seed(seed)
        return self.generator

    def _crop(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """(B, C, H, W) -> (B, C, crop, crop) at one random position; with `edge_crops` the position is drawn
        from a range half a crop wider on each side and clamped, so a crop touches each edge about a quarter
        of the time (uniform positions almost never do, yet every scored image has edges, and MTD's defects
        sit at them)."""
        size, (h, w) = self.options.crop, x.shape[-2:]
        if not size or size >= min(h, w):
            return x
        margin = size // 2 if self.options.edge_crops else 0

        def start(extent: int) -> int:
            drawn = torch.randint(-margin, extent - size + margin + 1, (1,), generator=generator, device=generator.device)
            return int(drawn.clamp(0, extent - size))

        top, left = start(h), start(w)
        return x[..., top:top + size, left:left + size]

    def training_defects(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """A training batch (B, C, H, W) as the networks see it: (clean crops, the crops with synthetic
        defects, their masks (B, 1, crop, crop) in {0, 1})."""
        generator = self._generator(x.device)
        clean = self._crop(x, generator)
        damaged, mask = synthesize(clean, generator=generator, p_defect=self.options.p_defect,
                                   p_shade=self.options.p_shade, opacity=(self.options.opacity, 1.0),
                                   sources=self.options.sources)
        return clean, damaged, mask

    def losses(self, x: Tensor) -> dict[str, Tensor]:
        return self.defect_losses(*self.training_defects(x))

    def defect_losses(self, clean: Tensor, damaged: Tensor, mask: Tensor) -> dict[str, Tensor]:
        """The losses of a batch from `training_defects`: repair `damaged` towards `clean`, segment `mask`."""
        repaired, logits = self.net.repair_and_segment(damaged)
        return draem_losses(clean, repaired, logits, mask)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        clean = batch["image"]
        repaired, logits = self.net.repair_and_segment(clean)
        losses = draem_losses(clean, repaired, logits, torch.zeros_like(logits))
        self.log_dict({f"val/{k}": v for k, v in losses.items()}, on_step=False, on_epoch=True,
                      prog_bar=True, batch_size=len(clean))

    @torch.no_grad()
    def anomaly_map(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, 1, H, W) smoothed defect probability in [0, 1]; with a residual other
        than "segmentation", the base's map of the repair network alone (e.g. "ssim")."""
        if self.config.residual != "segmentation":
            return super().anomaly_map(x)
        return self.smooth(self.net.defect_probability(x))

    def configure_optimizers(self):
        optimiser = torch.optim.Adam(self.parameters(), lr=self.config.lr)
        if self.options.schedule == "constant" or self._trainer is None:  # no Trainer: no step count
            return optimiser
        # cosine annealing to 0 over the fit's steps, read at every step: a time budget may shorten the fit
        trainer = self.trainer
        schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: 0.5 * (
            1 + math.cos(math.pi * min(1.0, step / max(1, trainer.estimated_stepping_batches)))))
        return {"optimizer": optimiser, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
