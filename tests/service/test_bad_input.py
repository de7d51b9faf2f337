"""Every class of bad input is a 4xx JSON {code, detail} naming the problem; never a 500."""

from __future__ import annotations

import io
import socket
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from anomaly.data import ImageDecodeError
from service.errors import decode_error

from .conftest import NORMAL_JPG


def _png_declaring(width: int, height: int) -> bytes:
    """A PNG signature + IHDR declaring width x height and no pixel data: a decompression bomb's header."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk + struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))


def _noise_png(size: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (size, size), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


BAD = {  # filename: (bytes, status, code, words the detail must contain)
    "empty.png": (b"", 400, "empty_file", "empty file"),
    "notes.png": (b"this is text, not a picture\n" * 4, 422, "not_an_image", "not an image"),
    "half.jpg": (NORMAL_JPG.read_bytes()[: NORMAL_JPG.stat().st_size // 2], 422, "truncated_image", "truncated"),
    "bomb.png": (_png_declaring(50_000, 50_000), 413, "too_many_pixels", "2500000000 pixels"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_file_alone_is_a_4xx_naming_the_file_and_problem(client, name):
    data, status, code, words = BAD[name]
    for route, field in (("/v1/predict", "files"), ("/v1/heatmap", "file")):
        response = client.post(route, files={field: (name, data, "application/octet-stream")})
        assert response.status_code == status, response.text
        body = response.json()
        assert body["code"] == code and name in body["detail"] and words in body["detail"]


def test_one_bad_file_is_reported_while_the_others_are_scored(client):
    files = [("files", ("good.jpg", NORMAL_JPG.read_bytes())), ("files", ("notes.png", BAD["notes.png"][0])),
             ("files", ("again.jpg", NORMAL_JPG.read_bytes()))]
    response = client.post("/v1/predict", files=files)
    assert response.status_code == 200
    good, bad, again = response.json()["results"]
    assert good["score"] is not None and good["error"] is None and again["score"] == good["score"]
    assert bad["score"] is None and bad["error"]["code"] == "not_an_image" and bad["filename"] == "notes.png"


def test_missing_files_field_and_non_multipart_body(client):
    for kwargs in ({}, {"content": b"\x89PNG..."}, {"data": {"other": "x"}}):
        response = client.post("/v1/predict", **kwargs)
        assert response.status_code == 422 and response.json()["code"] == "no_files", kwargs


def test_too_many_files(client):
    files = [("files", (f"{i}.jpg", NORMAL_JPG.read_bytes())) for i in range(5)]  # limit is 4
    response = client.post("/v1/predict", files=files)
    assert response.status_code == 422
    assert response.json()["code"] == "too_many_files" and "5 files" in response.json()["detail"]


def test_too_many_bytes_declared_or_streamed(client, server):
    big = _noise_png(1100)  # ~1.2 MB of incompressible pixels, over the 1 MB request limit
    response = client.post("/v1/predict", files={"files": ("big.png", big)})
    assert response.status_code == 413 and response.json()["code"] == "too_many_bytes"
    assert "1000000" in response.json()["detail"]

    def chunks():  # no Content-Length: counted as it streams
        yield b"--b\r\nContent-Disposition: form-data; name=files; filename=big.png\r\n\r\n"
        for start in range(0, len(big), 65536):
            yield big[start:start + 65536]
        yield b"\r\n--b--\r\n"

    streamed = client.post("/v1/predict", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"})
    assert streamed.status_code == 413 and streamed.json()["code"] == "too_many_bytes"


def test_pixel_limit_is_the_service_setting(client):
    buf = io.BytesIO()
    Image.new("L", (1001, 1000)).save(buf, "PNG")  # a ~1 kB file that decodes to 1,001,000 pixels
    response = client.post("/v1/predict", files={"files": ("flat.png", buf.getvalue())})
    assert response.status_code == 413 and response.json()["code"] == "too_many_pixels"
    assert "more than the limit 1000000" in response.json()["detail"]


def test_garbage_http_does_not_kill_the_server(client, server):
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab")  # then hang up
    assert client.get("/healthz").status_code == 200


MISNAMED = {  # a file name that reads like another problem: (bytes, status, code)
    "empty file.png": (BAD["notes.png"][0], 422, "not_an_image"),
    "truncated.png": (BAD["notes.png"][0], 422, "not_an_image"),
    "too many pixels.jpg": (BAD["half.jpg"][0], 422, "truncated_image"),
    "empty file (0 bytes).png": (BAD["bomb.png"][0], 413, "too_many_pixels"),
}


@pytest.mark.parametrize("name", list(MISNAMED))
def test_status_follows_the_content_never_the_file_name(client, name):
    data, status, code = MISNAMED[name]
    for route, field in (("/v1/predict", "files"), ("/v1/heatmap", "file")):
        response = client.post(route, files={field: (name, data, "application/octet-stream")})
        assert (response.status_code, response.json()["code"]) == (status, code), response.text
    files = [("files", ("good.jpg", NORMAL_JPG.read_bytes())), ("files", (name, data))]
    [_, refused] = client.post("/v1/predict", files=files).json()["results"]
    assert refused["error"]["code"] == code  # the same inside a multi-file response


@pytest.mark.parametrize("kind, status, code", [
    ("unsupported_mode", 422, "unsupported_mode"),
    ("bad_values", 422, "unsupported_values"),
    ("too_many_pixels", 413, "too_many_pixels"),
    ("corrupt", 422, "not_an_image"),
    ("invalid", 422, "not_an_image"),
])
def test_error_mapping_of_kinds_no_file_can_trigger(kind, status, code):
    """PIL opens every file in a mode the decoder handles, so 'unsupported mode' is checked on the mapping;
    the message (here one that names another problem) is passed through, never read."""
    message = "empty file truncated.tif: a problem"
    error = decode_error(ImageDecodeError(message, kind), "x")
    assert (error.status, error.error.code, error.error.detail) == (status, code, message)
    assert ImageDecodeError(message).kind == "invalid"  # the one-argument form still works


def _flat_png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (width, height)).save(buf, "PNG")  # a few kB that decode to width * height pixels
    return buf.getvalue()


def test_pixels_per_request_are_budgeted_from_the_headers(client, server, monkeypatch):
    monkeypatch.setattr(server.app.state.service.settings, "max_request_pixels", 2_500_000)
    flat = _flat_png(1000, 1000)  # 1,000,000 pixels each: at the per-image limit, within it
    files = [("files", (f"{i}.png", flat)) for i in range(3)]
    response = client.post("/v1/predict", files=files)
    assert response.status_code == 413 and response.json()["code"] == "too_many_request_pixels"
    assert "3 images" in response.json()["detail"] and "3000000 pixels" in response.json()["detail"]
    assert "limit 2500000" in response.json()["detail"]
    # files refused on their own (not an image, over the per-image limit) are never decoded: not counted
    files = files[:2] + [("files", ("notes.png", BAD["notes.png"][0])), ("files", ("bomb.png", BAD["bomb.png"][0]))]
    results = client.post("/v1/predict", files=files).json()["results"]
    assert [r["error"] and r["error"]["code"] for r in results] == [None, None, "not_an_image", "too_many_pixels"]
