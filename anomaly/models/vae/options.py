"""`vae`: no options of its own (its KL weight is ModelConfig.beta)."""

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class VAEOptions:
    lightning: ClassVar[str] = "anomaly.models.vae.lightning_model:VAEModel"
    image_size: ClassVar[tuple[int, int]] = (256, 256)
    residual: ClassVar[str] = "l2"
    smoothing: ClassVar[dict[int, float]] = {256: 4.0}
    epochs: ClassVar[int] = 30
