"""`draem`: repair synthetic defects, segment where input and repair disagree.

Options (`ModelConfig.options`, `anomaly train --option KEY=VALUE`), defaults in `DEFAULTS`:
  crop        side of the random square crops trained on (0 = whole images); scoring is on whole images
  edge_crops  crops touch the image edges as often as the interior (false: uniform crop positions)
  seg_width   channels of the segmentation U-Net's first stage
  seg_depth   pooling stages of the segmentation U-Net
  p_defect    fraction of training images that get a synthetic defect
  p_line      fraction of synthetic defects that are thin crack-like curves (the rest are blobs)
  p_shade     fraction of synthetic defects that are shading changes (coarse darker/brighter regions)
  opacity     the lowest opacity a training defect is blended in at (each drawn from [opacity, 1]); lower
              teaches fainter defects
  brightness  each training crop times a gain drawn from [1 - brightness, 1 + brightness] (0: off)
  flips       each training crop mirrored left-right, upside down, both or neither, equally likely (false: off)
  normalize   each image the networks see (scored, or a training or validation crop after its synthetic
              defect) scaled to this mean grey level, clipped to [0, 1] (0: off), so that a defect on a
              dark part has the contrast it would have on a bright one
  sources     defect content: "images" (other normal images), "texture" (procedural) or "both"
  schedule    learning rate: "constant" or "cosine" (annealed to 0 over the training steps)
  stem        "none", or "pool": both networks work at half the input size on each 2x2 cell's mean, maximum
              and minimum (3 channels per input channel), so that a line one pixel wide keeps its contrast, and
              the defect map is upsampled back; training defects are painted at the input size, their masks
              max-pooled for the loss
The anomaly map is the defect probability (sigmoid of the logits), smoothed like every model's map.

Validation (for choosing settings without the test split): at VALIDATIONS evenly spaced epochs, the
last among them (`validation_epochs`), the held-out normals get synthetic defects from a fixed seed and
a fixed recipe (half clean, both sources, a third curves), whatever the training options and batch size
(defects take their neighbours in a validation batch as sources, and those batches are of a fixed size,
anomaly.data.datamodule.VALIDATION_BATCH), and the model's own map is
scored against them: `val/synthetic_pixel_auroc` and `val/synthetic_image_auroc`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from anomaly.config import ModelConfig
from anomaly.models import model_options
from anomaly.models.base import ReconstructionModel
from anomaly.models.draem.loss import draem_losses
from anomaly.models.draem.torch_model import Draem
from anomaly.metrics import image_auroc, pixel_auroc
from anomaly.scoring import image_scores
from anomaly.synthetic import SOURCES, VALIDATION_SEED, synthesize

DEFAULTS = {"crop": 128, "edge_crops": True, "seg_width": 16, "seg_depth": 4, "p_defect": 0.5, "p_line": 0.0,
            "p_shade": 0.2, "opacity": 0.3, "brightness": 0.0, "flips": False, "normalize": 0.0, "sources": "both",
            "schedule": "cosine", "stem": "none"}
SCHEDULES = ("constant", "cosine")
STEMS = ("none", "pool")
VALIDATIONS = 4  # per training run; each scores whole held-out images (on MTD at 256x256: half an epoch)


def options_from_weights(state_dict: dict[str, Tensor]) -> dict[str, int]:
    """seg_depth: the segmentation U-Net's pooling stages (anomaly.models.complete_options)."""
    return {"seg_depth": len({key.split(".")[3] for key in state_dict if key.startswith("net.segment.downs.")})}


def validation_epochs(last: int) -> set[int]:
    """The 1-based epochs of a `last`-epoch run that validate: VALIDATIONS evenly spaced ones (fewer
    in a shorter run), the last among them."""
    return {-(-last * k // VALIDATIONS) for k in range(1, VALIDATIONS + 1)}


def synthetic_aurocs(maps: Tensor, masks: Tensor, reduction: str, topk: float) -> dict[str, float]:
    """Image and pixel AUROC of anomaly maps (N, 1, H, W) against synthetic-defect masks (N, 1, H, W);
    {} unless both clean and defective images are present."""
    has_defect = masks.flatten(1).any(1).numpy()
    if has_defect.all() or not has_defect.any():
        return {}
    scores = image_scores(maps, reduction, topk).numpy()
    return {"val/synthetic_image_auroc": image_auroc(has_defect, scores),
            "val/synthetic_pixel_auroc": pixel_auroc(list(masks[:, 0].numpy() > 0), list(maps[:, 0].numpy()))}


class DraemModel(ReconstructionModel):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.options = model_options(config, DEFAULTS)
        self.pooled = self.options["stem"] == "pool"  # checked below
        factor = 2 ** (max(config.depth, self.options["seg_depth"]) + self.pooled)
        if self.options["crop"] % factor:
            raise ValueError(f"draem crop {self.options['crop']} must be a multiple of {factor} "
                             f"(2**max(depth, seg_depth), twice that with stem=pool); e.g. --option "
                             f"crop={max(factor, 128 // factor * factor)}")
        if any(side % factor for side in config.image_size):
            raise ValueError(f"draem image size {config.image_size[0]}x{config.image_size[1]} must be a multiple of "
                             f"{factor} on each side (2**max(depth, seg_depth), twice that with stem=pool): the "
                             f"segmentation U-Net pools "
                             f"{self.options['seg_depth']} times; choose another --image-size or a smaller seg_depth")
        for key, allowed in (("sources", SOURCES), ("schedule", SCHEDULES), ("stem", STEMS)):
            if self.options[key] not in allowed:
                raise ValueError(f"draem {key} must be one of {allowed}, got {self.options[key]!r}")
        if not 0 <= self.options["normalize"] <= 1:
            raise ValueError(f"draem normalize must be a grey level in [0, 1] (0: off), "
                             f"got {self.options['normalize']}")
        if not 0 < self.options["opacity"] <= 1:
            raise ValueError(f"draem opacity must be in (0, 1], got {self.options['opacity']}")
        if not 0 <= self.options["brightness"] < 1:
            raise ValueError(f"draem brightness must be in [0, 1), got {self.options['brightness']}")
        self.net = Draem(config.channels * (3 if self.pooled else 1), config.width, config.depth,
                         self.options["seg_width"], self.options["seg_depth"])
        self.generator: torch.Generator | None = None
        self.validation_outputs: list[tuple[Tensor, Tensor]] = []  # (map, mask) per validation batch
        self.validation_generator = torch.Generator().manual_seed(VALIDATION_SEED)  # reset each validation

    def _generator(self, device: torch.device) -> torch.Generator:
        if self.generator is None or self.generator.device != device:
            seed = int(torch.randint(2**31, (1,)).item())  # drawn from the globally seeded RNG
            self.generator = torch.Generator(device).manual_seed(seed)
        return self.generator

    def _crop(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """A random square crop; with `edge_crops`, one touching each image edge about a quarter of the
        time (uniform positions almost never do, yet every scored image has edges, and MTD's defects
        sit at them)."""
        size, (h, w) = self.options["crop"], x.shape[-2:]
        if not size or size >= min(h, w):
            return x
        margin = size // 2 if self.options["edge_crops"] else 0

        def start(extent: int) -> int:
            drawn = torch.randint(-margin, extent - size + margin + 1, (1,), generator=generator, device=generator.device)
            return int(drawn.clamp(0, extent - size))

        top, left = start(h), start(w)
        return x[..., top:top + size, left:left + size]

    def _flip(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """With `flips`, each image mirrored left-right and upside down, each with probability 1/2."""
        if not self.options["flips"]:
            return x
        for dim in (3, 2):
            chosen = torch.rand(len(x), generator=generator, device=generator.device) < 0.5
            x = torch.where(chosen.to(x.device)[:, None, None, None], x.flip(dim), x)
        return x

    def _jitter_brightness(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """Each image times its own gain from [1 - brightness, 1 + brightness], clipped to [0, 1]."""
        spread = self.options["brightness"]
        if not spread:
            return x
        gain = 1 + spread * (2 * torch.rand(len(x), 1, 1, 1, generator=generator, device=generator.device) - 1)
        return (x * gain.to(x.dtype)).clamp(0, 1)

    def _normalize(self, x: Tensor, like: Tensor | None = None) -> Tensor:
        """With `normalize`, each image times normalize / the mean grey level of `like` (default: itself),
        clipped to [0, 1]."""
        level = self.options["normalize"]
        if not level:
            return x
        like = x if like is None else like
        return (x * (level / like.mean((1, 2, 3), keepdim=True).clamp_min(1e-3))).clamp(0, 1)

    def _as_seen(self, clean: Tensor, damaged: Tensor) -> tuple[Tensor, Tensor]:
        """(clean, damaged) as the networks see them: both scaled by the damaged image's gain."""
        return self._normalize(clean, like=damaged), self._normalize(damaged)

    def training_defects(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """A training batch as the networks see it: (clean, damaged, mask), cropped, flipped,
        brightness-jittered and given synthetic defects by the training options."""
        generator = self._generator(x.device)
        clean = self._jitter_brightness(self._flip(self._crop(x, generator), generator), generator)
        damaged, mask = synthesize(clean, generator=generator, p_defect=self.options["p_defect"],
                                   p_line=self.options["p_line"], p_shade=self.options["p_shade"],
                                   opacity=(self.options["opacity"], 1.0), sources=self.options["sources"])
        return *self._as_seen(clean, damaged), mask

    def losses(self, x: Tensor) -> dict[str, Tensor]:
        return self.defect_losses(*self.training_defects(x))

    def defect_losses(self, clean: Tensor, damaged: Tensor, mask: Tensor) -> dict[str, Tensor]:
        """The losses of both networks on a batch with synthetic defects (`training_defects`)."""
        repaired, logits = self._segment(damaged)
        return draem_losses(self._stem(clean), repaired, logits, self._stem_mask(mask))

    def _stem(self, x: Tensor) -> Tensor:
        """What the networks see of images x: x, or with stem=pool each 2x2 cell's mean, max and min."""
        return torch.cat([F.avg_pool2d(x, 2), F.max_pool2d(x, 2), -F.max_pool2d(-x, 2)], dim=1) if self.pooled else x

    def _stem_mask(self, mask: Tensor) -> Tensor:
        """The defect mask at the networks' size: a cell is defective if any of its pixels is."""
        return F.max_pool2d(mask, 2) if self.pooled else mask

    def _unstem(self, t: Tensor, size: torch.Size) -> Tensor:
        """Networks' output back at the input size `size` (H, W)."""
        return F.interpolate(t, size=size, mode="bilinear", align_corners=False) if self.pooled else t

    def forward(self, x: Tensor) -> Tensor:
        """The repaired image at the input's size (with stem=pool: the repaired cell means, upsampled)."""
        return self._unstem(self.net(self._stem(x))[:, :x.shape[1]], x.shape[-2:])

    def _segment(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Images x through both networks: (the repair, the defect logits), at the networks' size."""
        seen = self._stem(x)
        repaired = self.net(seen)
        return repaired, self.net.defect_logits(seen, repaired)

    @torch.no_grad()
    def anomaly_map(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, 1, H, W) smoothed defect probability in [0, 1]; with a residual other
        than "segmentation", the base's map of the repair network alone (e.g. "ssim")."""
        x = self._normalize(x)
        if self.config.residual != "segmentation":
            return super().anomaly_map(x)
        return self.smooth(torch.sigmoid(self._unstem(self._segment(x)[1], x.shape[-2:])))

    def on_validation_epoch_start(self) -> None:
        self.validation_generator = torch.Generator(self.device).manual_seed(VALIDATION_SEED)
        self.validation_outputs = []

    def validation_defects(self, clean: Tensor) -> tuple[Tensor, Tensor]:
        """The fixed validation recipe, whatever the training options: (damaged, mask)."""
        return synthesize(clean, generator=self.validation_generator, p_defect=0.5, p_line=1 / 3)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        if self.trainer.current_epoch + 1 not in validation_epochs(self.trainer.max_epochs):
            return
        amap, mask, losses = self.synthetic_validation(batch["image"])
        self.log_dict({f"val/{k}": v for k, v in losses.items()}, on_step=False, on_epoch=True,
                      prog_bar=True, batch_size=len(amap))
        self.validation_outputs.append((amap.cpu(), mask.cpu()))

    def synthetic_validation(self, clean: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """The validation recipe on a batch of held-out normals: (the model's smoothed map, the synthetic
        masks, the losses). Call `on_validation_epoch_start` first to restart the fixed defects."""
        damaged, mask = self.validation_defects(clean)
        clean, damaged = self._as_seen(clean, damaged)
        repaired, logits = self._segment(damaged)
        amap = self.smooth(torch.sigmoid(self._unstem(logits, damaged.shape[-2:]).float()))  # float: bf16 training
        return amap, mask, draem_losses(self._stem(clean), repaired, logits, self._stem_mask(mask))

    def on_validation_epoch_end(self) -> None:
        if not self.validation_outputs:
            return
        maps, masks = (torch.cat(t) for t in zip(*self.validation_outputs))
        self.validation_outputs = []
        self.log_dict(synthetic_aurocs(maps, masks, self.config.score_reduction, self.config.topk))

    def configure_optimizers(self):
        optimiser = torch.optim.Adam(self.parameters(), lr=self.config.lr)
        if self.options["schedule"] == "constant" or self._trainer is None:  # no Trainer: no step count
            return optimiser
        steps = self.trainer.estimated_stepping_batches
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(1, int(steps)))
        return {"optimizer": optimiser, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
