"""The model bundle: a folder of data, loadable without unpickling anything.

    config.json        ModelConfig (architecture, preprocessing, scoring; every model option, defaults
                       included, so a later change of default does not change the model) + package version
    weights.safetensors the state dict
    calibration.json   Calibration (thresholds, normal-score and heatmap statistics)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

import anomaly
from anomaly.calibration import Calibration
from anomaly.config import ModelConfig

CONFIG, WEIGHTS, CALIBRATION = "config.json", "weights.safetensors", "calibration.json"


@dataclass(frozen=True)
class Bundle:
    config: ModelConfig
    state_dict: dict[str, torch.Tensor]
    calibration: Calibration

    def build_model(self) -> torch.nn.Module:
        """The model with its weights, in eval mode."""
        from anomaly.models import build_model

        model = build_model(self.config)
        model.load_state_dict(self.state_dict)
        return model.eval()


def save_bundle(path: str | Path, config: ModelConfig, state_dict: dict[str, torch.Tensor],
                calibration: Calibration) -> Path:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / CONFIG).write_text(json.dumps({**config.to_dict(), "package_version": anomaly.__version__}, indent=2))
    save_file({k: v.detach().cpu().contiguous() for k, v in state_dict.items()}, str(path / WEIGHTS))
    (path / CALIBRATION).write_text(json.dumps(calibration.to_dict(), indent=2))
    return path


def load_bundle(path: str | Path) -> Bundle:
    path = Path(path)
    missing = [name for name in (CONFIG, WEIGHTS, CALIBRATION) if not (path / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{path} is not a model bundle: missing {', '.join(missing)} "
            f"(a bundle is the --out folder of `anomaly train`)")
    from anomaly.models import complete_options

    values = json.loads((path / CONFIG).read_text())
    values.pop("package_version", None)
    state_dict = load_file(str(path / WEIGHTS))
    return Bundle(complete_options(ModelConfig.from_dict(values), state_dict), state_dict,
                  Calibration.from_dict(json.loads((path / CALIBRATION).read_text())))
