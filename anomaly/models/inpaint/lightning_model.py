"""`inpaint`: reconstruction by inpainting, RIAD-style (Zavrtanik et al. 2021, doi:10.1016/j.patcog.2020.107706).

Training: per batch one cell size k drawn from `mask_sizes`, per image `n_masks` random disjoint
grid masks; the image is inpainted from the masks and compared with L2 + SSIM + MSGMS.
Scoring: the image inpainted with fixed masks at every size in `mask_sizes`; the map is
1 - mean over sizes of `msgms_map(image, inpainted)`, smoothed by `smoothing_sigma` (RIAD uses a
21x21 mean filter). With `--residual l2|ssim|ssim+l2` the map is that residual of the mean
reconstruction instead. forward(x) returns the mean reconstruction over sizes. Options: options.py.
"""

import torch
from torch import Tensor

from anomaly.config import ModelConfig
from anomaly.models import model_options
from anomaly.models.base import ReconstructionModel
from anomaly.models.inpaint.loss import inpainting_losses
from anomaly.models.inpaint.torch_model import Inpainter, grid_masks, inpaint
from anomaly.scoring import msgms_map

class InpaintingModel(ReconstructionModel):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        options = model_options(config)
        self.mask_sizes, self.n_masks, self.scales = list(options.mask_sizes), options.n_masks, options.msgms_scales
        self.weights = {"ssim_weight": float(options.ssim_weight), "msgms_weight": float(options.msgms_weight)}
        self.net = Inpainter(config.channels, config.image_size, config.width, config.depth, self.mask_sizes,
                             self.n_masks, options.mask_seed)

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
