"""`Detector`: the one door to a trained model for the service, the audit, evaluation and benchmarks.

    detector = Detector.load("runs/mtd")        # or runs:/<id>/model, models:/<name>@<alias>
    [prediction] = detector.predict(["part.png"])
    prediction.score, prediction.is_anomalous, prediction.anomaly_map, prediction.regions

Backends (anomaly/backends.py): "torch" (default) runs the model (on the CPU, an inference copy: BatchNorm
folded, channels-last); "onnxruntime" runs the ONNX graph of the same `score_images` step, from an
`anomaly export` folder or exported from the weights at load. Decoding, resizing, thresholds and
regions are the Detector's, shared by both. Nothing outside the Detector touches the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from skimage.measure import label, regionprops

from anomaly.backends import OnnxScorer, TorchScorer, check_backend, check_graph, onnx_bytes
from anomaly.bundle import (ONNX, WEIGHTS, Bundle, is_export, load_bundle, load_export, naming, save_bundle,
                            save_export)
from anomaly.calibration import Calibration
from anomaly.config import ModelConfig
from anomaly.data import decode_image, resize
from anomaly.model_uri import parse_model_uri
from anomaly.scoring import resize_map
from anomaly.tiling import map_tiled, scaled_shape, score_tiled

ImageSource = str | Path | bytes | np.ndarray


@dataclass(frozen=True)
class Region:
    """A connected defect region: bbox (x0, y0, x1, y1) in pixels, end exclusive; area in pixels;
    peak = highest anomaly-map value inside."""

    bbox: tuple[int, int, int, int]
    area: int
    peak: float


@dataclass(frozen=True)
class Prediction:
    score: float  # raw image score (max or top-k mean of the smoothed map)
    normalised_score: float  # in (0, 1), 0.5 at the threshold
    is_anomalous: bool  # score >= threshold
    threshold: float
    anomaly_map: np.ndarray = field(repr=False)  # (H, W) float32 at the input image's own size
    mask: np.ndarray = field(repr=False)  # (H, W) bool: anomaly_map >= pixel threshold
    regions: tuple[Region, ...] = ()


def preprocess(arrays: Sequence[np.ndarray], size: tuple[int, int]) -> torch.Tensor:
    """Decoded (C, H, W) float32 arrays of any sizes -> (B, C, h, w) batch at the model's size."""
    return torch.cat([resize(torch.from_numpy(a)[None], size) for a in arrays])


def to_model_scale(array: np.ndarray, config: ModelConfig) -> torch.Tensor:
    """A decoded (C, H, W) float32 array -> (C, h, w) as the model sees it: resized by `config.scale` keeping
    its aspect (anomaly.tiling.scaled_shape), or without a scale to `config.image_size`."""
    size = config.image_size if config.scale is None else scaled_shape(array.shape[1:], config.scale)
    return resize(torch.from_numpy(array)[None], size)[0]


def score_arrays(scorer: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]], config: ModelConfig,
                 arrays: Sequence[np.ndarray]) -> tuple[np.ndarray, list[torch.Tensor]]:
    """Decoded (C, H, W) float32 arrays -> image scores (N,) float64 and maps [(h, w) float32 CPU tensors] at
    model scale: one batch at `image_size` without a scale, else each image tile by tile (anomaly.tiling).
    The one scoring path of prediction, calibration and painted validation."""
    if config.scale is None:
        scores, maps = scorer(preprocess(arrays, config.image_size))
        return scores.cpu().numpy().astype(np.float64), list(maps[:, 0].float().cpu())
    return score_scaled(scorer, config, [to_model_scale(a, config) for a in arrays])


def score_in_batches(scorer: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]], config: ModelConfig,
                     decode: Callable[[Any], np.ndarray], sources: Sequence[Any],
                     batch_size: int = 16) -> tuple[np.ndarray, list[np.ndarray]]:
    """`score_arrays` over `sources` decoded `batch_size` at a time -> image scores (N,) float64 and maps
    [(h, w) float32] at model scale, as calibration uses them; ValueError when there is nothing to score."""
    scores, maps = [], []
    for i in range(0, len(sources), batch_size):
        batch_scores, batch_maps = score_arrays(scorer, config, [decode(s) for s in sources[i:i + batch_size]])
        scores.append(batch_scores)
        maps += [m.numpy() for m in batch_maps]
    if not scores:
        raise ValueError("no images to score")
    return np.concatenate(scores), maps


def score_scaled(scorer: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]], config: ModelConfig,
                 images: Sequence[torch.Tensor]) -> tuple[np.ndarray, list[torch.Tensor]]:
    """`score_arrays` for (C, h, w) images already at model scale (`to_model_scale`) of a config with a scale."""
    scores, maps = score_tiled(scorer, images, config.image_size, reduction=config.score_reduction, topk=config.topk)
    return scores.numpy().astype(np.float64), maps


def find_regions(anomaly_map: np.ndarray, mask: np.ndarray) -> tuple[Region, ...]:
    """Connected components (8-connectivity) of `mask` (H, W) bool, largest first."""
    regions = [
        Region(bbox=(int(p.bbox[1]), int(p.bbox[0]), int(p.bbox[3]), int(p.bbox[2])), area=int(p.area),
               peak=float(p.intensity_max))
        for p in regionprops(label(mask, connectivity=2), intensity_image=anomaly_map)
    ]
    return tuple(sorted(regions, key=lambda r: -r.area))


class Detector:
    def __init__(self, bundle: Bundle, *, source: str = "", info: dict[str, Any] | None = None,
                 device: str | None = None, backend: str = "torch", onnx_model: bytes | Path | None = None) -> None:
        """`bundle.state_dict` may be empty only with backend "onnxruntime" and an `onnx_model` (an
        exported folder's graph); without one, "onnxruntime" exports the weights in memory (~1 s)."""
        self.config = bundle.config
        self.calibration: Calibration = bundle.calibration
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.backend = check_backend(backend)
        self.model = bundle.build_model().to(self.device) if bundle.state_dict else None  # None: ONNX only
        self.scorer: TorchScorer | OnnxScorer
        self.graph: bytes | None = None  # the ONNX graph run by backend "onnxruntime"
        if backend == "onnxruntime":
            if isinstance(onnx_model, Path):
                onnx_model = onnx_model.read_bytes()
            self.graph = onnx_model if onnx_model is not None else onnx_bytes(self.model, self.config)
            self.scorer = OnnxScorer(self.graph, self.device)
        elif self.model is None:
            raise ValueError("backend 'torch' needs the bundle's weights; this bundle has none")
        else:
            self.scorer = TorchScorer(self.model, self.config, self.device)
        self.source = source
        self.info = {"uri": source, "pinned": None, "name": None, "version": None, "run_id": None, **(info or {})}

    @property
    def version(self) -> str | None:
        """The registered model version this was loaded from ("3"); None for a local bundle."""
        return self.info["version"]

    @property
    def has_weights(self) -> bool:
        """False for an ONNX export loaded as is (it can score, not be saved as a bundle or reconstruct)."""
        return self.model is not None

    @classmethod
    def load(cls, uri: str | Path, *, device: str | None = None, backend: str = "torch") -> Detector:
        """A local bundle folder, `runs:/<run_id>/model`, `models:/<name>@<alias>` or `models:/<name>/<version>`,
        or (backend "onnxruntime" only) an `anomaly export` folder. With "onnxruntime" a folder's
        model.onnx is used when present, else the bundle's weights are exported in memory at load.

        A registry model is downloaded to a temporary folder, read into memory and the folder removed:
        repeated loads (service reloads, audit actors) leave nothing behind. `info["pinned"]` is then
        the exact version loaded (`models:/<name>/<version>` or the runs:/ URI), for loading it again."""
        uri = str(uri)
        check_backend(backend)
        if parse_model_uri(uri) is None:  # a local folder (a malformed registry URI raises RegistryError)
            return cls._load_folder(Path(uri), source=uri, info=None, device=device, backend=backend)
        from anomaly.tracking import download_bundle

        with download_bundle(uri) as (path, info):
            return cls._load_folder(path, source=uri, info=info, device=device, backend=backend)

    @classmethod
    def _load_folder(cls, path: Path, *, source: str, info: dict[str, Any] | None, device: str | None,
                     backend: str) -> Detector:
        """Everything (config, weights, calibration, model.onnx) is read into memory and checked
        (anomaly.bundle.load_bundle, anomaly.backends.check_graph) before returning."""
        onnx = None
        if is_export(path) and not (path / WEIGHTS).is_file():
            if backend != "onnxruntime":
                raise FileNotFoundError(f"{path} is an ONNX export ({ONNX} without {WEIGHTS}): load it with "
                                        f"backend='onnxruntime' (--backend onnxruntime), or load the original bundle")
            bundle, onnx = load_export(path)
        else:
            bundle = load_bundle(path)
            if backend == "onnxruntime" and is_export(path):
                onnx = (path / ONNX).read_bytes()
        if onnx is not None:
            with naming(path / ONNX):
                check_graph(onnx, bundle.config)
        return cls(bundle, source=source, info=info, device=device, backend=backend, onnx_model=onnx)

    def score_batch(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, h, w) preprocessed float32 batch -> image scores (B,) and anomaly maps (B, 1, h, w),
        from the backend (on the model's device for torch, on the CPU for onnxruntime)."""
        return self.scorer(batch)

    def score_at_scale(self, images: Sequence[torch.Tensor]) -> tuple[np.ndarray, list[torch.Tensor]]:
        """(C, h, w) images already at model scale (`to_model_scale`) of a model with a scale -> image scores (N,)
        float64 and maps [(h, w)], tile by tile (anomaly.tiling): painted defects drawn at that scale."""
        return score_scaled(self.scorer, self.config, images)

    def score_at_model_size(self, images: Sequence[ImageSource], *,
                            batch_size: int = 16) -> tuple[np.ndarray, list[np.ndarray]]:
        """Image scores (N,) float64 and anomaly maps [(h, w) float32] at model scale (`score_arrays`), as
        calibration uses them (anomaly.calibration.calibrate)."""
        return score_in_batches(self.scorer, self.config, self.decode, images, batch_size)

    def decode(self, source: ImageSource, name: str | None = None) -> np.ndarray:
        """Any supported image (path, encoded bytes or a (C, H, W) float array) -> (C, H, W) float32 in [0, 1]
        with the model's channel count. Raises anomaly.data.ImageDecodeError naming the problem."""
        if isinstance(source, np.ndarray):
            if source.ndim != 3 or source.shape[0] != self.config.channels:
                raise ValueError(f"expected a ({self.config.channels}, H, W) array, got shape {source.shape}")
            return source.astype(np.float32, copy=False)
        return decode_image(source, self.config.channels, name=name)

    def predict(self, images: Sequence[ImageSource], *, threshold: float | None = None,
                batch_size: int = 16) -> list[Prediction]:
        """Score images of any size; maps come back at each image's own size."""
        arrays = [self.decode(image) for image in images]
        return [p for i in range(0, len(arrays), batch_size)
                for p in self.predict_arrays(arrays[i:i + batch_size], threshold=threshold)]

    def predict_arrays(self, arrays: Sequence[np.ndarray], *, threshold: float | None = None) -> list[Prediction]:
        """Decoded (C, H, W) float32 arrays (any sizes) -> one Prediction each, scored as one batch."""
        if not arrays:
            return []
        scores, maps = score_arrays(self.scorer, self.config, arrays)
        threshold = self.calibration.image_threshold if threshold is None else float(threshold)
        normalised = self.calibration.normalise(scores, threshold)
        predictions = []
        for array, score, norm, small_map in zip(arrays, scores, normalised, maps):
            full_map = resize_map(small_map[None, None], tuple(array.shape[1:]))[0, 0].numpy()
            mask = full_map >= self.calibration.pixel_threshold
            predictions.append(Prediction(
                score=float(score), normalised_score=float(norm), is_anomalous=bool(score >= threshold),
                threshold=threshold, anomaly_map=full_map, mask=mask, regions=find_regions(full_map, mask)))
        return predictions

    def heatmap(self, image: np.ndarray, prediction: Prediction, alpha: float = 0.5) -> np.ndarray:
        """(C, H, W) image + its prediction -> (H, W, 3) uint8 overlay on the calibrated colour scale, each
        defect region boxed with its peak."""
        from anomaly.visualize import overlay

        return overlay(image, self.calibration.heatmap_scale(prediction.anomaly_map), alpha, prediction.regions)

    def reconstruct(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Decoded (C, H, W) float32 arrays -> the model's reconstructions [(C, h, w) float32] at model scale
        (the input its anomaly map compares against; with a scale stitched from tiles like the map). Needs the
        weights (a bundle, not an export)."""
        if self.model is None:
            raise ValueError(f"{self.source or 'this model'} has no weights (an ONNX export): a reconstruction "
                             f"needs the bundle the export was made from")
        with torch.inference_mode():
            if self.config.scale is None:
                batch = preprocess(arrays, self.config.image_size).to(self.device)
                return list(self.model(batch).float().cpu().numpy())
            return [map_tiled(lambda tiles: self.model(tiles.to(self.device)), to_model_scale(array, self.config),
                              self.config.image_size).numpy() for array in arrays]

    def to_bundle(self, calibration: Calibration | None = None) -> Bundle:
        """This model's config and weights (on the CPU) with `calibration` (default: its own), e.g. to save
        a re-calibrated bundle. Needs the weights."""
        if self.model is None:
            raise ValueError(f"{self.source or 'this model'} has no weights (an ONNX export); a bundle needs the "
                             f"weights of the bundle it was made from")
        state_dict = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        return Bundle(self.config, state_dict, calibration or self.calibration)

    def save(self, path: str | Path, calibration: Calibration | None = None) -> Path:
        """Write this model with `calibration` (default: its own) to the folder `path`: a bundle when it has
        weights, else (an ONNX export loaded as is) an export folder with the same graph."""
        if self.model is not None:
            bundle = self.to_bundle(calibration)
            return save_bundle(path, bundle.config, bundle.state_dict, bundle.calibration)
        return save_export(path, self.config, calibration or self.calibration, self.graph,
                           {"format": "onnx", "graph": f"the graph of {self.source}, re-calibrated"})
