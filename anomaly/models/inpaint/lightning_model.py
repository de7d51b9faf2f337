"""`inpaint`: reconstruction by inpainting, RIAD-style (Zavrtanik et al. 2021, doi:10.1016/j.patcog.2020.107706).

Training: per batch one cell size k drawn from `mask_sizes`, per image `n_masks` random disjoint
grid masks; the image is inpainted from the masks and compared with L2 + SSIM + MSGMS.
Scoring: the image inpainted with fixed masks at every size in `mask_sizes`; the map is
1 - mean over sizes of `msgms_map(image, inpainted)`, smoothed by `smoothing_sigma` (RIAD uses a
21x21 mean filter). With `--residual l2|ssim|ssim+l2` the map is that residual of the mean
reconstruction instead. forward(x) returns the mean reconstruction over sizes.

Options (`ModelConfig.options`, `anomaly train --option KEY=VALUE`), defaults (RIAD's):
    mask_sizes: [2, 4, 8, 16]  grid cell sizes in model pixels
    n_masks: 3                 disjoint masks per size (each pixel hidden in exactly one)
    msgms_scales: 4            scales of MSGMS in the loss and the map
    ssim_weight: 1.0           lambda_S of the loss
    msgms_weight: 1.0          lambda_G of the loss
    mask_seed: 0               seed of the fixed scoring masks
"""

import torch
from torch import Tensor

from anomaly.config import ModelConfig
from anomaly.models import model_options
from anomaly.models.base import ReconstructionModel
from anomaly.models.inpaint.loss import inpainting_losses
from anomaly.models.inpaint.torch_model import Inpainter, grid_masks, inpaint
from anomaly.scoring import msgms_map

DEFAULTS = {"mask_sizes": [2, 4, 8, 16], "n_masks": 3, "msgms_scales": 4, "ssim_weight": 1.0,
            "msgms_weight": 1.0, "mask_seed": 0}


class InpaintingModel(ReconstructionModel):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        options = model_options(config, DEFAULTS)
        self.mask_sizes = [int(k) for k in options["mask_sizes"]]
        self.n_masks, self.scales = int(options["n_masks"]), int(options["msgms_scales"])
        if not self.mask_sizes or min(self.mask_sizes) < 1 or self.n_masks < 2:
            raise ValueError(f"inpaint options: expected mask_sizes a non-empty list of positive cell sizes "
                             f"and n_masks >= 2, got {options['mask_sizes']!r} and {options['n_masks']!r}")
        self.weights = {"ssim_weight": float(options["ssim_weight"]), "msgms_weight": float(options["msgms_weight"])}
        self.net = Inpainter(config.channels, config.image_size, config.width, config.depth, self.mask_sizes,
                             self.n_masks, int(options["mask_seed"]))

    def losses(self, x: Tensor) -> dict[str, Tensor]:
        k = self.mask_sizes[int(torch.randint(len(self.mask_sizes), ()))]  # global RNG (seeded by train)
        masks = grid_masks(len(x), tuple(x.shape[-2:]), k, self.n_masks, device=x.device)  # (B, n, 1, H, W)
        return inpainting_losses(x, inpaint(self.net.unet, x, masks), scales=self.scales, **self.weights)

    @torch.no_grad()
    def anomaly_map(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, 1, H, W): 1 - MSGMS of the image and its inpaintings, mean over mask sizes."""
        if self.config.residual != "msgms":
            return super().anomaly_map(x)
        reconstructions = self.net.reconstructions(x)  # one (B, C, H, W) per mask size
        amap = 1 - torch.stack([msgms_map(x, r, scales=self.scales) for r in reconstructions]).mean(dim=0)
        return self.smooth(amap)  # (B, 1, H, W)
