"""Training configuration: one dataclass that YAML files and CLI options override.

`ModelConfig` is the part a trained model needs to be rebuilt (it is saved in the bundle);
`TrainConfig` adds what only training needs. A config read from a file is checked field by field
(`ModelConfig.from_dict`); the caps below bound what a model file may ask for, and training
refuses what a bundle could not load. The defaults that depend on the model (input size, map, smoothing,
epochs, its own options) are its options dataclass's (anomaly.models, which never imports this module).
Caps:

    image_size       each side in [1, MAX_SIDE] = [1, 4096], height * width <= MAX_PIXELS = 1024 * 1024
                     (larger images are resized to it, or with `scale` scored in tiles of it: a larger
                     input never needs a larger model)
    scale            None, or (0, 8]: images resized by this factor keeping their aspect (1.0: their own
                     size), trained on random tiles of image_size and scored tile by tile (anomaly.tiling)
    width            [1, 512]      channels of the first stage
    depth            [1, 8]        stride-2 stages
    latent_dim       [1, 8192]
    smoothing_sigma  [0, 64]       model pixels
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from anomaly.checks import invalid, number, one_of
from anomaly.models import OPTIONS, check_model_config, default_smoothing, options_class, without_retired

PRECISIONS = ("auto", "32", "bf16-mixed")
STRATEGIES = ("auto", "ddp")  # anomaly.training: DDP re-runs the command per rank, rank 0 alone calibrates and logs
REDUCTIONS = ("max", "topk")
MAX_SIDE, MAX_PIXELS = 4096, 1024 * 1024
MAX_SMOOTHING = 64
MAX_SCALE = 8.0
AUTO_SCALE = "auto"  # TrainConfig.scale: chosen from the training images (anomaly.tiling.scale_for)
MAX_TIME_BUDGET = 7 * 24 * 60.0  # minutes: a week
CAPS = {"width": 512, "depth": 8, "latent_dim": 8192}


def check_image_size(field: str, size: Any) -> tuple[int, int]:
    """`size` as (height, width) if it is two integers within the caps; ValueError naming `field`."""
    rule = f"[height, width], two integers in [1, {MAX_SIDE}] with height * width <= {MAX_PIXELS} (1024x1024)"
    if (not isinstance(size, (list, tuple)) or len(size) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= MAX_SIDE for s in size)
            or size[0] * size[1] > MAX_PIXELS):
        raise invalid(field, rule, list(size) if isinstance(size, tuple) else size)
    return tuple(size)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture, preprocessing and scoring of one model; JSON-serialisable."""

    name: str = "draem"
    image_size: tuple[int, int] | None = None  # (height, width) the network sees; None = the model's
    scale: float | None = None  # None: every image resized to image_size; a factor: resized by it, aspect kept,
    #                             and scored in tiles of image_size (anomaly.tiling)
    channels: int = 1
    width: int = 16  # channels of the first stage; doubles per stage, capped at 8 * width
    depth: int = 4  # number of stride-2 stages; image_size must be divisible by 2**depth
    latent_dim: int = 128
    beta: float = 1.0  # KL weight (vae only)
    residual: str = ""  # anomaly map: "l2", "ssim", "ssim+l2" (anomaly.scoring) or a model's own; "" = its default
    smoothing_sigma: float | None = None  # Gaussian smoothing of the map in model pixels, 0 = none; None = the model's
    score_reduction: str = "max"  # image score from the smoothed map: "max" or "topk"
    topk: float = 0.01  # fraction of pixels averaged when score_reduction == "topk"
    lr: float = 1e-3
    options: dict[str, Any] = field(default_factory=dict)  # model-specific hyperparameters (noise, masks...)

    def __post_init__(self) -> None:
        """Unset image_size, residual and smoothing_sigma take the model's defaults (its options dataclass)."""
        spec = options_class(self.name)
        if self.image_size is None:
            object.__setattr__(self, "image_size", spec.image_size)
        if not self.residual:
            object.__setattr__(self, "residual", spec.residual)
        if self.smoothing_sigma is None:
            object.__setattr__(self, "smoothing_sigma", default_smoothing(self.name, self.image_size))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Any) -> ModelConfig:
        """A config as saved in a bundle or export, checked (`check`); a missing field takes its
        default, options no model takes any more are dropped (anomaly.models.without_retired), and an
        older bundle's missing options are read from its weights (anomaly.models.complete_options)."""
        if not isinstance(values, dict):
            raise invalid("the model config", "a JSON object", values)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown model config keys {sorted(unknown)}; expected a subset of {sorted(known)}")
        values = dict(values)
        for name in ("name", "residual"):  # read before the check: "" and None mean the model's default
            if not isinstance(values.get(name, ""), str):
                raise invalid(name, "a string", values[name])
        if isinstance(values.get("options"), dict):
            values["options"] = without_retired(values.get("name", cls.name), values["options"])
        if isinstance(values.get("image_size"), list):
            values["image_size"] = tuple(values["image_size"])
        return cls(**values).check()

    def check(self) -> ModelConfig:
        """Self, if every field is within its rule (caps in the module docstring; the model's own
        rules in anomaly.models.check_model_config); else ValueError naming the first field that is not."""
        if not isinstance(self.options, dict):
            raise invalid("options", "a JSON object", self.options)
        check_model_config(self)  # name first, then residual and options
        if not isinstance(self.channels, int) or isinstance(self.channels, bool) or self.channels not in (1, 3):
            raise invalid("channels", "1 (grey) or 3 (RGB)", self.channels)
        for name, cap in CAPS.items():
            number(name, getattr(self, name), f"[1, {cap}]", integer=True)
        height, width = check_image_size("image_size", self.image_size)
        if self.scale is not None:
            number("scale", self.scale, f"(0, {MAX_SCALE}]")
        if height % 2**self.depth or width % 2**self.depth:
            raise invalid("image_size", f"a multiple of 2**depth = {2**self.depth} on each side", list(self.image_size))
        number("smoothing_sigma", self.smoothing_sigma, f"[0, {MAX_SMOOTHING}]")
        one_of("score_reduction", self.score_reduction, REDUCTIONS)
        number("topk", self.topk, "(0, 1]")
        number("beta", self.beta, "[0, inf)")
        number("lr", self.lr, "(0, inf)")
        return self


def described(default: Any, help: str) -> Any:
    """A TrainConfig field: its default (a callable: a default factory) and the help `anomaly train` shows."""
    if callable(default):
        return field(default_factory=default, metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class TrainConfig:
    """Everything `anomaly train` takes: each field is a YAML key and a CLI option (`--image-size` for
    image_size; options as repeated `--option KEY=VALUE`), its help the field's `help` metadata. Defaults
    train on the bundled sample; "", 0 and None mean the model's own (its options dataclass)."""

    model: str = described(ModelConfig.name, "the model (docs/models.md): " + " | ".join(OPTIONS))
    data: str = described("", "manifest CSV, MVTec-style folder or folder of normal images (default: the bundled "
                              "MTD sample, trained with its demo settings anomaly/sample/demo.yaml unless --config "
                              "or another --model is given)")
    out: str = described("runs/latest", "bundle folder to write")
    image_size: tuple[int, int] | None = described(None, "model input size: 256 or HxW such as 256x640 (default: "
                                                         "the model's, docs/models.md)")
    scale: str | float | None = described(None, "resize images by this factor keeping their aspect (1.0: their own "
                                                "size), train on random crops of --image-size and score tile by "
                                                "tile; auto: the factor that brings the training images' median "
                                                "short side to the crop's; unset: every image resized to "
                                                "--image-size (docs/models.md)")
    channels: int = described(0, "1 or 3; 0 guesses from the data (1 for grey images, else 3)")
    epochs: int = described(0, "0: the model's default (docs/models.md)")
    time_budget: float = described(20.0, "minutes from the start of `anomaly train` to the calibrated bundle: when "
                                         "the epochs would take longer (timed as they run), fewer are trained and "
                                         "the learning-rate schedule fits them; 0: no limit")
    batch_size: int = described(16, "images per training step (per process with --devices or --num-nodes > 1)")
    seed: int = described(0, "random seed: weights, held-out normals, augmentations")
    accelerator: str = described("auto", "auto | cpu | gpu")
    precision: str = described("auto", "32 | bf16-mixed | auto (bf16-mixed on a recent GPU or a CPU with AMX)")
    val_fraction: float = described(0.2, "normal images held out for validation and calibration")
    num_workers: int = described(0, "data-loading worker processes")
    devices: int = described(1, "training processes per node, one per device (GPUs; with --accelerator cpu, CPU "
                                "processes); > 1: Lightning DDP, docs/deploy.md")
    num_nodes: int = described(1, "machines taking part in a DDP training, each running the same command with its "
                                  "NODE_RANK, MASTER_ADDR, MASTER_PORT and WORLD_SIZE set (docs/deploy.md)")
    strategy: str = described("auto", "auto | ddp: Lightning's distributed strategy (auto: DDP when --devices or "
                                      "--num-nodes > 1)")
    # the model's settings: ModelConfig's fields, at its defaults
    width: int = described(ModelConfig.width, "channels of the first stage")
    depth: int = described(ModelConfig.depth, "number of stride-2 stages")
    latent_dim: int = described(ModelConfig.latent_dim, "size of the bottleneck code")
    beta: float = described(ModelConfig.beta, "KL weight (vae)")
    residual: str = described(ModelConfig.residual, "anomaly map: l2 | ssim | ssim+l2 (inpaint and diffusion also msgms; draem "
                                                    "segmentation, or another for its repair net alone) (default: "
                                                    "the model's, docs/models.md)")
    smoothing_sigma: float | None = described(ModelConfig.smoothing_sigma, "Gaussian smoothing of the map in model "
                                              "pixels, 0 = off (default: the model's, docs/models.md)")
    score_reduction: str = described(ModelConfig.score_reduction, "max | topk")
    topk: float = described(ModelConfig.topk, "fraction of pixels averaged by --score-reduction topk")
    lr: float = described(ModelConfig.lr, "learning rate")
    options: dict[str, Any] = described(dict, "a model's own hyperparameter KEY=VALUE (YAML value), repeatable "
                                              "(`--option`; in YAML an `options:` mapping)")
    fpr: float = described(0.01, "target false-alarm rate of the image threshold on normal images")
    pixel_fpr: float = described(0.001, "target false-positive rate of the pixel threshold on normal pixels")
    experiment: str = described("", "MLflow experiment (default: the dataset's name)")
    register_as: str = described("", "registered model name (default: the experiment)")
    promote: bool = described(False, "move the 'champion' alias to this version (without it: only if it beats the "
                                     "champion's test image AUROC on the same data, or without labelled test images "
                                     "its painted-defect pixel AUROC)")
    tracking: bool = described(True, "log the run and register the model in MLflow")
    evaluate: bool = described(True, "score the test split after training (when there is one)")
    extra: dict[str, Any] = field(default_factory=dict)  # free-form tags (YAML only)

    def __post_init__(self) -> None:
        """Reject values that would otherwise fail only after training, naming the option."""
        for name in ("fpr", "pixel_fpr", "val_fraction"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise ValueError(f"{name.replace('_', '-')} must be in (0, 1), got {value}")
        if not 0 <= self.time_budget <= MAX_TIME_BUDGET:
            raise ValueError(f"time-budget must be in [0, {MAX_TIME_BUDGET}] minutes (0: no limit), got {self.time_budget}")
        if self.epochs < 0:
            raise ValueError(f"epochs must be >= 1 (or 0 for the model's default), got {self.epochs}")
        for name in ("batch_size", "width", "depth", "latent_dim", "devices", "num_nodes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.channels not in (0, 1, 3):
            raise ValueError(f"channels must be 1, 3 or 0 (guess from the data), got {self.channels}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        for name, cap in CAPS.items():
            if getattr(self, name) > cap:
                raise ValueError(f"{name.replace('_', '-')} must be <= {cap}, got {getattr(self, name)}")
        if self.image_size is not None:
            check_image_size("image-size", self.image_size)
        if self.scale is not None and self.scale != AUTO_SCALE:
            number("scale", self.scale, f"(0, {MAX_SCALE}]")
        if self.smoothing_sigma is not None and self.smoothing_sigma < 0:
            raise ValueError(f"smoothing-sigma must be >= 0 (0: no smoothing), got {self.smoothing_sigma}")
        if self.smoothing_sigma is not None and self.smoothing_sigma > MAX_SMOOTHING:
            raise ValueError(f"smoothing-sigma must be <= {MAX_SMOOTHING}, got {self.smoothing_sigma}")
        if self.score_reduction not in REDUCTIONS:
            raise ValueError(f"score-reduction must be 'max' or 'topk', got {self.score_reduction!r}")
        if not 0 < self.topk <= 1:
            raise ValueError(f"topk must be in (0, 1], got {self.topk}")

    def model_config(self, channels: int) -> ModelConfig:
        """The ModelConfig these settings describe, for images of `channels` channels."""
        shared = {f.name for f in dataclasses.fields(ModelConfig)} - {"name", "channels", "options"}
        return ModelConfig(name=self.model, channels=channels, options=dict(self.options),
                           **{name: getattr(self, name) for name in shared})

    def replace(self, **overrides: Any) -> TrainConfig:
        """A copy with the given fields replaced; None values are ignored (unset CLI options)."""
        overrides = {k: v for k, v in overrides.items() if v is not None}
        known = {f.name for f in dataclasses.fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}; expected a subset of {sorted(known)}")
        if "image_size" in overrides:
            from anomaly.data import parse_image_size

            overrides["image_size"] = parse_image_size(overrides["image_size"])
        if isinstance(overrides.get("scale"), str) and overrides["scale"] != AUTO_SCALE:
            try:
                overrides["scale"] = float(overrides["scale"])
            except ValueError:
                raise invalid("scale", f"a number in (0, {MAX_SCALE}] or {AUTO_SCALE!r}", overrides["scale"]) from None
        return dataclasses.replace(self, **overrides)

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        values = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a mapping of config keys, got {type(values).__name__}")
        return cls().replace(**{k.replace("-", "_"): v for k, v in values.items()})
