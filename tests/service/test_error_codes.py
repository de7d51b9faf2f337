"""docs/service.md's error table is every code the service can answer, and real responses match it;
`/v1/heatmap` takes exactly one file; any finite threshold keeps `normalised_score` inside (0, 1)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import httpx
import pytest
from PIL import Image

from service.errors import _DECODE_STATUS, _HTTP_CODES

from .conftest import KEY, NORMAL_JPG
from .test_bad_input import BAD, _noise_png
from .test_hostile_clients import _connect, _head, _until_closed

ROOT = Path(__file__).parents[2]

# codes no request of a test can (or should) provoke here, and where they are proved instead
NOT_BY_REQUEST = {
    "internal_error": "a fault of the service itself",
    "unsupported_mode": "test_bad_input.py::test_error_mapping_of_kinds_no_file_can_trigger",
    "unsupported_values": "test_bad_input.py::test_error_mapping_of_kinds_no_file_can_trigger",
    "reload_failed": "test_auth_reload.py::test_reload_picks_up_a_replaced_bundle_and_survives_a_broken_one",
    "overloaded": "test_load_shedding.py (needs concurrent load)",
}


def documented() -> dict[str, int]:
    """code -> status, from the table under '## Errors' in docs/service.md."""
    section = (ROOT / "docs" / "service.md").read_text().split("## Errors")[1].split("\n## ")[0]
    rows = re.findall(r"^\| (\d{3}) \| (.+?) \|", section, re.MULTILINE)
    return {code: int(status) for status, codes in rows for code in re.findall(r"`(\w+)`", codes)}


def answerable() -> set[str]:
    """Every code in the service's source: ServiceError/error_response/ErrorPublic calls and the two maps."""
    source = "\n".join(path.read_text() for path in (ROOT / "service").glob("*.py"))
    calls = re.findall(r'(?:ServiceError|error_response)\(\s*\d{3},\s*"(\w+)"|code="(\w+)"', source)
    return ({a or b for a, b in calls} | {code for _, code in _DECODE_STATUS.values()}
            | set(_HTTP_CODES.values()))


def test_the_documented_codes_are_the_codes_in_the_source():
    assert set(documented()) == answerable()


def _flat_png(side: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (side, side)).save(buf, "PNG")
    return buf.getvalue()


def _stalled(hostile) -> tuple[int, str]:
    with _connect(hostile) as sock:
        sock.sendall(_head("/v1/predict", 1000, KEY) + b"--b")
        reply = _until_closed(sock).decode()
    return int(reply.split()[1]), re.search(r'"code":"(\w+)"', reply).group(1)


def test_every_documented_code_is_what_the_server_answers(client, hostile, server, monkeypatch):
    jpg = NORMAL_JPG.read_bytes()
    multipart = {"content-type": "multipart/form-data; boundary=b"}
    monkeypatch.setattr(server.app.state.service.settings, "max_request_pixels", 2_500_000)
    requests = {
        "empty_file": lambda: client.post("/v1/predict", files={"files": ("e.png", b"")}),
        "malformed_multipart": lambda: client.post("/v1/predict", content=b"garbage", headers=multipart),
        "unauthorized": lambda: httpx.get(hostile.url + "/v1/model"),
        "not_found": lambda: client.get("/no/such/route"),
        "method_not_allowed": lambda: client.get("/v1/predict"),
        "request_timeout": lambda: _stalled(hostile),
        "too_many_bytes": lambda: client.post("/v1/predict", files={"files": ("big.png", _noise_png(1100))}),
        "too_many_pixels": lambda: client.post("/v1/predict", files={"files": ("bomb.png", BAD["bomb.png"][0])}),
        "too_many_request_pixels": lambda: client.post(
            "/v1/predict", files=[("files", (f"{i}.png", _flat_png(1000))) for i in range(3)]),
        "no_files": lambda: client.post("/v1/predict"),
        "too_many_files": lambda: client.post("/v1/predict", files=[("files", ("a.jpg", jpg))] * 5),
        "not_an_image": lambda: client.post("/v1/predict", files={"files": ("n.png", BAD["notes.png"][0])}),
        "truncated_image": lambda: client.post("/v1/predict", files={"files": ("h.jpg", BAD["half.jpg"][0])}),
        "invalid_request": lambda: client.post("/v1/predict", params={"heatmap": "foo"},
                                               files={"files": ("a.jpg", jpg)}),
    }
    docs = documented()
    assert set(requests) | set(NOT_BY_REQUEST) == set(docs)
    for code, send in requests.items():
        answer = send()
        status, got = answer if isinstance(answer, tuple) else (answer.status_code, answer.json()["code"])
        assert (status, got) == (docs[code], code), code


def test_heatmap_takes_exactly_one_file(client):
    jpg = NORMAL_JPG.read_bytes()
    response = client.post("/v1/heatmap", files=[("file", ("a.jpg", jpg)), ("file", ("b.jpg", jpg))])
    assert response.status_code == 422 and response.json()["code"] == "too_many_files"
    assert "received 2 files" in response.json()["detail"] and "/v1/heatmap" in response.json()["detail"]


def test_more_files_than_the_multipart_parser_takes_is_still_too_many_files(client):
    files = [("files", (f"{i}.png", b"x")) for i in range(1001)]  # Starlette's parser stops at 1000
    response = client.post("/v1/predict", files=files)
    assert response.status_code == 422 and response.json()["code"] == "too_many_files"


@pytest.mark.parametrize("threshold", ["-1e308", "1e308", "-1e30", "1e30", "0"])
def test_any_finite_threshold_keeps_the_normalised_score_inside_0_1(client, threshold):
    response = client.post("/v1/predict", params={"threshold": threshold},
                           files={"files": ("a.jpg", NORMAL_JPG.read_bytes())})
    [result] = response.json()["results"]
    assert 0 < result["normalised_score"] < 1 and result["threshold"] == float(threshold)


@pytest.mark.parametrize("threshold", ["nan", "inf", "-inf", "abc"])
def test_a_threshold_that_is_not_a_finite_number_is_refused(client, threshold):
    response = client.post("/v1/predict", params={"threshold": threshold},
                           files={"files": ("a.jpg", NORMAL_JPG.read_bytes())})
    assert response.status_code == 422 and response.json()["code"] == "invalid_request"
    assert "threshold" in response.json()["detail"]
