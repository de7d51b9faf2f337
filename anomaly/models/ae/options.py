"""`ae` and `ssim-ae`: one network, an L2 or an SSIM loss (Bergmann et al. 2019, doi:10.5220/0007364503720380);
no options of their own."""

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class AutoencoderOptions:
    lightning: ClassVar[str] = "anomaly.models.ae.lightning_model:AutoencoderModel"
    image_size: ClassVar[tuple[int, int]] = (256, 256)
    residual: ClassVar[str] = "l2"
    smoothing: ClassVar[dict[int, float]] = {256: 4.0}  # sigma by the input's shorter side (anomaly.models)
    epochs: ClassVar[int] = 30


@dataclass(frozen=True)
class SSIMAutoencoderOptions:
    lightning: ClassVar[str] = "anomaly.models.ae.lightning_model:AutoencoderModel"
    image_size: ClassVar[tuple[int, int]] = (256, 256)
    residual: ClassVar[str] = "ssim"
    smoothing: ClassVar[dict[int, float]] = {256: 4.0}
    epochs: ClassVar[int] = 30
