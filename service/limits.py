"""What one client, and all of them together, may cost the process.

- `BodyLimitMiddleware`: a declared Content-Length above the limit is refused before reading a byte; a
  chunked body is counted as it streams and refused (413) as soon as it passes the limit.
- `BodyDeadlineMiddleware`: a body must arrive within `total_s` of its headers, with no silence longer
  than `idle_s`; else 408 and the connection is closed (a stalled or trickling upload holds nothing
  for long).
- `PixelBudget`: the decoded pixels of all requests in flight; a request that would pass it is shed
  (503 with Retry-After) before a pixel is decoded.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import ServiceError, error_response
from service.metrics import Metrics

RETRY_AFTER_S = 1


def _too_large(received: str, limit: int) -> str:
    return (f"request body is {received} bytes, more than the limit {limit} bytes; send fewer or smaller "
            "images (downscale or re-encode them), or raise ANOMALY_MAX_REQUEST_BYTES")


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            response = error_response(413, "too_many_bytes", _too_large(declared.decode(), self.max_bytes),
                                      {"Connection": "close"})
            await response(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:  # FastAPI re-raises HTTPException from form parsing -> one handler
                    raise HTTPException(413, _too_large(f"over {self.max_bytes}", self.max_bytes))
            return message

        await self.app(scope, counted, send)


class BodyDeadlineMiddleware:
    def __init__(self, app: ASGIApp, total_s: float, idle_s: float) -> None:
        self.app = app
        self.total_s, self.idle_s = total_s, idle_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline, complete = loop.time() + self.total_s, False

        async def timed() -> Message:
            nonlocal complete
            if complete:  # the body is in: waiting for a disconnect is not the client's delay
                return await receive()
            wait = min(self.idle_s, deadline - loop.time())
            try:
                message = await asyncio.wait_for(receive(), max(wait, 0))
            except TimeoutError:
                raise HTTPException(408, (
                    f"the request body did not arrive in time (at most {self.total_s:g} s for the whole body, "
                    f"{self.idle_s:g} s without a byte); the connection is closed. Send the whole body at "
                    "once, with a Content-Length that matches it"), headers={"Connection": "close"}) from None
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, timed, send)


class PixelBudget:
    """Decoded pixels in flight across every request of the process. Used from the event loop only."""

    def __init__(self, capacity: int, metrics: Metrics) -> None:
        self.capacity, self.metrics = capacity, metrics
        self.in_flight = 0

    @contextlib.contextmanager
    def reserve(self, pixels: int) -> Iterator[None]:
        """Hold `pixels` for the block, or raise 503 `overloaded` (with Retry-After) if they do not fit."""
        if self.in_flight + pixels > self.capacity:
            self.metrics.shed.inc()
            raise ServiceError(503, "overloaded", (
                f"the service is busy: {self.in_flight} pixels are in flight and this request's {pixels} would "
                f"pass the limit {self.capacity} (ANOMALY_MAX_PIXELS_IN_FLIGHT); retry after {RETRY_AFTER_S} s "
                "or on another replica"), headers={"Retry-After": str(RETRY_AFTER_S)})
        self.in_flight += pixels
        self.metrics.pixels_in_flight.set(self.in_flight)
        try:
            yield
        finally:
            self.in_flight -= pixels
            self.metrics.pixels_in_flight.set(self.in_flight)
