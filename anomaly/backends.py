"""The scoring backends of `Detector`: one step, `(B, C, h, w) preprocessed batch -> (scores (B,), maps (B, 1, h, w))`.

    "torch"        `TorchScorer`: `score_images` on the model (on the CPU an inference copy: BatchNorm
                   folded, channels-last)
    "onnxruntime"  `OnnxScorer`: an onnxruntime session of the ONNX graph of the same step
                   (`onnx_bytes`, which anomaly/export.py also writes to disk)

Decoding, resizing, thresholds and regions are not here: they are the Detector's, shared by both.
The ONNX graph is built with torch's TorchScript-based exporter (`dynamo=False`): the dynamo exporter
(torch 2.13's default) gives the same parity on every model here but takes 5-20x longer per export
(6-25 s against ~1 s on 2 cores), which matters for on-the-fly export at `Detector.load`.
"""

from __future__ import annotations

import copy
import io
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from anomaly.config import ModelConfig
from anomaly.scoring import image_scores

BACKENDS = ("torch", "onnxruntime")
OPSET = 18


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    return backend


def score_images(model: nn.Module, config: ModelConfig, batch: Tensor) -> tuple[Tensor, Tensor]:
    """(B, C, h, w) preprocessed batch -> image scores (B,) and anomaly maps (B, 1, h, w), on the
    model's device. Used by calibration during training and by every prediction.

    A model may add a per-image term to the map's reduction with `image_score_bias(batch) -> (B,)`
    (ganomaly's latent consistency); the map itself is never changed."""
    with torch.inference_mode():
        maps = model.anomaly_map(batch)
        scores = image_scores(maps, config.score_reduction, config.topk)
        if hasattr(model, "image_score_bias"):
            scores = scores + model.image_score_bias(batch)
    return scores, maps


def inference_copy(model: nn.Module) -> nn.Module:
    """A copy of `model` (in eval mode) for scoring on the CPU: each BatchNorm that follows a convolution
    in a Sequential folded into it, weights channels-last (2x on draem's U-Net, bench_speed.py). The
    maps agree with the original to float rounding (tests/detector)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    model = copy.deepcopy(model).eval()
    for module in model.modules():
        if isinstance(module, nn.Sequential):
            names = list(module._modules)
            for conv_name, bn_name in zip(names, names[1:]):
                conv, bn = module._modules[conv_name], module._modules[bn_name]
                if isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d)) and isinstance(bn, nn.BatchNorm2d):
                    transpose = isinstance(conv, nn.ConvTranspose2d)
                    module._modules[conv_name] = fuse_conv_bn_eval(conv, bn, transpose=transpose)
                    module._modules[bn_name] = nn.Identity()
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            module.weight.data = module.weight.data.contiguous(memory_format=torch.channels_last)
    return model


class TorchScorer:
    """The torch backend's scoring step: `score_images` on `inference_copy(model)` with channels-last
    input on the CPU, on the model itself elsewhere. `(B, C, h, w) batch -> (scores, maps)`."""

    def __init__(self, model: nn.Module, config: ModelConfig, device: torch.device) -> None:
        self.config, self.device, self.cpu = config, device, device.type == "cpu"
        self.model = inference_copy(model) if self.cpu else model

    def __call__(self, batch: Tensor) -> tuple[Tensor, Tensor]:
        batch = batch.to(self.device)
        if self.cpu:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return score_images(self.model, self.config, batch)


class ScoringGraph(nn.Module):
    """What the ONNX graph computes: exactly `score_images`, the torch backend's step (the model's
    `anomaly_map`, the config's reduction, a model's `image_score_bias` if any)."""

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


def check_graph(graph: bytes, config: ModelConfig) -> None:
    """ValueError unless `graph` is an ONNX model with the input (at the size and channels of `config`)
    and outputs that `onnx_bytes` gives."""
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


class OnnxScorer:
    """An onnxruntime session behind the same call as `TorchScorer`:
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
