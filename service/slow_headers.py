"""uvicorn's HTTP protocol with a deadline on request headers (slowloris).

Middleware runs once headers are complete, uvicorn has no header timeout and any byte received stops
its keep-alive timer: a client trickling a header byte a second would hold a connection for ever.
Here a request's headers must be complete within `ANOMALY_HEADER_TIMEOUT_S` of the connection opening
or the request's first byte, else 408 and the connection is closed. `anomaly serve` uses it; with plain
uvicorn pass `--http service.slow_headers:HeaderTimeoutProtocol`.
"""

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol  # uvicorn's default with uvicorn[standard]

from service.config import get_settings

TIMEOUT_408 = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class HeaderTimeoutProtocol(HttpToolsProtocol):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout_s = get_settings().header_timeout_s
        self.header_timer: asyncio.TimerHandle | None = None
        self.request_begun = False  # a 408 only answers a request; a silent connection is just closed

    def _arm(self, seconds: float | None) -> None:  # None: disarm
        if self.header_timer is not None:
            self.header_timer.cancel()
        self.header_timer = None if seconds is None else self.loop.call_later(seconds, self._headers_too_slow)

    def _headers_too_slow(self) -> None:
        if not self.transport.is_closing():
            self.transport.write(TIMEOUT_408 if self.request_begun else b"")
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._arm(None)
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.request_begun = True
        if self.cycle is None or self.cycle.response_complete:  # else timed from that response's end
            self._arm(self.header_timeout_s)

    def on_headers_complete(self) -> None:
        self.request_begun = False
        self._arm(None)
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # backs up uvicorn's keep-alive timer (which blank lines stop), never cutting an idle connection sooner
        if not self.transport.is_closing() and self.cycle.response_complete:
            self._arm(max(self.header_timeout_s, self.timeout_keep_alive))
