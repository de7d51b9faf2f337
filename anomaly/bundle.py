"""The model bundle: a folder of data, loadable without unpickling anything.

    config.json        ModelConfig (architecture, preprocessing, scoring; every model option, defaults
                       included, so a later change of default does not change the model) + package version
    weights.safetensors the state dict
    calibration.json   Calibration (thresholds, normal-score and heatmap statistics, the threshold's guarantee)

An ONNX export (`anomaly export`, anomaly/export.py) is the same folder with `model.onnx` (the scoring
graph, anomaly.backends) and `export.json` (how it was exported) in place of the weights. This module is
the one writer of both (`save_bundle`, `save_export`) and reads both (`load_bundle`, `load_export`).

Everything loaded is checked before it is used (`load_bundle`): config.json field by field
(ModelConfig.from_dict), calibration.json field by field (Calibration.from_dict), and the weights
against the architecture the config builds (names, shapes, dtypes, finite values). A bad file is a
ValueError naming the file and the field. Files are written readable by all, as any data file
(0644 under umask 022), so a bundle mounted read-only serves under any user.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save

import anomaly
from anomaly.calibration import Calibration
from anomaly.config import ModelConfig

CONFIG, WEIGHTS, CALIBRATION = "config.json", "weights.safetensors", "calibration.json"
ONNX, EXPORT_INFO = "model.onnx", "export.json"


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


def _write(path: str | Path, config: ModelConfig, calibration: Calibration, files: dict[str, bytes]) -> Path:
    """config.json, calibration.json and `files` (name -> bytes) into the folder `path`, made if missing."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    files = {CONFIG: json.dumps({**config.to_dict(), "package_version": anomaly.__version__}, indent=2).encode(),
             CALIBRATION: json.dumps(calibration.to_dict(), indent=2).encode(), **files}
    for name, data in files.items():
        (path / name).write_bytes(data)
    return path


def save_bundle(path: str | Path, config: ModelConfig, state_dict: dict[str, torch.Tensor],
                calibration: Calibration) -> Path:
    # bytes written by Python, not safetensors' save_file, which creates the file with mode 0600
    weights = save({k: v.detach().cpu().contiguous() for k, v in state_dict.items()})
    return _write(path, config, calibration, {WEIGHTS: weights})


def save_export(path: str | Path, config: ModelConfig, calibration: Calibration, graph: bytes,
                info: dict[str, Any]) -> Path:
    """An ONNX export folder: the graph, config.json, calibration.json and `info` as export.json."""
    return _write(path, config, calibration, {ONNX: graph, EXPORT_INFO: json.dumps(info, indent=2).encode()})


@contextmanager
def naming(file: Path) -> Iterator[None]:
    """A ValueError or TypeError raised inside, prefixed with `file`: "<file>: <field> must be ..."."""
    try:
        yield
    except (ValueError, TypeError) as error:
        raise ValueError(f"{file}: {error}") from error


def read_json(file: Path) -> Any:
    """The JSON value in `file` (NaN and Infinity read as floats: the field checks name them)."""
    try:
        return json.loads(file.read_bytes())
    except (ValueError, RecursionError) as error:  # JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"{file}: not valid JSON ({error})") from None


def read_config(file: Path) -> ModelConfig:
    """config.json of a bundle or an ONNX export, checked (ModelConfig.from_dict)."""
    values = read_json(file)
    with naming(file):
        if isinstance(values, dict):
            values = {k: v for k, v in values.items() if k != "package_version"}
        return ModelConfig.from_dict(values)


def read_calibration(file: Path) -> Calibration:
    values = read_json(file)
    with naming(file):
        return Calibration.from_dict(values)


def describe(tensor: torch.Tensor) -> str:
    return f"{list(tensor.shape)} {str(tensor.dtype).removeprefix('torch.')}"


def check_weights(state_dict: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    """ValueError naming the first tensor whose name, shape or dtype differs from `expected`
    (anomaly.models.architecture) or whose values are not all finite."""
    for name, want in expected.items():
        if name not in state_dict:
            raise ValueError(f"tensor {name} ({describe(want)}) is missing; the model config.json describes has it")
        if (got := state_dict[name]).shape != want.shape or got.dtype != want.dtype:
            raise ValueError(f"tensor {name} is {describe(got)}; the model config.json describes has "
                             f"{describe(want)}")
        if got.is_floating_point() and not torch.isfinite(got).all():
            raise ValueError(f"tensor {name} holds NaN or infinite values")
    if extra := [name for name in state_dict if name not in expected]:
        raise ValueError(f"tensor {extra[0]} is not in the model config.json describes"
                         f"{f' (nor are {len(extra) - 1} more)' if len(extra) > 1 else ''}")


def load_bundle(path: str | Path) -> Bundle:
    path = Path(path)
    missing = [name for name in (CONFIG, WEIGHTS, CALIBRATION) if not (path / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{path} is not a model bundle: missing {', '.join(missing)} "
            f"(a bundle is the --out folder of `anomaly train`)")
    from anomaly.models import architecture, complete_options

    config = read_config(path / CONFIG)
    try:
        state_dict = load((path / WEIGHTS).read_bytes())
    except SafetensorError as error:
        raise ValueError(f"{path / WEIGHTS}: not a safetensors file ({error})") from None
    with naming(path / CONFIG):
        config = complete_options(config, state_dict).check()
        expected = architecture(config)
    with naming(path / WEIGHTS):
        check_weights(state_dict, expected)
    return Bundle(config, state_dict, read_calibration(path / CALIBRATION))


def is_export(path: str | Path) -> bool:
    return (Path(path) / ONNX).is_file()


def load_export(path: str | Path) -> tuple[Bundle, bytes]:
    """An exported folder's config and calibration (checked) as a Bundle without weights, and its graph."""
    path = Path(path)
    missing = [name for name in (ONNX, CONFIG, CALIBRATION) if not (path / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{path} is not an ONNX export: missing {', '.join(missing)} "
                                f"(an export is the --out folder of `anomaly export`)")
    config, calibration = read_config(path / CONFIG), read_calibration(path / CALIBRATION)
    return Bundle(config, {}, calibration), (path / ONNX).read_bytes()
