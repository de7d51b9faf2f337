"""The API key, checked from the request headers before a byte of the body is read.

A pure ASGI middleware: FastAPI parses a form body before it runs any dependency, so a dependency
would read a 30 MB upload (or choke on broken multipart) before refusing it. Every path needs the key
except the public ones below, unknown paths included (no route discovery without a key).
`routes.py` declares the key in OpenAPI; this is the one place it is checked.
"""

from __future__ import annotations

import secrets

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from service.docs import ASSETS
from service.errors import error_response

PUBLIC_PATHS = frozenset({"/", "/healthz", "/readyz", "/docs", "/redoc", "/openapi.json"})
KEY_HEADER = "X-API-Key"


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(ASSETS + "/")


def given_key(headers: Headers) -> str:
    """The key from `X-API-Key`, else from `Authorization: Bearer <key>`; "" when neither is sent."""
    bearer = headers.get("authorization", "")
    return headers.get(KEY_HEADER, "") or (bearer[7:] if bearer.lower().startswith("bearer ") else "")


class ApiKeyMiddleware:
    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app = app
        self.expected = key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "").removeprefix(scope.get("root_path", ""))
        if scope["type"] != "http" or is_public(path):
            await self.app(scope, receive, send)
            return
        given = given_key(Headers(scope=scope))
        if secrets.compare_digest(given.encode(), self.expected):
            await self.app(scope, receive, send)
            return
        detail = (("missing API key" if not given else "wrong API key")
                  + f": send it as the {KEY_HEADER} header (or Authorization: Bearer <key>)")
        response = error_response(401, "unauthorized", detail, {"WWW-Authenticate": 'Bearer realm="anomaly"'})
        await response(scope, receive, send)
