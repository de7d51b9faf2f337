"""Every error the service returns is JSON `ErrorPublic` {code, detail}: one mapping, here.

Bad input is always a 4xx naming the problem; `ImageDecodeError` messages (which already name the
file and the fix) are classified once, in `decode_error`, for both single-file responses and the
per-file errors inside a multi-file response.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from anomaly.data import ImageDecodeError
from service.schemas import ErrorPublic

# (substring of the lower-cased ImageDecodeError message, HTTP status, code); first match wins
_DECODE_RULES = (
    ("empty file", 400, "empty_file"),
    ("more than the limit", 413, "too_many_pixels"),
    ("too many pixels", 413, "too_many_pixels"),
    ("truncated", 422, "truncated_image"),
    ("unsupported mode", 422, "unsupported_mode"),
    ("float image", 422, "unsupported_values"),
)
_HTTP_CODES = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed", 413: "too_many_bytes"}


class ServiceError(Exception):
    """A request the service refuses (or a reload that failed): status + ErrorPublic."""

    def __init__(self, status: int, code: str, detail: str, filename: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.headers = status, headers
        self.error = ErrorPublic(code=code, detail=detail, filename=filename)


def decode_error(error: ImageDecodeError, filename: str | None = None) -> ServiceError:
    """An image that could not be decoded -> 400 (empty), 413 (too many pixels) or 422 (the rest)."""
    text = str(error)
    status, code = next(((s, c) for key, s, c in _DECODE_RULES if key in text.lower()), (422, "not_an_image"))
    return ServiceError(status, code, text, filename)


def _json(status: int, error: ErrorPublic, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error.model_dump(exclude_none=True), status_code=status, headers=headers)


async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
    return _json(exc.status, exc.error, exc.headers)


async def _decode_error(request: Request, exc: ImageDecodeError) -> JSONResponse:
    return await _service_error(request, decode_error(exc))


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()))
        if where in ("body", "body.files") and error.get("type") == "missing":
            detail = ("no image received: send multipart/form-data with one or more `files` parts, "
                      "e.g. curl -F files=@part.png")
            return _json(422, ErrorPublic(code="no_files", detail=detail))
        if where == "body.files" and error.get("type") == "too_long":
            count, limit = error["ctx"].get("actual_length"), error["ctx"].get("max_length")
            detail = (f"received {count} files, more than the limit {limit} per request; split them over "
                      "several requests or raise ANOMALY_MAX_FILES")
            return _json(422, ErrorPublic(code="too_many_files", detail=detail))
        received = f" (received {error['input']!r:.80})" if "input" in error and error["input"] is not None else ""
        problems.append(f"{where}: {error.get('msg')}{received}")
    return _json(422, ErrorPublic(code="invalid_request", detail="; ".join(problems) + "; see /docs"))


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    return _json(exc.status_code, ErrorPublic(code=code, detail=str(exc.detail)), exc.headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(ImageDecodeError, _decode_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)


# documented on every route that takes images, so clients (and schemathesis) know the error shape
ERROR_RESPONSES = {status: {"model": ErrorPublic, "description": text} for status, text in {
    400: "empty file", 401: "missing or wrong API key", 413: "too many bytes or pixels",
    422: "not an image, truncated, unsupported mode, too many files, or invalid parameters"}.items()}
