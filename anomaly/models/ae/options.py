"""`ae` and `ssim-ae`: one network, an L2 or an SSIM loss (Bergmann et al. 2019, doi:10.5220/0007364503720380);
no options of their own."""

from dataclasses import dataclass
from typing import ClassVar

NORMS = ("none", "batch")  # what follows the shared Encoder/Decoder's convolutions (anomaly.models.ae.torch_model)


def check_norm(model: str, norm: str) -> None:
    if norm not in NORMS:
        raise ValueError(f"{model} option norm must be one of {NORMS}, got {norm!r}")


def norm_from_weights(state_dict: dict) -> dict[str, str]:
    """`norm` as trained, for a bundle that holds only the options it was given (anomaly.models.complete_options):
    "batch" where the weights hold BatchNorm statistics, "none" (the network before the option) otherwise."""
    return {"norm": "batch" if any(key.endswith(".running_mean") for key in state_dict) else "none"}


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
