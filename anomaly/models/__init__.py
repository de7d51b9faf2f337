"""Model registry: `--model` name -> LightningModule class and its default anomaly map."""

from __future__ import annotations

import dataclasses
from typing import Any

from anomaly.checks import like, one_of
from anomaly.config import ModelConfig

# Importing the classes lazily keeps `import anomaly.config` free of torch/lightning.
MODEL_CLASSES = {
    "ae": "anomaly.models.ae.lightning_model:AutoencoderModel",
    "ssim-ae": "anomaly.models.ae.lightning_model:AutoencoderModel",
    "vae": "anomaly.models.vae.lightning_model:VAEModel",
    "dae": "anomaly.models.dae.lightning_model:DenoisingAutoencoderModel",
    "inpaint": "anomaly.models.inpaint.lightning_model:InpaintingModel",
    "twodec": "anomaly.models.twodec.lightning_model:TwoDecoderModel",
    "ganomaly": "anomaly.models.ganomaly.lightning_model:GanomalyModel",
    "draem": "anomaly.models.draem.lightning_model:DraemModel",
}
# "segmentation" is draem's own map (defect probability from its segmentation network).
# "msgms" is inpaint's own map (multi-scale gradient-magnitude similarity, anomaly.scoring.msgms_map).
DEFAULT_RESIDUALS = {"ae": "l2", "ssim-ae": "ssim", "vae": "l2", "dae": "ssim", "inpaint": "msgms",
                     "twodec": "l2", "ganomaly": "l2", "draem": "segmentation"}
# Epochs when none are given: draem's chosen on its synthetic validation within the 20-minute budget
# on MTD on a 2-core CPU (experiments/RESULTS.md, accuracy section); 30 for the others.
DEFAULT_EPOCHS = {"draem": 60}


# Map smoothing (Gaussian sigma, model pixels) when none is given, by the input's shorter side: draem's
# chosen on its drawn and thin validation with the same weights, none at 128 and 1 at 256 (experiments/
# RESULTS.md, accuracy-scoring-128 and accuracy-scoring-256 sections); 4 for the others.
DEFAULT_SMOOTHING = {"draem": {128: 0.0, 256: 1.0}}

# Input size (height, width) when none is given: draem's chosen on its drawn validation within the same
# training budget (whole 128x128 images cost a step what 128-crops of 256x256 do; experiments/RESULTS.md,
# accuracy section); 256x256 for the others.
DEFAULT_IMAGE_SIZES = {"draem": (128, 128)}


def default_epochs(name: str) -> int:
    return DEFAULT_EPOCHS.get(name, 30)


def default_smoothing(name: str, image_size: tuple[int, int]) -> float:
    """The sigma chosen at the measured side nearest the input's shorter side (halfway: the larger side's)."""
    chosen = DEFAULT_SMOOTHING.get(name, {256: 4.0})
    side = min(image_size)
    return chosen[min(chosen, key=lambda measured: (abs(measured - side), -measured))]


def default_image_size(name: str) -> tuple[int, int]:
    return DEFAULT_IMAGE_SIZES.get(name, (256, 256))


def _model_module_and_class(name: str) -> tuple[Any, str]:
    if name not in MODEL_CLASSES:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(MODEL_CLASSES)}")
    import importlib

    module_name, class_name = MODEL_CLASSES[name].split(":")
    return importlib.import_module(module_name), class_name


def build_model(config: ModelConfig):
    """A fresh (untrained) model for `config`; raises ValueError for an unknown name."""
    module, class_name = _model_module_and_class(config.name)
    return getattr(module, class_name)(config)


def check_model_config(config: ModelConfig) -> None:
    """The rules a model sets on its config: a known name, a residual it computes (anomaly.scoring's
    or its own default) and options it takes, each of its default's type (`model_options`)."""
    from anomaly.scoring import RESIDUALS

    one_of("name", config.name, sorted(MODEL_CLASSES))
    one_of("residual", config.residual, sorted({*RESIDUALS, DEFAULT_RESIDUALS[config.name]}))
    model_options(config, getattr(_model_module_and_class(config.name)[0], "DEFAULTS", {}))


def architecture(config: ModelConfig) -> dict[str, Any]:
    """The state dict the model of `config` has: meta tensors (names, shapes, dtypes; no memory), so a
    bundle's weights are checked before a byte is allocated. Raises the model's own ValueError for a
    config it cannot build."""
    import torch

    with torch.device("meta"):
        return build_model(config).state_dict()


def resolve_options(config: ModelConfig) -> ModelConfig:
    """`config` with every option its model takes, unset ones at their defaults: what a bundle saves,
    so that a trained model keeps its settings when a default changes later."""
    defaults = getattr(_model_module_and_class(config.name)[0], "DEFAULTS", {})
    return dataclasses.replace(config, options=model_options(config, defaults)) if defaults else config


def complete_options(config: ModelConfig, state_dict: dict[str, Any]) -> ModelConfig:
    """`config` with the options its weights determine filled in where it lacks them: a bundle that holds only
    the options it was given is read by the default in force when it was trained, which its weights record
    (draem's seg_depth); the model module's `options_from_weights(state_dict)` reads them."""
    from_weights = getattr(_model_module_and_class(config.name)[0], "options_from_weights", None)
    if from_weights is None:
        return config
    return dataclasses.replace(config, options={**from_weights(state_dict), **config.options})


def model_options(config: ModelConfig, defaults: dict[str, Any]) -> dict[str, Any]:
    """`config.options` over a model's `defaults`; raises ValueError naming an option it does not know
    or one whose value is not of its default's type (anomaly.checks.like)."""
    unknown = set(config.options) - set(defaults)
    if unknown:
        raise ValueError(f"unknown option(s) {sorted(unknown)} for model {config.name!r}; "
                         f"it takes {', '.join(f'{k}={v!r}' for k, v in defaults.items()) or 'none'}")
    for key, value in config.options.items():
        like(f"options.{key}", value, defaults[key])
    return {**defaults, **config.options}
