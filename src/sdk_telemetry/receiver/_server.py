"""How `sdk-telemetry serve` runs the receiver under uvicorn, bounded: at most `max_connections`
connections and requests at once (503 beyond), `header_timeout` seconds for a request's headers
from its first byte (or from the connection), and idle keep-alive connections closed after
`keep_alive_timeout` seconds; so that slow or idle clients cannot hold every file descriptor."""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from sdk_telemetry.receiver._settings import ReceiverSettings


class HeaderTimeoutProtocol(HttpToolsProtocol):  # type: ignore[misc]
    """uvicorn's httptools protocol, closing a connection whose request headers do not all arrive
    within `header_timeout` seconds (uvicorn itself waits for them forever)."""

    header_timeout = 10.0
    #: Connections closed for slow headers, since the start (all servers of this class).
    closed_slow = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm_header_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        type(self).closed_slow += 1
        self.transport.close()


def uvicorn_config(app: Any, settings: ReceiverSettings, **options: Any) -> uvicorn.Config:
    """The uvicorn configuration that serves `app` within `settings`' connection limits."""
    protocol = type("ReceiverProtocol", (HeaderTimeoutProtocol,), {"header_timeout": settings.header_timeout})
    return uvicorn.Config(
        app,
        http=protocol,
        limit_concurrency=settings.max_connections,
        timeout_keep_alive=max(1, round(settings.keep_alive_timeout)),
        log_level="warning",
        access_log=False,
        **options,
    )
