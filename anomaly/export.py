"""ONNX export of the whole scoring path, and the onnxruntime backend of `Detector`.

    export_onnx(Detector.load("runs/mtd"), "exports/mtd")   # or a Bundle
    Detector.load("exports/mtd", backend="onnxruntime")

An exported folder holds

    model.onnx        (B, C, h, w) float32 preprocessed batch -> anomaly_map (B, 1, h, w), score (B,)
    config.json       the bundle's ModelConfig (image size, channels, reduction...)
    calibration.json  the bundle's Calibration (thresholds, normalisation, heatmap scale)
    export.json       exporter, opset, versions and the parity measured at export time

The graph covers everything after resizing: the network, the residual (SSIM or L2) map, the
Gaussian smoothing (its banded matrices become constants of the fixed model size) and the image
score reduction. Decoding, resizing, thresholds and regions stay in Python and are shared by both
backends. The batch axis is dynamic.

The exporter is torch's TorchScript-based one (`dynamo=False`): the dynamo exporter (torch 2.13's
default) gives the same parity on every model here but takes 5-20x longer per export (6-25 s
against ~1 s on 2 cores), which matters for on-the-fly export at `Detector.load`; torch is pinned
to 2.13.0, where both are available.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
import torch
from torch import Tensor, nn

import anomaly
from anomaly.bundle import CALIBRATION, CONFIG, Bundle, read_calibration, read_config
from anomaly.calibration import Calibration
from anomaly.config import ModelConfig
from anomaly.detector import Detector, score_images

ONNX, EXPORT_INFO = "model.onnx", "export.json"
OPSET = 18
PARITY_TOLERANCE = 1e-4  # max abs difference of maps (and scores) accepted at export time


class ScoringGraph(nn.Module):
    """What the ONNX graph computes: exactly `anomaly.detector.score_images`, the torch backend's
    step (the model's `anomaly_map`, the config's reduction, a model's `image_score_bias` if any)."""

    def __init__(self, model: nn.Module, config: ModelConfig) -> None:
        super().__init__()
        self.model, self.config = model, config

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B, C, h, w) float32 in [0, 1] -> anomaly maps (B, 1, h, w) and scores (B,)."""
        scores, maps = score_images(self.model, self.config, x)
        return maps, scores


def onnx_bytes(model: nn.Module, config: ModelConfig) -> bytes:
    """The serialised ONNX graph of `ScoringGraph(model, config)`, batch axis dynamic."""
    device = next(model.parameters()).device
    example = torch.rand(2, config.channels, *config.image_size, device=device)  # batch 2: not specialised to 1
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # the TorchScript exporter's deprecation notice, and tracer notes on the shape checks of
        # anomaly.scoring (shapes other than the batch are fixed by the model, so they are constants)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            ScoringGraph(model, config).eval(), (example,), buffer, dynamo=False, opset_version=OPSET,
            input_names=["image"], output_names=["anomaly_map", "score"],
            dynamic_axes={"image": {0: "batch"}, "anomaly_map": {0: "batch"}, "score": {0: "batch"}})
    return buffer.getvalue()


class OnnxScorer:
    """An onnxruntime session behind the same call as `anomaly.detector.score_images`:
    (B, C, h, w) preprocessed batch -> scores (B,) and maps (B, 1, h, w), CPU float32 tensors."""

    def __init__(self, model: bytes | str | Path, device: torch.device | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as error:  # pragma: no cover - onnxruntime is a dependency
            raise ImportError("backend 'onnxruntime' needs the onnxruntime package: pip install onnxruntime") from error
        providers = ["CPUExecutionProvider"]
        if device is not None and device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only
        model = model if isinstance(model, bytes) else str(model)
        self.session = ort.InferenceSession(model, options, providers=providers)

    def __call__(self, batch: Tensor) -> tuple[Tensor, Tensor]:
        image = batch.detach().to("cpu", torch.float32).contiguous().numpy()
        maps, scores = self.session.run(["anomaly_map", "score"], {"image": image})
        return torch.from_numpy(scores), torch.from_numpy(maps)


def max_differences(model: nn.Module, config: ModelConfig, scorer: OnnxScorer, batch: Tensor) -> dict[str, float]:
    """Max abs difference of maps and scores between torch and onnxruntime on `batch`."""
    scores, maps = score_images(model, config, batch.to(next(model.parameters()).device))
    onnx_scores, onnx_maps = scorer(batch)
    return {"map": float((maps.cpu() - onnx_maps).abs().max()), "score": float((scores.cpu() - onnx_scores).abs().max())}


def export_onnx(source: Detector | Bundle, out_dir: str | Path) -> Path:
    """Write `model.onnx`, config.json, calibration.json and export.json to `out_dir`; return it.

    `source` is a torch-backend `Detector` or a `Bundle`. The graph is checked against torch on a
    fixed random batch before anything is written; a difference above `PARITY_TOLERANCE`
    (e.g. a model drawing random masks at inference) raises RuntimeError.
    """
    if isinstance(source, Bundle):
        model, config, calibration = source.build_model(), source.config, source.calibration
    elif getattr(source, "model", None) is not None:
        model, config, calibration = source.model, source.config, source.calibration
    else:
        raise TypeError(f"export_onnx needs a Bundle or a torch-backend Detector, got {type(source).__name__} "
                        f"without a torch model; load it with backend='torch' from a bundle with weights")
    model = model.eval()
    graph = onnx_bytes(model, config)
    generator = torch.Generator().manual_seed(0)
    check = torch.rand(3, config.channels, *config.image_size, generator=generator)
    parity = max_differences(model, config, OnnxScorer(graph), check)
    if max(parity.values()) > PARITY_TOLERANCE:
        raise RuntimeError(f"the ONNX graph of model {config.name!r} disagrees with torch by {parity} (max abs) on "
                           f"a random batch, above {PARITY_TOLERANCE}; its anomaly_map is not deterministic or "
                           f"not traceable (random masks or noise at inference?) and cannot be exported")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / ONNX).write_bytes(graph)
    (out / CONFIG).write_text(json.dumps({**config.to_dict(), "package_version": anomaly.__version__}, indent=2))
    (out / CALIBRATION).write_text(json.dumps(calibration.to_dict(), indent=2))
    (out / EXPORT_INFO).write_text(json.dumps({
        "format": "onnx", "opset": OPSET, "exporter": "torch.onnx.export(dynamo=False)",
        "torch": torch.__version__, "package_version": anomaly.__version__,
        "inputs": {"image": ["batch", config.channels, *config.image_size]},
        "outputs": {"anomaly_map": ["batch", 1, *config.image_size], "score": ["batch"]},
        "parity_max_abs_difference": parity}, indent=2))
    return out


def is_export(path: str | Path) -> bool:
    return (Path(path) / ONNX).is_file()


def load_export(path: str | Path) -> tuple[ModelConfig, Calibration, Path]:
    """Config, calibration and the graph's path of an exported folder (no weights needed)."""
    path = Path(path)
    missing = [name for name in (ONNX, CONFIG, CALIBRATION) if not (path / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{path} is not an ONNX export: missing {', '.join(missing)} "
                                f"(an export is the --out folder of `anomaly export`)")
    return read_config(path / CONFIG), read_calibration(path / CALIBRATION), path / ONNX


def check_graph(graph: bytes, config: ModelConfig) -> None:
    """ValueError unless `graph` is an ONNX model with the input (at the size and channels of `config`)
    and outputs that `export_onnx` writes."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load_model_from_string(graph)
    except (DecodeError, ValueError, RuntimeError) as error:
        raise ValueError(f"not an ONNX model ({error})") from None
    inputs = {value.name: [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
              for value in model.graph.input}
    outputs = sorted(value.name for value in model.graph.output)
    expected = {"image": ["batch", config.channels, *config.image_size]}
    if inputs != expected or outputs != ["anomaly_map", "score"]:
        raise ValueError(f"the graph takes {inputs} and gives {outputs}; config.json describes a graph taking "
                         f"{expected} and giving ['anomaly_map', 'score']")
