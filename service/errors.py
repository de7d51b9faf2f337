"""Every error the service returns is JSON `ErrorPublic` {code, detail}: one mapping, here.

Bad input is always a 4xx naming the problem; an `ImageDecodeError` (whose message already names the
file and the fix) is classified by its `kind`, never by its text (which starts with the file's name),
once, in `decode_error`, for both single-file responses and the per-file errors inside a multi-file
response. Anything unexpected is a 500 `internal_error` in the same JSON shape.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from anomaly.data import ImageDecodeError
from service.schemas import ErrorPublic

# ImageDecodeError.kind -> (HTTP status, code); any other kind (e.g. "invalid") -> 422 not_an_image
_DECODE_STATUS = {
    "empty": (400, "empty_file"),
    "too_many_pixels": (413, "too_many_pixels"),
    "truncated": (422, "truncated_image"),
    "unsupported_mode": (422, "unsupported_mode"),
    "bad_values": (422, "unsupported_values"),
    "not_image": (422, "not_an_image"),
    "corrupt": (422, "not_an_image"),
}
# the HTTPExceptions Starlette and our middleware raise; 400 comes only from the multipart parser
_HTTP_CODES = {400: "malformed_multipart", 404: "not_found", 405: "method_not_allowed", 408: "request_timeout",
               413: "too_many_bytes"}


class ServiceError(Exception):
    """A request the service refuses (or a reload that failed): status + ErrorPublic."""

    def __init__(self, status: int, code: str, detail: str, filename: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.headers = status, headers
        self.error = ErrorPublic(code=code, detail=detail, filename=filename)


def decode_error(error: ImageDecodeError, filename: str | None = None) -> ServiceError:
    """An image that could not be decoded -> 400 (empty), 413 (too many pixels) or 422 (the rest),
    chosen by `error.kind`."""
    status, code = _DECODE_STATUS.get(error.kind, (422, "not_an_image"))
    return ServiceError(status, code, str(error), filename)


def _json(status: int, error: ErrorPublic, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error.model_dump(exclude_none=True), status_code=status, headers=headers)


def error_response(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The error JSON, for middleware that answers before the app (and its handlers) run."""
    return _json(status, ErrorPublic(code=code, detail=detail), headers)


def too_many_files(count: int | str, limit: int, route: str = "/v1/predict") -> ErrorPublic:
    return ErrorPublic(code="too_many_files", detail=(
        f"received {count} files, more than the limit {limit} per request for {route}; split them over "
        "several requests" + (" or raise ANOMALY_MAX_FILES" if route == "/v1/predict" else "")))


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
            return _json(422, too_many_files(error["ctx"].get("actual_length"), error["ctx"].get("max_length")))
        received = f" (received {error['input']!r:.80})" if "input" in error and error["input"] is not None else ""
        problems.append(f"{where}: {error.get('msg')}{received}")
    return _json(422, ErrorPublic(code="invalid_request", detail="; ".join(problems) + "; see /docs"))


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    detail = str(exc.detail)
    if exc.status_code == 400:  # Starlette's multipart parser, which also caps the files at 1000
        if detail.startswith("Too many files"):
            return _json(422, too_many_files("over 1000", request.app.state.settings.max_files))
        detail = (f"the multipart body cannot be parsed ({detail}); send multipart/form-data with one image "
                  "per `files` part, e.g. curl -F files=@part.png")
    return _json(exc.status_code, ErrorPublic(code=_HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}"),
                                              detail=detail), exc.headers)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """Last resort (Starlette's ServerErrorMiddleware, outside MetricsMiddleware, which counts the 500):
    the same JSON shape as every other error. Starlette re-raises `exc` afterwards, so the server
    (uvicorn) logs the traceback and closes the connection: `Connection: close` tells the client not to
    reuse it."""
    detail = (f"internal error ({type(exc).__name__}) while handling {request.method} {request.url.path}; "
              "the request itself may be fine: retry, and report it with the time if it persists")
    return _json(500, ErrorPublic(code="internal_error", detail=detail), {"Connection": "close"})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(ImageDecodeError, _decode_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)


# documented on every route that takes images, so clients (and schemathesis) know the error shape
ERROR_RESPONSES = {status: {"model": ErrorPublic, "description": text} for status, text in {
    400: "empty file, or a multipart body that cannot be parsed", 401: "missing or wrong API key",
    408: "the body did not arrive in time", 413: "too many bytes or pixels (per image or request)",
    422: "not an image, truncated, unsupported mode, too many files, or invalid parameters",
    503: "busy: too many pixels in flight; retry after Retry-After seconds"}.items()}
