"""`sdk-telemetry serve` in a thread on 127.0.0.1 for the tests, and a Composio invocation payload."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvicorn

from sdk_telemetry.receiver import ReceiverSettings, create_app, uvicorn_config

KEY = "test-key-0123456789"


@dataclass
class Running:
    url: str
    store: Path
    app: Any
    #: The server's event loop (to run the app's coroutines from a test).
    loop: asyncio.AbstractEventLoop

    def post(
        self, path: str, body: Any = None, *, raw: bytes | None = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        content = raw if raw is not None else orjson.dumps(body)
        sent = {"Content-Type": "application/json", "X-API-Key": KEY, **(headers or {})}
        return httpx.post(self.url + path, content=content, headers={k: v for k, v in sent.items() if v}, timeout=10)

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(self.url + path, params=params, headers={"X-API-Key": KEY}, timeout=10)

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        connection = sqlite3.connect(self.store)
        try:
            return connection.execute(sql, args).fetchall()
        finally:
            connection.close()


@contextlib.contextmanager
def serve(settings: ReceiverSettings, app_factory: Callable[[ReceiverSettings], Any] = create_app) -> Iterator[Running]:
    sock = socket.socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    app = app_factory(settings)
    server = uvicorn.Server(uvicorn_config(app, settings))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(sockets=[sock]),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the receiver did not start"
        time.sleep(0.01)
    try:
        yield Running(f"http://127.0.0.1:{sock.getsockname()[1]}", settings.store_path, app, loop)
    finally:
        server.should_exit = True
        thread.join(10)
        loop.close()


def invocation(i: int, **extra: Any) -> dict[str, Any]:
    payload = {
        "functionName": "Tools.execute",
        "durationMs": float(i),
        "timestamp": 1_700_000_000 + i,
        "source": {"service": "sdk", "language": "python", "environment": "production", "version": "1.2.3"},
        "metadata": {"projectId": "p1", "eventId": f"{i + 1:032x}{i + 1:016x}"},
    }
    payload.update(extra)
    return payload
