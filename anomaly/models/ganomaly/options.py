"""`ganomaly`'s options, the paper's weights (Akcay et al. ACCV 2018, arXiv:1805.06725)."""

from dataclasses import dataclass
from typing import ClassVar

from anomaly.models.ae.options import check_norm, norm_from_weights


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
    norm: str = "batch"  # BatchNorm in every network, as the paper's DCGAN ("none": they collapse, RESULTS.md)

    def __post_init__(self) -> None:
        if min(self.adv_weight, self.con_weight, self.enc_weight, self.latent_weight) < 0:
            raise ValueError(f"ganomaly weights must be >= 0, got {self}")
        check_norm("ganomaly", self.norm)

    from_weights = staticmethod(norm_from_weights)
