"""Decoding every mode, EXIF orientation, broken files, masks, channel guessing, resize."""

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from anomaly.data import ImageDecodeError, decode_image, decode_mask, guess_channels, image_shape, resize

SAMPLE_JPEG = Path(__file__).parents[2] / "anomaly/sample/MT_Free/Imgs/exp4_num_148998.jpg"
LUMA = np.array([0.299, 0.587, 0.114])


def _grey(values, scale):
    """(H, W) integer values -> expected (3, H, W) float64 in [0, 1]."""
    return np.repeat(np.asarray(values, dtype=np.float64)[None] / scale, 3, axis=0)


def _rgb(values):
    return np.asarray(values, dtype=np.float64).transpose(2, 0, 1) / 255.0


GREY8 = np.array([[0, 1, 127], [128, 200, 255]], dtype=np.uint8)
GREY16 = np.array([[0, 1, 255], [256, 40000, 65535]], dtype=np.uint16)
RGB8 = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]], [[10, 20, 30], [255, 255, 255], [0, 0, 0]]], np.uint8)


def _save(img, path, fmt, **kw):
    img.save(path, fmt, **kw)
    return path


def _palette(tmp_path, transparency):
    img = Image.new("P", (3, 2))
    img.putpalette([200, 100, 50, 10, 20, 30])
    img.putpixel((1, 0), 1)
    if transparency:
        img.info["transparency"] = 0  # index 0 fully transparent: alpha is dropped, colour kept
    return _save(img, tmp_path / "p.png", "PNG")


PALETTE_RGB = _rgb([[[200, 100, 50], [10, 20, 30], [200, 100, 50]], [[200, 100, 50]] * 3])


def _i16(tmp_path, mode, fmt):
    img = Image.new(mode, (3, 2))
    img.putdata(GREY16.flatten().tolist())
    return _save(img, tmp_path / f"i16.{fmt.lower()}", fmt)


# name -> (builder(tmp_path) -> path, expected (3, H, W), tolerance)
CASES = {
    "1": (lambda t: _save(Image.fromarray(GREY8 >= 128), t / "b.png", "PNG"), _grey(GREY8 >= 128, 1), 0),
    "L": (lambda t: _save(Image.fromarray(GREY8), t / "l.png", "PNG"), _grey(GREY8, 255), 1e-6),
    "LA": (lambda t: _save(Image.fromarray(np.stack([GREY8, 255 - GREY8], -1), "LA"), t / "la.png", "PNG"),
           _grey(GREY8, 255), 1e-6),
    "P": (lambda t: _palette(t, False), PALETTE_RGB, 1e-6),
    "P+transparency": (lambda t: _palette(t, True), PALETTE_RGB, 1e-6),
    "RGB": (lambda t: _save(Image.fromarray(RGB8), t / "rgb.png", "PNG"), _rgb(RGB8), 1e-6),
    "RGBA": (lambda t: _save(Image.fromarray(np.concatenate([RGB8, np.zeros((2, 3, 1), np.uint8)], -1)),
                             t / "rgba.png", "PNG"), _rgb(RGB8), 1e-6),
    "CMYK-jpeg": (lambda t: _save(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), t / "cmyk.jpg", "JPEG", quality=100),
                  _rgb(np.full((8, 8, 3), [255, 0, 0])), 3 / 255),
    "YCbCr-tiff": (lambda t: _save(Image.new("YCbCr", (4, 4), (100, 128, 128)), t / "ycc.tif", "TIFF"),
                   _grey(np.full((4, 4), 100), 255), 2 / 255),
    "I;16-png": (lambda t: _i16(t, "I;16", "PNG"), _grey(GREY16, 65535), 1e-6),
    "I;16B-tiff": (lambda t: _i16(t, "I;16B", "TIFF"), _grey(GREY16, 65535), 1e-6),
    "I-16bit-tiff": (lambda t: _save(Image.fromarray(GREY16.astype(np.int32)), t / "i.tif", "TIFF"),
                     _grey(GREY16, 65535), 1e-6),
    "I-8bit-tiff": (lambda t: _save(Image.fromarray(GREY8.astype(np.int32)), t / "i8.tif", "TIFF"),
                    _grey(GREY8, 255), 1e-6),
    "F-unit-tiff": (lambda t: _save(Image.fromarray(np.array([[0.0, 0.25], [0.5, 1.0]], np.float32)), t / "f.tif", "TIFF"),
                    _grey([[0.0, 0.25], [0.5, 1.0]], 1), 1e-6),
    "F-255-tiff": (lambda t: _save(Image.fromarray(np.array([[0.0, 51.0], [127.5, 255.0]], np.float32)), t / "f.tif", "TIFF"),
                   _grey([[0.0, 51.0], [127.5, 255.0]], 255), 1e-6),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("channels", [1, 3])
def test_every_mode_round_trips(tmp_path, case, channels):
    build, expected, tol = CASES[case]
    path = build(tmp_path)
    out = decode_image(path, channels)
    if channels == 1:
        expected = np.tensordot(LUMA, expected, axes=1)[None]
    assert out.shape == expected.shape
    assert out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    np.testing.assert_allclose(out, expected, atol=tol + 1e-6)


def test_luma_is_bt601():
    buf = io.BytesIO()
    Image.fromarray(np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8)).save(buf, "PNG")
    np.testing.assert_allclose(decode_image(buf.getvalue(), 1)[0, 0], [0.299, 0.587, 0.114], atol=1e-6)


def test_float_image_out_of_known_ranges_is_refused(tmp_path):
    path = _save(Image.fromarray(np.array([[-1.0, 2.0]], np.float32)), tmp_path / "neg.tif", "TIFF")
    with pytest.raises(ImageDecodeError, match=r"neg\.tif.*rescale"):
        decode_image(path, 1)


def test_exif_orientation_6_rotates_clockwise(tmp_path):
    stored = np.zeros((16, 32), np.uint8)  # H=16, W=32; bright top-left block
    stored[:8, :8] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = _save(Image.fromarray(stored), tmp_path / "rot.jpg", "JPEG", exif=exif.tobytes(), quality=95)
    out = decode_image(path, 1)
    assert out.shape == (1, 32, 16)
    assert out[0, 3, -4] > 0.9  # stored top-left -> displayed top-right
    assert out[0, 3, 3] < 0.1 and out[0, -4, -4] < 0.1


def _png_with_declared_size(width, height):
    """A valid PNG signature + IHDR declaring ``width x height``, no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    end = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + chunk + end


def _noise_png():
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


BROKEN = {
    "empty.png": (b"", {}, "empty file"),
    "corrupt.jpg": (bytes(np.random.default_rng(1).integers(0, 256, 500, dtype=np.uint8)), {}, "not an image"),
    "text.png": (b"hello, this is text and not a picture\n" * 5, {}, "not an image"),
    "half.jpg": (SAMPLE_JPEG.read_bytes()[: SAMPLE_JPEG.stat().st_size // 2], {}, "truncated image"),
    "half.png": (_noise_png()[: len(_noise_png()) // 2], {}, "truncated image"),
    "big.png": (_png_with_declared_size(1000, 1000), {"max_pixels": 999_999},
                "image has 1000000 pixels.*more than the limit 999999"),
    "bomb.png": (_png_with_declared_size(100_000, 100_000), {}, "image has 10000000000 pixels"),
}


@pytest.mark.parametrize("filename", list(BROKEN))
def test_broken_files_raise_naming_file_and_problem(tmp_path, filename):
    data, kwargs, problem = BROKEN[filename]
    path = tmp_path / filename
    path.write_bytes(data)
    with pytest.raises(ImageDecodeError, match=problem) as info:
        decode_image(path, 3, **kwargs)
    assert str(path) in str(info.value)
    with pytest.raises(ImageDecodeError, match=problem) as info:  # same from bytes, under a given name
        decode_image(data, 1, name="upload.bin", **kwargs)
    assert str(info.value).startswith("upload.bin: ")


def test_image_shape_reads_the_size_from_the_header(tmp_path):
    Image.new("RGB", (70, 30)).save(tmp_path / "wide.png")
    assert image_shape(tmp_path / "wide.png") == (30, 70) == decode_image(tmp_path / "wide.png", 1).shape[1:]
    for filename in ("empty.png", "bomb.png"):
        (tmp_path / filename).write_bytes(BROKEN[filename][0])
        with pytest.raises(ImageDecodeError, match=BROKEN[filename][2]):
            image_shape(tmp_path / filename)


def test_missing_file_and_bad_channels(tmp_path):
    with pytest.raises(ImageDecodeError, match=r"nope\.png: file not found"):
        decode_image(tmp_path / "nope.png", 1)
    with pytest.raises(ValueError, match="channels must be 1 or 3"):
        decode_image(SAMPLE_JPEG, 2)


def test_decode_from_bytes_matches_path():
    from_bytes = decode_image(SAMPLE_JPEG.read_bytes(), 3)
    np.testing.assert_array_equal(from_bytes, decode_image(SAMPLE_JPEG, 3))
    with pytest.raises(ImageDecodeError, match="^<bytes>: not an image"):
        decode_image(b"garbage", 1)


def test_mask_binarises_at_128(tmp_path):
    path = _save(Image.fromarray(np.array([[0, 127, 128, 255]], np.uint8)), tmp_path / "m.png", "PNG")
    mask = decode_mask(path)
    assert mask.dtype == np.bool_ and mask.shape == (1, 4)
    assert mask.tolist() == [[False, False, True, True]]
    path16 = _save(Image.fromarray(np.array([[32767, 32768]], np.uint16)), tmp_path / "m16.png", "PNG")
    assert decode_mask(path16).tolist() == [[False, True]]


def test_guess_channels(tmp_path):
    grey = [_save(Image.new("L", (4, 4)), tmp_path / f"g{i}.png", "PNG") for i in range(3)]
    colour = _save(Image.new("RGB", (4, 4)), tmp_path / "c.png", "PNG")
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    assert guess_channels([junk, *grey]) == 1
    assert guess_channels([*grey, colour]) == 3
    assert guess_channels([*grey, colour], n=3) == 1  # only the first 3 readable are looked at
    assert guess_channels([junk]) == 3


def test_resize_shapes_and_values():
    images = torch.rand(2, 3, 40, 30)
    out = resize(images, (20, 45))
    assert out.shape == (2, 3, 20, 45) and out.dtype == torch.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert resize(images, (40, 30)) is images
    flat = torch.full((1, 1, 17, 9), 0.25)
    torch.testing.assert_close(resize(flat, (5, 4)), torch.full((1, 1, 5, 4), 0.25))
    # reference: PIL's antialiased bilinear (triangle filter) resize of a float image
    grid = np.random.default_rng(0).random((23, 31)).astype(np.float32)
    pil = np.array(Image.fromarray(grid).resize((12, 9), Image.Resampling.BILINEAR))
    torch.testing.assert_close(resize(torch.from_numpy(grid)[None, None], (9, 12))[0, 0],
                               torch.from_numpy(pil), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        resize(torch.rand(3, 4, 4), (2, 2))
