"""`twodec`'s options (USAD, Audibert et al. KDD 2020, doi:10.1145/3394486.3403392)."""

from dataclasses import dataclass, field
from typing import ClassVar


@dataclass(frozen=True)
class TwoDecoderOptions:
    lightning: ClassVar[str] = "anomaly.models.twodec.lightning_model:TwoDecoderModel"
    image_size: ClassVar[tuple[int, int]] = (256, 256)
    residual: ClassVar[str] = "l2"
    smoothing: ClassVar[dict[int, float]] = {256: 4.0}
    epochs: ClassVar[int] = 30

    # [alpha, beta] of the map (USAD's score). beta 0: on MTD decoder 2 collapses to a black output under
    # USAD's adversarial schedule, so its term is the squared brightness of the input (experiments/RESULTS.md)
    score_weights: list[float] = field(default_factory=lambda: [1.0, 0.0])

    def __post_init__(self) -> None:
        if len(self.score_weights) != 2 or min(self.score_weights) < 0 or sum(self.score_weights) <= 0:
            raise ValueError(f"twodec option score_weights: expected [alpha, beta], both >= 0, not both 0, "
                             f"got {self.score_weights!r}")
