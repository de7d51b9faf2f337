"""`ganomaly`'s options, the paper's weights (Akcay et al. ACCV 2018, arXiv:1805.06725)."""

from dataclasses import astuple, dataclass
from typing import ClassVar


@dataclass(frozen=True)
class GanomalyOptions:
    lightning: ClassVar[str] = "anomaly.models.ganomaly.lightning_model:GanomalyModel"
    image_size: ClassVar[tuple[int, int]] = (256, 256)
    residual: ClassVar[str] = "l2"
    smoothing: ClassVar[dict[int, float]] = {256: 4.0}
    epochs: ClassVar[int] = 30

    adv_weight: float = 1.0  # feature-matching adversarial loss
    con_weight: float = 50.0  # L1 reconstruction loss
    enc_weight: float = 1.0  # latent consistency loss
    # weight of the latent error in the image score (large: the paper's score). 0: on MTD the latent error tracks
    # image brightness and ranks defective images below normal ones (experiments/RESULTS.md)
    latent_weight: float = 0.0

    def __post_init__(self) -> None:
        if min(astuple(self)) < 0:
            raise ValueError(f"ganomaly options must be >= 0, got {self}")
