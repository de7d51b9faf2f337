"""`dae`'s options: the corruption it learns to undo and its training loss."""

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class DAEOptions:
    lightning: ClassVar[str] = "anomaly.models.dae.lightning_model:DenoisingAutoencoderModel"
    image_size: ClassVar[tuple[int, int]] = (256, 256)
    residual: ClassVar[str] = "ssim"
    smoothing: ClassVar[dict[int, float]] = {256: 4.0}
    epochs: ClassVar[int] = 30

    noise_std: float = 0.1  # std of the additive Gaussian noise (images in [0, 1]); 0: off
    salt_pepper: float = 0.02  # fraction of pixels set to 0 or 1; 0: off
    loss: str = "ssim"  # training loss: "ssim" (as ssim-ae) or "l2" (as ae); the map is --residual

    def __post_init__(self) -> None:
        if self.noise_std < 0 or not 0 <= self.salt_pepper <= 1 or self.loss not in ("l2", "ssim"):
            raise ValueError(f"dae options: expected noise_std >= 0, salt_pepper in [0, 1] and loss 'l2' or "
                             f"'ssim', got {self.noise_std}, {self.salt_pepper} and {self.loss!r}")
