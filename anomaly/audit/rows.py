"""Per-image work shared by the local and the Ray engine: the results row, the overlay, the thumbnail
and the raw map of one scored image, and saving them under the output folder."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from anomaly.audit.inputs import artifact_name
from anomaly.data import resize
from anomaly.detector import Detector, Prediction
from anomaly.visualize import encode_png, overlay

THUMB_SIZE = 192  # longest side of a report thumbnail, pixels
OVERLAYS = ("anomalous", "all", "none")
FOLDERS = {"overlay": "overlays", "map": "maps", "thumb": "thumbs"}


@dataclass(frozen=True)
class Artifacts:
    """What is written beside the row: encoded files ready to save."""

    thumb_jpeg: bytes | None = None  # overlay thumbnail for the report
    overlay_png: bytes | None = None  # full-resolution heatmap overlay
    map_npy: bytes | None = None  # (H, W) float32 anomaly map as a .npy file


def model_fields(info: dict[str, Any]) -> dict[str, Any]:
    """Model name and version columns; a local bundle is named by its folder path."""
    return {"model_name": info.get("name") or info.get("uri") or "",
            "model_version": "" if info.get("version") is None else str(info["version"])}


def error_row(path: str, error: BaseException | str, info: dict[str, Any]) -> dict[str, Any]:
    """The row of an input that could not be audited; `error` names the problem."""
    message = str(error) if isinstance(error, str) else (str(error) or type(error).__name__)
    if isinstance(error, OSError) and not message.startswith(path):
        message = f"{path}: {message}"
    return {"path": path, "verdict": "error", "error": message, **model_fields(info)}


def prediction_row(path: str, array: np.ndarray, prediction: Prediction, info: dict[str, Any]) -> dict[str, Any]:
    """The row of a scored image; array is its decoded (C, H, W) float32."""
    return {
        "path": path, "width": int(array.shape[2]), "height": int(array.shape[1]),
        "score": float(prediction.score), "normalised_score": float(prediction.normalised_score),
        "threshold": float(prediction.threshold), "verdict": "anomalous" if prediction.is_anomalous else "normal",
        "regions": len(prediction.regions),
        "largest_region_area": max((r.area for r in prediction.regions), default=0),
        **model_fields(info), "error": None,
    }


def thumbnail(detector: Detector, array: np.ndarray, prediction: Prediction, size: int = THUMB_SIZE) -> bytes:
    """JPEG of the heatmap overlay, longest side `size`; image and map are downscaled first (cheap
    for large images), then coloured on the same dataset-level scale as `Detector.heatmap`, regions boxed."""
    h, w = array.shape[1:]
    scale = min(1.0, size / max(h, w))
    th, tw = max(1, round(h * scale)), max(1, round(w * scale))
    stacked = np.concatenate([array, prediction.anomaly_map[None].astype(np.float32)])  # (C + 1, H, W)
    small = resize(torch.from_numpy(stacked)[None], (th, tw))[0].numpy()
    rgb = overlay(np.clip(small[:-1], 0, 1), detector.calibration.heatmap_scale(small[-1]),
                  regions=prediction.regions, scale=th / h)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def render(detector: Detector, array: np.ndarray, prediction: Prediction, *, overlays: str = "anomalous",
           maps: bool = False, thumbs: bool = True) -> Artifacts:
    """Encode the files written for one scored image (`overlays`: "anomalous", "all" or "none")."""
    want_overlay = overlays == "all" or (overlays == "anomalous" and prediction.is_anomalous)
    map_npy = None
    if maps:
        buffer = io.BytesIO()
        np.save(buffer, prediction.anomaly_map.astype(np.float32))
        map_npy = buffer.getvalue()
    return Artifacts(
        thumb_jpeg=thumbnail(detector, array, prediction) if thumbs else None,
        overlay_png=encode_png(detector.heatmap(array, prediction)) if want_overlay else None,
        map_npy=map_npy)


def save(out: Path, row: dict[str, Any], artifacts: Artifacts) -> dict[str, Any]:
    """Write the artifacts under `out/{overlays,maps,thumbs}/` and return the row with their
    relative paths. File names come from `artifact_name`, so they always stay inside `out`."""
    name = artifact_name(row["path"])
    row = dict(row, overlay=None, map=None)
    for kind, data, suffix in (("thumb", artifacts.thumb_jpeg, ".jpg"), ("overlay", artifacts.overlay_png, ".png"),
                               ("map", artifacts.map_npy, ".npy")):
        if data is None:
            continue
        relative = f"{FOLDERS[kind]}/{name}{suffix}"
        (out / FOLDERS[kind]).mkdir(exist_ok=True)
        (out / relative).write_bytes(data)
        if kind != "thumb":
            row[kind] = relative
    return row
