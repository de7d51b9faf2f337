"""Response models: the service's public contract (pydantic only here, at the edge)."""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, Field


class HeatmapFormat(str, Enum):
    none = "none"
    png = "png"
    raw = "raw"


class ErrorPublic(BaseModel):
    """Every error body (4xx, and 500 for a fault of the service), and each refused file inside a
    multi-file /v1/predict response."""

    code: str = Field(description="machine-readable: empty_file, not_an_image, truncated_image, unsupported_mode, "
                                  "too_many_pixels, too_many_request_pixels, too_many_bytes, too_many_files, "
                                  "internal_error, ...")
    detail: str = Field(description="what was received, what was expected, how to fix it")
    filename: str | None = None


class RegionPublic(BaseModel):
    bbox: tuple[int, int, int, int] = Field(description="x0, y0, x1, y1 in image pixels, end exclusive")
    area: int = Field(description="pixels")
    peak: float = Field(description="highest anomaly-map value inside the region")


class HeatmapPublic(BaseModel):
    format: HeatmapFormat
    media_type: str = Field(description="image/png (overlay) or application/octet-stream (raw float32 map)")
    width: int
    height: int
    data: str = Field(description="base64: a PNG overlay on the calibrated colour scale, or the raw anomaly "
                                  "map as little-endian float32, row-major (height, width)")


class ImageResultPublic(BaseModel):
    filename: str
    width: int | None = None
    height: int | None = None
    score: float | None = Field(None, description="raw image score")
    normalised_score: float | None = Field(None, description="in (0, 1), 0.5 at the threshold used")
    threshold: float | None = Field(None, description="the threshold used (calibrated, or this request's)")
    is_anomalous: bool | None = None
    regions: list[RegionPublic] | None = Field(None, description="largest first; null when regions=false")
    heatmap: HeatmapPublic | None = None
    error: ErrorPublic | None = Field(None, description="set instead of the scores when this file was refused")


class ModelRefPublic(BaseModel):
    uri: str
    name: str | None = None
    version: str | None = None
    run_id: str | None = None


class PredictPublic(BaseModel):
    model: ModelRefPublic
    results: list[ImageResultPublic]


class ReloadStatusPublic(BaseModel):
    ok: bool
    at: float = Field(description="unix time of the attempt")
    detail: str


class ModelPublic(ModelRefPublic):
    architecture: str
    image_threshold: float
    pixel_threshold: float
    f1_threshold: float | None = None
    threshold_method: str
    target_fpr: float
    fpr_bound: float | None = Field(None, description="false-alarm rate guaranteed for a new normal image "
                                    "(split conformal); null when the calibration records none")
    guarantee: str = Field(description="the promise the image threshold rests on, in words")
    input_size: tuple[int, int] = Field(description="(height, width) the network sees: the whole image resized "
                                        "to it, or with a scale its tiles")
    scale: float | None = Field(None, description="factor each image is resized by, keeping its aspect, before "
                                "tiled scoring (1 = its own size); null: resized to input_size")
    channels: int
    device: str
    loaded_at: float
    ready: bool
    last_reload: ReloadStatusPublic | None = None


class ReloadPublic(BaseModel):
    changed: bool = Field(description="true when a different version (or bundle) is now served")
    previous: ModelRefPublic
    current: ModelRefPublic


class HealthPublic(BaseModel):
    status: str
