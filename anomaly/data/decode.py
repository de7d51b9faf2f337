"""Decode image files into float arrays, and the one resize used everywhere.

Every image, whatever its mode or bit depth, becomes a ``(C, H, W) float32`` array in
``[0, 1]`` with ``C`` in ``{1, 3}``; every failure becomes an :class:`ImageDecodeError`
that names the source and the problem, with a machine-readable ``kind``.

Rules (applied in this order):

* EXIF orientation is applied (``PIL.ImageOps.exif_transpose``), so the array is upright.
* Alpha is dropped, never composited: the colour channels are used as stored.
* 8-bit values are divided by 255; 16-bit values (``I;16*``, and mode ``I`` when any value
  exceeds 255) by 65535. Mode ``I`` with every value <= 255 is read as 8-bit; mode ``I``
  values outside ``[0, 65535]`` are clipped.
* Mode ``F`` (float): kept as is if all values lie in ``[0, 1]``, else divided by 255 if
  they lie in ``[0, 255]``, else by 65535 if in ``[0, 65535]``; anything else (negative,
  larger, NaN or infinite) is an error, since no scale can be guessed safely.
* Colour to one channel: ITU-R BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` computed in
  float. Grey to three channels repeats the channel.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 64_000_000
GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


DECODE_ERROR_KINDS = frozenset(
    {"empty", "not_found", "not_image", "corrupt", "truncated", "too_many_pixels",
     "unsupported_mode", "bad_values", "invalid"}
)


class ImageDecodeError(ValueError):
    """An image could not be decoded; the message names the source and the problem.

    ``kind`` says which problem, for code that must not parse the message (which starts with the
    file's name): one of :data:`DECODE_ERROR_KINDS`, ``"invalid"`` when the raiser gave none.
    """

    def __init__(self, message: str, kind: str = "invalid") -> None:
        if kind not in DECODE_ERROR_KINDS:
            raise ValueError(
                f"unknown ImageDecodeError kind {kind!r}; "
                f"expected one of {sorted(DECODE_ERROR_KINDS)}"
            )
        super().__init__(message)
        self.kind = kind

    def __reduce__(self):  # keep `kind` across pickling (data-loader workers)
        return type(self), (str(self), self.kind)


def _label(source: str | Path | bytes, name: str | None) -> str:
    if name is not None:
        return name
    return "<bytes>" if isinstance(source, (bytes, bytearray, memoryview)) else str(source)


def _open(source: str | Path | bytes, label: str, max_pixels: int) -> Image.Image:
    """Open ``source`` lazily (header only) and check its declared size against ``max_pixels``."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise ImageDecodeError(f"{label}: empty file (0 bytes)", "empty")
        stream: io.BytesIO | Path = io.BytesIO(data)
    else:
        stream = Path(source)
        if not stream.is_file():
            raise ImageDecodeError(f"{label}: file not found; check the path", "not_found")
        if stream.stat().st_size == 0:
            raise ImageDecodeError(
                f"{label}: empty file (0 bytes); re-export or remove it", "empty"
            )
    try:
        img = Image.open(stream)
    except UnidentifiedImageError as exc:
        raise ImageDecodeError(
            f"{label}: not an image (PIL cannot identify the format: {exc}); "
            "expected PNG, JPEG, BMP, TIFF or WebP",
            "not_image",
        ) from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        count = found.group(1) if found else "too many"
        raise ImageDecodeError(
            f"{label}: image has {count} pixels, more than the limit {max_pixels}; "
            "downscale it first",
            "too_many_pixels",
        ) from exc
    except Exception as exc:
        raise _failure(exc, label, "not an image", "not_image") from exc
    width, height = img.size
    if width * height > max_pixels:
        img.close()
        raise ImageDecodeError(
            f"{label}: image has {width * height} pixels ({width}x{height}), more than the "
            f"limit {max_pixels}; downscale it first or raise max_pixels",
            "too_many_pixels",
        )
    return img


def _failure(exc: Exception, label: str, problem: str, kind: str) -> ImageDecodeError:
    """Turn any PIL exception into an ImageDecodeError of ``kind``; truncation gets its own."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, EOFError) or "truncat" in text.lower() or "broken" in text.lower():
        return ImageDecodeError(
            f"{label}: truncated image ({text}); the file is incomplete, copy or export it again",
            "truncated",
        )
    return ImageDecodeError(f"{label}: {problem} ({type(exc).__name__}: {text})", kind)


def _load(img: Image.Image, label: str) -> Image.Image:
    """Decode every pixel (truncation surfaces here) and apply EXIF orientation."""
    try:
        img.load()
        ImageOps.exif_transpose(img, in_place=True)  # in place: an upright image is not copied
        return img
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(
            f"{label}: image has too many pixels ({exc})", "too_many_pixels"
        ) from exc
    except Exception as exc:
        raise _failure(exc, label, "cannot decode image", "corrupt") from exc


def _float_scale(values: np.ndarray, label: str) -> np.ndarray:
    if not np.isfinite(values).all():
        raise ImageDecodeError(
            f"{label}: float image contains NaN or infinite values", "bad_values"
        )
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    for top in (1.0, 255.0, 65535.0):
        if lo >= 0.0 and hi <= top:
            return values / np.float32(top)
    raise ImageDecodeError(
        f"{label}: float image has values in [{lo:g}, {hi:g}], outside [0, 1], [0, 255] "
        "and [0, 65535]; rescale it to [0, 1]",
        "bad_values",
    )


def _to_array(img: Image.Image, label: str) -> np.ndarray:
    """``img`` in any supported mode -> ``(C, H, W) float32`` in ``[0, 1]``, C in {1, 3}."""
    mode = img.mode
    if mode in ("1", "L", "LA", "La"):
        grey = img if mode == "L" else img.getchannel("L") if mode == "LA" else img.convert("L")
        arr = np.asarray(grey).astype(np.float32)[None] / np.float32(255)
    elif mode.startswith("I;16"):
        arr = np.clip(np.asarray(img).astype(np.float32), 0.0, 65535.0)[None] / np.float32(65535)
    elif mode == "I":
        values = np.asarray(img).astype(np.float32)
        scale = 65535.0 if values.size and values.max() > 255 else 255.0
        arr = np.clip(values, 0.0, scale)[None] / np.float32(scale)
    elif mode == "F":
        arr = _float_scale(np.asarray(img).astype(np.float32), label)[None]
    elif mode in ("RGB", "RGBA", "RGBX", "RGBa", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"):
        if mode == "P" and "transparency" in img.info:
            img = img.convert("RGBA")  # PIL asks for RGBA when a palette has transparency
        rgb = img if mode == "RGB" else img.convert("RGB")
        arr = np.asarray(rgb).astype(np.float32).transpose(2, 0, 1) / np.float32(255)
    else:
        raise ImageDecodeError(
            f"{label}: unsupported mode {mode}; convert it to RGB or 8/16-bit greyscale",
            "unsupported_mode",
        )
    return np.ascontiguousarray(arr, dtype=np.float32)  # every branch above is within [0, 1]


def decode_image(
    source: str | Path | bytes,
    channels: int,
    *,
    name: str | None = None,
    max_pixels: int = MAX_PIXELS,
) -> np.ndarray:
    """Decode an image file or its bytes.

    Parameters
    ----------
    source : a file path, or the encoded bytes.
    channels : 1 (grey) or 3 (RGB) channels in the result.
    name : what error messages call the source (default: the path, or ``"<bytes>"``).
    max_pixels : images declaring more pixels (width * height) are refused before decoding.

    Returns
    -------
    ``(channels, H, W) float32`` in ``[0, 1]``, upright per EXIF orientation.

    Raises
    ------
    ImageDecodeError : empty, not an image, truncated, too large or unsupported; ``kind`` says
        which.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    label = _label(source, name)
    with _open(source, label, max_pixels) as img:
        upright = _load(img, label)
        try:
            arr = _to_array(upright, label)
        except ImageDecodeError:
            raise
        except Exception as exc:  # e.g. a conversion PIL does not implement
            raise ImageDecodeError(
                f"{label}: unsupported mode {upright.mode} ({exc}); convert it to RGB or "
                "8/16-bit greyscale",
                "unsupported_mode",
            ) from exc
    if arr.shape[0] == channels:
        return arr
    if channels == 3:
        return np.repeat(arr, 3, axis=0)
    return np.tensordot(_LUMA, arr, axes=1)[None].astype(np.float32)


def decode_mask(source: str | Path | bytes, *, name: str | None = None) -> np.ndarray:
    """Decode a defect mask: ``(H, W) bool``, True where the 8-bit grey value is >= 128.

    16-bit masks are scaled to 8 bits first (so >= 32768 is True); colour masks use luma.
    """
    grey = decode_image(source, 1, name=name)[0]
    return grey >= 0.5  # v / 255 >= 0.5  <=>  v >= 128 for integer v, and v16 >= 32768


def image_mode(source: str | Path, *, max_pixels: int = MAX_PIXELS) -> str:
    """Read only the header of ``source``; return its PIL mode. Raises ImageDecodeError."""
    label = _label(source, None)
    with _open(source, label, max_pixels) as img:
        return img.mode


def image_shape(source: str | Path, *, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """Read only the header of ``source``; return its stored (height, width), before any EXIF rotation. Raises
    ImageDecodeError."""
    with _open(source, _label(source, None), max_pixels) as img:
        return img.height, img.width


def guess_channels(paths: Sequence[Path], n: int = 8) -> int:
    """1 if the first ``n`` readable images are all grey modes, else 3 (also when none are)."""
    modes: list[str] = []
    for path in paths:
        try:
            modes.append(image_mode(path))
        except ImageDecodeError:
            continue
        if len(modes) >= n:
            break
    return 1 if modes and all(m in GREY_MODES for m in modes) else 3


def resize(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a float batch ``(B, C, H, W) -> (B, C, h, w)``, ``size = (h, w)``.

    Bilinear, ``antialias=True``, ``align_corners=False``; the single resize shared by
    training and inference. Weights are non-negative, so ``[0, 1]`` stays ``[0, 1]``.
    """
    if images.ndim != 4:
        raise ValueError(f"resize expects (B, C, H, W), got shape {tuple(images.shape)}")
    h, w = int(size[0]), int(size[1])
    if (images.shape[-2], images.shape[-1]) == (h, w):
        return images
    return F.interpolate(images, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
