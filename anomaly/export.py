"""ONNX export of the whole scoring path (the onnxruntime backend itself is anomaly/backends.py).

    export_onnx(Detector.load("runs/mtd"), "exports/mtd")   # or a Bundle
    Detector.load("exports/mtd", backend="onnxruntime")

An exported folder (written by anomaly.bundle.save_export) holds

    model.onnx        (B, C, h, w) float32 preprocessed batch -> anomaly_map (B, 1, h, w), score (B,)
    config.json       the bundle's ModelConfig (image size, channels, reduction...)
    calibration.json  the bundle's Calibration (thresholds, normalisation, heatmap scale, guarantee)
    export.json       exporter, opset, versions and the parity measured at export time

The graph covers everything after resizing: the network, the residual (SSIM or L2) map, the
Gaussian smoothing (its banded matrices become constants of the fixed model size) and the image
score reduction. Decoding, resizing, tiling (a model with a scale: the graph scores its fixed-size tiles,
anomaly.tiling stitches them), thresholds and regions stay in Python and are shared by both backends, so an
export maps an image of any size and aspect as the bundle does. The batch axis is dynamic.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

import anomaly
from anomaly.backends import OPSET, OnnxScorer, onnx_bytes, score_images
from anomaly.bundle import EXPORT_INFO, ONNX, Bundle, save_export
from anomaly.config import ModelConfig
from anomaly.detector import Detector

__all__ = ["EXPORT_INFO", "ONNX", "PARITY_TOLERANCE", "export_onnx", "max_differences"]

PARITY_TOLERANCE = 1e-4  # max abs difference of maps (and scores) accepted at export time


def max_differences(model: nn.Module, config: ModelConfig, scorer: OnnxScorer, batch: Tensor) -> dict[str, float]:
    """Max abs difference of maps and scores between torch and onnxruntime on `batch`."""
    scores, maps = score_images(model, config, batch.to(next(model.parameters()).device))
    onnx_scores, onnx_maps = scorer(batch)
    return {"map": float((maps.cpu() - onnx_maps).abs().max()), "score": float((scores.cpu() - onnx_scores).abs().max())}


def export_onnx(source: Detector | Bundle, out_dir: str | Path) -> Path:
    """Write `model.onnx`, config.json, calibration.json and export.json to `out_dir`; return it.

    `source` is a `Bundle` or a `Detector` with weights (loaded from a bundle, any backend). The graph
    is checked against torch on a fixed random batch before anything is written; a difference above
    `PARITY_TOLERANCE` (e.g. a model drawing random masks at inference) raises RuntimeError.
    """
    bundle = source.to_bundle() if isinstance(source, Detector) else source
    model, config = bundle.build_model(), bundle.config
    graph = onnx_bytes(model, config)
    generator = torch.Generator().manual_seed(0)
    check = torch.rand(3, config.channels, *config.image_size, generator=generator)
    parity = max_differences(model, config, OnnxScorer(graph), check)
    if max(parity.values()) > PARITY_TOLERANCE:
        raise RuntimeError(f"the ONNX graph of model {config.name!r} disagrees with torch by {parity} (max abs) on "
                           f"a random batch, above {PARITY_TOLERANCE}; its anomaly_map is not deterministic or "
                           f"not traceable (random masks or noise at inference?) and cannot be exported")
    return save_export(out_dir, config, bundle.calibration, graph, {
        "format": "onnx", "opset": OPSET, "exporter": "torch.onnx.export(dynamo=False)",
        "torch": torch.__version__, "package_version": anomaly.__version__,
        "inputs": {"image": ["batch", config.channels, *config.image_size]},
        "outputs": {"anomaly_map": ["batch", 1, *config.image_size], "score": ["batch"]},
        "parity_max_abs_difference": parity})
