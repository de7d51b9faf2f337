"""Request body limit: a declared Content-Length above it is refused before reading a byte; a chunked
body is counted as it streams and refused (413) as soon as it passes the limit."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


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
            body = {"code": "too_many_bytes", "detail": _too_large(declared.decode(), self.max_bytes)}
            await JSONResponse(body, status_code=413, headers={"Connection": "close"})(scope, receive, send)
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
