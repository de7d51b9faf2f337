"""Reconstruction by inpainting (RIAD; Zavrtanik, Kristan, Skočaj 2021, doi:10.1016/j.patcog.2020.107706).

The image is split into a grid of k x k cells, each cell given at random to one of n disjoint masks;
the network sees the image with one mask's cells hidden (set to 0) and the output is kept on exactly
those cells, so every pixel is reconstructed from its surroundings only. A U-Net (skip connections,
no dense bottleneck: inpainting needs the visible context at full resolution) built from the
autoencoder's `down`/`up` stages.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from anomaly.models.ae.torch_model import bottleneck_shape, down, stage_widths, up


def grid_masks(n_images: int, size: tuple[int, int], cell: int, n_masks: int, *,
               generator: torch.Generator | None = None, device: torch.device | str | None = None) -> Tensor:
    """(n_images, n_masks, 1, H, W) float in {0, 1}: per image, n disjoint masks that cover every pixel,
    each `cell` x `cell` grid cell (cut at the borders) in one mask drawn uniformly at random."""
    h, w = size
    owner = torch.randint(n_masks, (n_images, math.ceil(h / cell), math.ceil(w / cell)), generator=generator)
    masks = F.one_hot(owner, n_masks).permute(0, 3, 1, 2).float()  # (N, n, gh, gw)
    masks = masks.repeat_interleave(cell, dim=2).repeat_interleave(cell, dim=3)[..., :h, :w]
    return masks[:, :, None].to(device)  # (N, n, 1, H, W)


class UNet(nn.Module):
    """(B, C, H, W) -> (B, C, H, W) in [0, 1]; `depth` stride-2 stages down, mirrored up with skips."""

    def __init__(self, channels: int, image_size: tuple[int, int], width: int, depth: int):
        super().__init__()
        bottleneck_shape(image_size, depth)  # raises for sizes not divisible by 2**depth
        widths = stage_widths(width, depth)
        self.downs = nn.ModuleList([down(cin, cout, refine=i > 0)
                                    for i, (cin, cout) in enumerate(zip([channels, *widths], widths))])
        # up stage i: from level i + 1 (its input: the deepest features, or an up output + skip) to level i
        self.ups = nn.ModuleList([up(widths[i + 1] * (1 if i == depth - 2 else 2), widths[i])
                                  for i in reversed(range(depth - 1))])
        self.head = nn.ConvTranspose2d(widths[0] * (1 if depth == 1 else 2), channels, 4, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        for stage in self.downs:
            x = stage(x)  # (B, widths[i], H / 2**(i+1), W / 2**(i+1))
            skips.append(x)
        skips.pop()
        for stage in self.ups:
            x = torch.cat([stage(x), skips.pop()], dim=1)  # (B, 2 * widths[i], H / 2**(i+1), W / 2**(i+1))
        return torch.sigmoid(self.head(x))  # (B, C, H, W)


def inpaint(unet: nn.Module, x: Tensor, masks: Tensor) -> Tensor:
    """(B, C, H, W) images and (B or 1, n, 1, H, W) disjoint covering masks (1 = hidden) ->
    (B, C, H, W): each pixel taken from the pass in which it was hidden."""
    b, n = x.shape[0], masks.shape[1]
    hidden = masks.expand(b, -1, -1, -1, -1)  # (B, n, 1, H, W)
    outputs = unet((x[:, None] * (1 - hidden)).flatten(0, 1)).view(b, n, *x.shape[1:])  # (B, n, C, H, W)
    return (outputs * hidden).sum(dim=1)


class Inpainter(nn.Module):
    """forward: the mean of the reconstructions at every mask size, with fixed masks drawn from
    `mask_seed` at construction (the same on every machine and after reloading), (B, C, H, W)."""

    def __init__(self, channels: int, image_size: tuple[int, int], width: int, depth: int,
                 mask_sizes: list[int], n_masks: int, mask_seed: int):
        super().__init__()
        self.unet = UNet(channels, image_size, width, depth)
        generator = torch.Generator().manual_seed(mask_seed)
        for k in mask_sizes:  # not in the state dict: rebuilt from the config
            self.register_buffer(f"masks_{k}", grid_masks(1, image_size, k, n_masks, generator=generator),
                                 persistent=False)
        self.mask_sizes = list(mask_sizes)

    def reconstructions(self, x: Tensor) -> list[Tensor]:
        """(B, C, H, W) -> one (B, C, H, W) inpainted reconstruction per mask size."""
        return [inpaint(self.unet, x, getattr(self, f"masks_{k}")) for k in self.mask_sizes]

    def forward(self, x: Tensor) -> Tensor:
        return torch.stack(self.reconstructions(x)).mean(dim=0)  # (B, C, H, W)
