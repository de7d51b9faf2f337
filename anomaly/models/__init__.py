"""Model registry: `--model` name -> its options dataclass (`anomaly/models/<name>/options.py`).

Each options dataclass is the whole truth about its model's settings: its fields are the model's own
hyperparameters with their defaults (`--option KEY=VALUE`), its class variables the model's defaults
for the shared settings (`image_size`, the map `residual`, `smoothing` by input size, `epochs`, draem's
`budget_epochs`) and the LightningModule that trains it (`lightning`, imported only when a model is
built). This module imports neither torch nor anomaly.config.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import TYPE_CHECKING, Any

from anomaly.checks import like, one_of
from anomaly.models.ae.options import AutoencoderOptions, SSIMAutoencoderOptions
from anomaly.models.dae.options import DAEOptions
from anomaly.models.diffusion.options import DiffusionOptions
from anomaly.models.draem.options import DraemOptions
from anomaly.models.ganomaly.options import GanomalyOptions
from anomaly.models.inpaint.options import InpaintOptions
from anomaly.models.twodec.options import TwoDecoderOptions
from anomaly.models.vae.options import VAEOptions

if TYPE_CHECKING:
    from anomaly.config import ModelConfig

OPTIONS: dict[str, type] = {
    "ae": AutoencoderOptions, "ssim-ae": SSIMAutoencoderOptions, "vae": VAEOptions, "dae": DAEOptions,
    "inpaint": InpaintOptions, "twodec": TwoDecoderOptions, "ganomaly": GanomalyOptions, "draem": DraemOptions,
    "diffusion": DiffusionOptions,
}
# Options that a bundle's config.json may hold but no model takes: each only at the one value that matches
# what the model computes (measured and not kept: experiments/RESULTS.md).
RETIRED_OPTIONS = {"draem": {"p_line": 0.0, "brightness": 0.0, "flips": False, "normalize": 0.0, "stem": "none"}}


def options_class(name: str) -> type:
    """The options dataclass of model `name`; ValueError naming the known models otherwise."""
    return OPTIONS[one_of("name", name, sorted(OPTIONS))]


def default_smoothing(name: str, image_size: tuple[int, int]) -> float:
    """The sigma measured at the side nearest the input's shorter side (halfway: the larger side's)."""
    chosen = options_class(name).smoothing
    side = min(image_size)
    return chosen[min(chosen, key=lambda measured: (abs(measured - side), -measured))]


def default_epochs(name: str, time_budget: float) -> int:
    """The epochs `--epochs 0` asks for: the model's `budget_epochs` under a time budget where it has one
    (the budget then decides how many of them run), its `epochs` otherwise."""
    chosen = options_class(name)
    return (getattr(chosen, "budget_epochs", 0) if time_budget else 0) or chosen.epochs


def option_defaults(name: str) -> dict[str, Any]:
    """Model `name`'s own options at their defaults, as JSON values."""
    return dataclasses.asdict(options_class(name)())


def model_options(config: ModelConfig) -> Any:
    """`config.options` over the model's defaults, as its options dataclass; ValueError naming an option it
    does not take (listing those it does), a value not of its default's JSON type (anomaly.checks.like) or
    one outside the model's rule (the dataclass's own check)."""
    defaults = option_defaults(config.name)
    if unknown := set(config.options) - set(defaults):
        raise ValueError(f"unknown option(s) {sorted(unknown)} for model {config.name!r}; "
                         f"it takes {', '.join(f'{k}={v!r}' for k, v in defaults.items()) or 'none'}")
    for key, value in config.options.items():
        like(f"options.{key}", value, defaults[key])
    return options_class(config.name)(**{**defaults, **config.options})


def check_model_config(config: ModelConfig) -> None:
    """The rules a model sets on its config: a known name, a residual it computes (anomaly.scoring's or
    its own) and options it takes (`model_options`)."""
    from anomaly.scoring import RESIDUALS

    one_of("residual", config.residual, sorted({*RESIDUALS, options_class(config.name).residual}))
    model_options(config)


def resolve_options(config: ModelConfig) -> ModelConfig:
    """`config` with every option its model takes, unset ones at their defaults: what a bundle saves, so that
    a trained model keeps its settings whatever the defaults become."""
    return dataclasses.replace(config, options=dataclasses.asdict(model_options(config)))


def without_retired(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """Saved `options` of model `name` without its RETIRED_OPTIONS; ValueError for one at a value other than
    the one the model computes."""
    options = dict(options)
    for key, neutral in RETIRED_OPTIONS.get(name, {}).items():
        if key in options and (value := options.pop(key)) != neutral:
            raise ValueError(f"{name} {key} must be one of [{neutral!r}] in a saved config (the model takes no "
                             f"{key} option and computes only that), got {value!r}")
    return options


def complete_options(config: ModelConfig, state_dict: dict[str, Any]) -> ModelConfig:
    """A bundle's `config` with the options that vary with its weights filled in where it lacks them: a bundle
    that holds only the options it was given is read as trained (draem's seg_depth: `from_weights`)."""
    from_weights = getattr(options_class(config.name), "from_weights", None)
    if from_weights is None:
        return config
    return dataclasses.replace(config, options={**from_weights(state_dict), **config.options})


def build_model(config: ModelConfig):
    """A fresh (untrained) LightningModule for `config`; raises ValueError for an unknown name."""
    module_name, class_name = options_class(config.name).lightning.split(":")
    return getattr(importlib.import_module(module_name), class_name)(config)


def architecture(config: ModelConfig) -> dict[str, Any]:
    """The state dict the model of `config` has: meta tensors (names, shapes, dtypes; no memory), so a
    bundle's weights are checked before a byte is allocated. Raises the model's own ValueError for a
    config it cannot build."""
    import torch

    with torch.device("meta"):
        return build_model(config).state_dict()
