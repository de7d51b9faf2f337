"""`draem`'s options. Each default is the measured choice of experiments/RESULTS.md on MTD within the
20-minute training budget on a 2-core CPU; options measured and not kept are not options."""

from dataclasses import dataclass
from typing import ClassVar

SOURCES = ("images", "texture", "both")
SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class DraemOptions:
    lightning: ClassVar[str] = "anomaly.models.draem.lightning_model:DraemModel"
    image_size: ClassVar[tuple[int, int]] = (128, 128)  # whole 128x128 images beat 128-crops of 256x256
    residual: ClassVar[str] = "segmentation"  # its own map: the segmentation network's defect probability
    smoothing: ClassVar[dict[int, float]] = {128: 0.0, 256: 1.0}  # sigma by the input's shorter side
    epochs: ClassVar[int] = 60  # without a time budget
    budget_epochs: ClassVar[int] = 700  # with one: as many as fit, at most DRAEM's 700 (anomaly.models.default_epochs)

    crop: int = 128  # side of the random square training crops (0: whole images); scoring is on whole images
    edge_crops: bool = True  # crops touch the image edges as often as the interior (false: uniform positions)
    seg_width: int = 16  # channels of the segmentation U-Net's first stage
    seg_depth: int = 4  # pooling stages of the segmentation U-Net
    seg_stride: int = 1  # 2: the segmentation U-Net at half resolution, logits upsampled (a quarter of its FLOPs)
    p_defect: float = 0.5  # fraction of training images given a synthetic defect
    p_shade: float = 0.2  # fraction of synthetic defects that are shading changes
    opacity: float = 0.3  # lowest opacity a training defect is blended in at (each drawn from [opacity, 1])
    sources: str = "both"  # defect content: "images" (other normals), "texture" (procedural) or "both"
    schedule: str = "cosine"  # learning rate: "constant" or "cosine" (annealed to 0 over the training steps)

    def __post_init__(self) -> None:
        for key, allowed in (("sources", SOURCES), ("schedule", SCHEDULES)):
            if getattr(self, key) not in allowed:
                raise ValueError(f"draem {key} must be one of {allowed}, got {getattr(self, key)!r}")
        if self.seg_stride not in (1, 2):
            raise ValueError(f"draem seg_stride must be 1 or 2, got {self.seg_stride}")
        if not 0 < self.opacity <= 1:
            raise ValueError(f"draem opacity must be in (0, 1], got {self.opacity}")

    @staticmethod
    def from_weights(state_dict: dict) -> dict[str, int]:
        """seg_depth as trained, read from the segmentation U-Net's pooling stages in a state dict, for a
        bundle that holds only the options it was given (anomaly.models.complete_options)."""
        return {"seg_depth": len({key.split(".")[3] for key in state_dict if key.startswith("net.segment.downs.")})}
