"""`diffusion`'s options: a denoising diffusion model trained on normal images, scored by partial noising and
a few deterministic denoising steps (AnoDDPM, Wyatt et al. CVPR-W 2022, doi:10.1109/CVPRW56347.2022.00074;
DDIM steps, Song et al. ICLR 2021, arXiv:2010.02502)."""

from dataclasses import dataclass
from typing import ClassVar

NOISES = ("gaussian", "pyramid")


@dataclass(frozen=True)
class DiffusionOptions:
    lightning: ClassVar[str] = "anomaly.models.diffusion.lightning_model:DiffusionModel"
    image_size: ClassVar[tuple[int, int]] = (128, 128)
    residual: ClassVar[str] = "msgms"  # its own map: 1 - MSGMS of input and denoised image (as inpaint's)
    smoothing: ClassVar[dict[int, float]] = {128: 1.0}  # sigma by the input's shorter side
    epochs: ClassVar[int] = 12  # about 29 minutes on one busy core of this CPU at 128x128 (experiments/RESULTS.md)

    timesteps: int = 1000  # T of the forward process (linear betas 1e-4 .. 0.02 over T, Ho et al. 2020)
    train_level: int = 500  # training steps are drawn uniformly from [1, train_level]; scoring needs <= noise_level
    noise_level: int = 250  # step t0 a scored image is noised to (AnoDDPM: 250 of 1000)
    denoise_steps: int = 2  # deterministic (DDIM, eta 0) steps from t0 back to a clean image; 1: one x0 prediction
    noise: str = "pyramid"  # "gaussian" or "pyramid": Gaussian noise summed over octaves (low frequencies, as
    #                         AnoDDPM's simplex noise: large smooth defects are erased too)
    noise_seed: int = 0  # seed of the scoring noise (the same for every image: deterministic, exportable)

    def __post_init__(self) -> None:
        if self.noise not in NOISES:
            raise ValueError(f"diffusion noise must be one of {NOISES}, got {self.noise!r}")
        if not 2 <= self.timesteps <= 10_000:
            raise ValueError(f"diffusion timesteps must be in [2, 10000], got {self.timesteps}")
        if not 1 <= self.noise_level <= self.timesteps:
            raise ValueError(f"diffusion noise_level must be in [1, timesteps={self.timesteps}], got {self.noise_level}")
        if not self.noise_level <= self.train_level <= self.timesteps:
            raise ValueError(f"diffusion train_level must be in [noise_level={self.noise_level}, timesteps="
                             f"{self.timesteps}], got {self.train_level}")
        if not 1 <= self.denoise_steps <= self.noise_level:
            raise ValueError(f"diffusion denoise_steps must be in [1, noise_level={self.noise_level}], "
                             f"got {self.denoise_steps}")
