"""Model registry: `--model` name -> LightningModule class and its default anomaly map."""

from __future__ import annotations

from anomaly.config import ModelConfig

# Importing the classes lazily keeps `import anomaly.config` free of torch/lightning.
MODEL_CLASSES = {
    "ae": "anomaly.models.ae.lightning_model:AutoencoderModel",
    "ssim-ae": "anomaly.models.ae.lightning_model:AutoencoderModel",
    "vae": "anomaly.models.vae.lightning_model:VAEModel",
}
DEFAULT_RESIDUALS = {"ae": "l2", "ssim-ae": "ssim", "vae": "l2"}


def build_model(config: ModelConfig):
    """A fresh (untrained) model for `config`; raises ValueError for an unknown name."""
    if config.name not in MODEL_CLASSES:
        raise ValueError(f"unknown model {config.name!r}; expected one of {sorted(MODEL_CLASSES)}")
    import importlib

    module_name, class_name = MODEL_CLASSES[config.name].split(":")
    return getattr(importlib.import_module(module_name), class_name)(config)
