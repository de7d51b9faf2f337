"""From uploaded files to results: decode (thread pool), score (micro-batch), render (thread pool).

Before anything is decoded, the pixels the images declare in their headers are summed: over the
per-request limit (`max_request_pixels`) the request is refused (413), and past the process-wide
budget of pixels in flight (`max_pixels_in_flight`) it is shed (503); a small body of flat PNGs could
otherwise become gigabytes of float32. The pixels stay reserved until the results are built. Each
file is then decoded on its own; a file that cannot be decoded becomes a per-file error while the
others are scored. Only when no file could be used at all does the request fail as a whole.
"""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import numpy as np
from fastapi import UploadFile
from PIL import Image
from starlette.concurrency import run_in_threadpool

from anomaly.data import ImageDecodeError, decode_image
from anomaly.detector import Detector, Prediction
from anomaly.visualize import encode_png
from service.errors import ServiceError, decode_error
from service.model import ModelService, version_label
from service.schemas import HeatmapFormat, HeatmapPublic, ImageResultPublic, RegionPublic


def filename_of(upload: UploadFile, index: int) -> str:
    return upload.filename or f"upload-{index}"


def declared_pixels(data: bytes, max_pixels: int) -> int:
    """width * height from the image header (no pixel is decoded); 0 for a file that will be refused
    without decoding anyway (not an image, or over `max_pixels` on its own)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
    except Exception:  # not an image, a bomb PIL refuses: decode_image reports it per file
        return 0
    return width * height if width * height <= max_pixels else 0


@asynccontextmanager
async def admitted(service: ModelService, uploads: list[UploadFile]) -> AsyncIterator[list[bytes]]:
    """Every upload's bytes, once the pixels they declare fit the per-request limit (else 413) and the
    process-wide budget (else 503); the pixels stay reserved until the block ends."""
    datas = [await upload.read() for upload in uploads]
    settings = service.settings
    limit, per_image = settings.max_request_pixels, settings.max_pixels
    total = sum(await run_in_threadpool(lambda: [declared_pixels(data, per_image) for data in datas]))
    if total > limit:
        raise ServiceError(413, "too_many_request_pixels", (
            f"the {len(datas)} images in this request declare {total} pixels in all, more than the limit "
            f"{limit} pixels per request; send them over several requests or downscale them, or raise "
            "ANOMALY_MAX_REQUEST_PIXELS"))
    with service.budget.reserve(total):
        yield datas


async def decode_upload(service: ModelService, detector: Detector, upload: UploadFile, data: bytes,
                        index: int) -> np.ndarray | ServiceError:
    """(C, H, W) float32 in [0, 1] at the model's channel count, or the error naming the problem."""
    name = filename_of(upload, index)
    try:
        return await run_in_threadpool(decode_image, data, detector.config.channels, name=name,
                                       max_pixels=service.settings.max_pixels)
    except ImageDecodeError as error:
        service.metrics.image_errors.labels(decode_error(error).error.code).inc()
        return decode_error(error, name)


def render_heatmap(detector: Detector, array: np.ndarray, prediction: Prediction,
                   fmt: HeatmapFormat) -> HeatmapPublic:
    """The overlay as PNG on the calibrated colour scale, or the raw float32 map, base64-encoded."""
    height, width = prediction.anomaly_map.shape
    if fmt is HeatmapFormat.png:
        data, media_type = encode_png(detector.heatmap(array, prediction)), "image/png"
    else:
        data, media_type = prediction.anomaly_map.astype("<f4").tobytes(), "application/octet-stream"
    return HeatmapPublic(format=fmt, media_type=media_type, width=width, height=height,
                         data=base64.b64encode(data).decode())


async def score_uploads(service: ModelService, uploads: list[UploadFile], *, threshold: float | None,
                        heatmap: HeatmapFormat, regions: bool) -> tuple[Detector, list[ImageResultPublic]]:
    """Score every upload with one model (a reload mid-request does not mix versions)."""
    detector = service.detector
    async with admitted(service, uploads) as datas:
        return detector, await _score(service, detector, uploads, datas, threshold, heatmap, regions)


async def _score(service: ModelService, detector: Detector, uploads: list[UploadFile], datas: list[bytes],
                 threshold: float | None, heatmap: HeatmapFormat, regions: bool) -> list[ImageResultPublic]:
    with service.batcher.incoming(len(uploads)):
        decoded = await asyncio.gather(*(decode_upload(service, detector, upload, data, i)
                                         for i, (upload, data) in enumerate(zip(uploads, datas))))
    good = [(i, a) for i, a in enumerate(decoded) if isinstance(a, np.ndarray)]
    if not good:
        raise decoded[0]  # nothing usable: the request fails with the first file's error
    predictions = await service.batcher.submit(detector, [a for _, a in good], threshold)
    results: list[ImageResultPublic] = [
        ImageResultPublic(filename=filename_of(u, i), error=d.error) if isinstance(d, ServiceError) else None
        for i, (u, d) in enumerate(zip(uploads, decoded))]
    version = version_label(detector)
    for (i, array), p in zip(good, predictions):
        service.metrics.observe_prediction(version, p.normalised_score, p.is_anomalous)
        rendered = None
        if heatmap is not HeatmapFormat.none:
            rendered = await run_in_threadpool(render_heatmap, detector, array, p, heatmap)
        results[i] = ImageResultPublic(
            filename=filename_of(uploads[i], i), width=array.shape[2], height=array.shape[1], score=p.score,
            normalised_score=p.normalised_score, threshold=p.threshold, is_anomalous=p.is_anomalous,
            regions=[RegionPublic(bbox=r.bbox, area=r.area, peak=r.peak) for r in p.regions] if regions else None,
            heatmap=rendered)
    return results


async def overlay_png(service: ModelService, upload: UploadFile) -> tuple[Detector, bytes]:
    """One upload -> (the model that scored it, PNG overlay at the image's own resolution on the calibrated
    colour scale)."""
    detector = service.detector
    async with admitted(service, [upload]) as [data]:
        with service.batcher.incoming(1):
            array = await decode_upload(service, detector, upload, data, 0)
        if isinstance(array, ServiceError):
            raise array
        [prediction] = await service.batcher.submit(detector, [array])
        service.metrics.observe_prediction(version_label(detector), prediction.normalised_score,
                                           prediction.is_anomalous)
        return detector, await run_in_threadpool(lambda: encode_png(detector.heatmap(array, prediction)))
