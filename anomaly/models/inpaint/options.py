"""`inpaint`'s options, RIAD's defaults (Zavrtanik et al. 2021, doi:10.1016/j.patcog.2020.107706)."""

from dataclasses import dataclass, field
from typing import ClassVar


@dataclass(frozen=True)
class InpaintOptions:
    lightning: ClassVar[str] = "anomaly.models.inpaint.lightning_model:InpaintingModel"
    image_size: ClassVar[tuple[int, int]] = (256, 256)
    residual: ClassVar[str] = "msgms"  # its own map: 1 - multi-scale gradient-magnitude similarity
    smoothing: ClassVar[dict[int, float]] = {256: 4.0}
    epochs: ClassVar[int] = 30

    mask_sizes: list[int] = field(default_factory=lambda: [2, 4, 8, 16])  # grid cell sizes in model pixels
    n_masks: int = 3  # disjoint masks per size (each pixel hidden in exactly one)
    msgms_scales: int = 4  # scales of MSGMS in the loss and the map
    ssim_weight: float = 1.0  # lambda_S of the loss
    msgms_weight: float = 1.0  # lambda_G of the loss
    mask_seed: int = 0  # seed of the fixed scoring masks

    def __post_init__(self) -> None:
        if not self.mask_sizes or min(self.mask_sizes) < 1 or self.n_masks < 2:
            raise ValueError(f"inpaint options: expected mask_sizes a non-empty list of positive cell sizes "
                             f"and n_masks >= 2, got {self.mask_sizes!r} and {self.n_masks!r}")
