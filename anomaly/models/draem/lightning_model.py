"""`draem`: repair synthetic defects, segment where input and repair disagree.

Options (`ModelConfig.options`, `anomaly train --option KEY=VALUE`), defaults in `DEFAULTS`:
  crop        side of the random square crops trained on (0 = whole images); scoring is on whole images
  seg_width   channels of the segmentation U-Net's first stage
  seg_depth   pooling stages of the segmentation U-Net
  p_defect    fraction of training images that get a synthetic defect
The anomaly map is the defect probability (sigmoid of the logits), smoothed like every model's map.
"""

from __future__ import annotations

import torch
from torch import Tensor

from anomaly.config import ModelConfig
from anomaly.models import model_options
from anomaly.models.base import ReconstructionModel
from anomaly.models.draem.loss import draem_losses
from anomaly.models.draem.torch_model import Draem
from anomaly.scoring import gaussian_blur
from anomaly.synthetic import synthesize

DEFAULTS = {"crop": 128, "seg_width": 16, "seg_depth": 3, "p_defect": 0.5}


class DraemModel(ReconstructionModel):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.options = model_options(config, DEFAULTS)
        factor = 2 ** max(config.depth, self.options["seg_depth"])
        if self.options["crop"] % factor:
            raise ValueError(f"draem crop {self.options['crop']} must be a multiple of {factor} "
                             f"(2**max(depth, seg_depth)); e.g. --option crop={max(factor, 128 // factor * factor)}")
        self.net = Draem(config.channels, config.width, config.depth, self.options["seg_width"],
                         self.options["seg_depth"])
        self.generator: torch.Generator | None = None

    def _generator(self, device: torch.device) -> torch.Generator:
        if self.generator is None or self.generator.device != device:
            seed = int(torch.randint(2**31, (1,)).item())  # drawn from the globally seeded RNG
            self.generator = torch.Generator(device).manual_seed(seed)
        return self.generator

    def _crop(self, x: Tensor, generator: torch.Generator) -> Tensor:
        size, (h, w) = self.options["crop"], x.shape[-2:]
        if not size or size >= min(h, w):
            return x
        top = int(torch.randint(h - size + 1, (1,), generator=generator, device=generator.device))
        left = int(torch.randint(w - size + 1, (1,), generator=generator, device=generator.device))
        return x[..., top:top + size, left:left + size]

    def losses(self, x: Tensor) -> dict[str, Tensor]:
        generator = self._generator(x.device)
        clean = self._crop(x, generator)
        damaged, mask = synthesize(clean, generator=generator, p_defect=self.options["p_defect"])
        repaired = self.net(damaged)
        return draem_losses(clean, repaired, self.net.defect_logits(damaged, repaired), mask)

    @torch.no_grad()
    def anomaly_map(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, 1, H, W) smoothed defect probability in [0, 1]."""
        probability = torch.sigmoid(self.net.defect_logits(x, self.net(x)))
        if self.config.smoothing_sigma > 0:
            probability = gaussian_blur(probability, self.config.smoothing_sigma)
        return probability
