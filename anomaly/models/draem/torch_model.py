"""DRAEM-lite networks (Zavrtanik et al. 2021, doi:10.1109/ICCV48922.2021.00822), compute-lean for CPUs.

- `RepairNet`: a fully convolutional encoder-decoder without skip connections (a skip would copy
  the defect through), trained to turn images with synthetic defects back into the clean image.
- `SegmentationNet`: a small U-Net that looks at [input, repair] and outputs defect logits.
Both are fully convolutional, so they train on crops and score whole images.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from anomaly.models.ae.torch_model import down, stage_widths, up


class RepairNet(nn.Module):
    """(B, C, H, W) -> (B, C, H, W) in [0, 1]; H, W divisible by 2**depth."""

    def __init__(self, channels: int, width: int, depth: int):
        super().__init__()
        widths = stage_widths(width, depth)
        self.encoder = nn.Sequential(*[down(cin, cout, refine=i > 0)
                                       for i, (cin, cout) in enumerate(zip([channels, *widths], widths))])
        back = widths[::-1]
        self.decoder = nn.Sequential(*[up(cin, cout) for cin, cout in zip(back, back[1:])])
        self.head = nn.ConvTranspose2d(widths[0], channels, 4, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.head(self.decoder(self.encoder(x))))


def conv_block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SegmentationNet(nn.Module):
    """U-Net: (B, 2C, H, W) [input, repair] -> (B, 1, H, W) defect logits. With `stride` 2 its stem halves the
    resolution and the logits are upsampled back (bilinear): the U-Net works at half resolution."""

    def __init__(self, channels: int, width: int, depth: int, stride: int = 1):
        super().__init__()
        widths = stage_widths(width, depth + 1)
        self.stride = stride
        self.stem = conv_block(2 * channels, widths[0], stride)
        self.downs = nn.ModuleList(nn.Sequential(nn.MaxPool2d(2), conv_block(cin, cout))
                                   for cin, cout in zip(widths, widths[1:]))
        self.ups = nn.ModuleList(nn.ConvTranspose2d(cin, cout, 2, stride=2)
                                 for cin, cout in zip(widths[:0:-1], widths[-2::-1]))
        self.fuse = nn.ModuleList(conv_block(2 * cout, cout) for cout in widths[-2::-1])
        self.head = nn.Conv2d(widths[0], 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        skips = [self.stem(x)]  # (B, w0, H, W)
        for stage in self.downs:
            skips.append(stage(skips[-1]))  # halves H, W
        y = skips.pop()
        for up_conv, fuse in zip(self.ups, self.fuse):
            y = fuse(torch.cat([up_conv(y), skips.pop()], dim=1))
        logits = self.head(y)
        if self.stride == 1:
            return logits  # (B, 1, H, W)
        return nn.functional.interpolate(logits, scale_factor=self.stride, mode="bilinear", align_corners=False)


class Draem(nn.Module):
    """Both networks; the whole inference path from images to defect probabilities."""

    def __init__(self, channels: int, width: int, depth: int, seg_width: int, seg_depth: int, seg_stride: int = 1):
        super().__init__()
        self.repair = RepairNet(channels, width, depth)
        self.segment = SegmentationNet(channels, seg_width, seg_depth, seg_stride)

    def forward(self, x: Tensor) -> Tensor:
        """Repaired image (B, C, H, W): the model's reconstruction."""
        return self.repair(x)

    def repair_and_segment(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B, C, H, W) images -> (the repair (B, C, H, W), defect logits (B, 1, H, W))."""
        repaired = self.repair(x)
        return repaired, self.segment(torch.cat([x, repaired], dim=1))

    def defect_probability(self, x: Tensor) -> Tensor:
        """(B, C, H, W) images in [0, 1] -> (B, 1, H, W) defect probability in [0, 1]."""
        return torch.sigmoid(self.repair_and_segment(x)[1])
