"""A real HTTP server on 127.0.0.1 that records what it receives and answers as scripted."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        body = gzip.decompress(self.body) if self.headers.get("content-encoding") == "gzip" else self.body
        return json.loads(body)


@dataclass
class Reply:
    """What to answer: a status, headers, a body, an optional delay, or never (hang until stopped)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b'{"status": "accepted"}'
    delay: float = 0.0
    hang: bool = False


class LoopbackServer:
    """`ThreadingHTTPServer` on an ephemeral loopback port.

    `script` is a function from the received request to a `Reply` (default: 200). Requests are
    recorded in `received` whatever the reply.
    """

    def __init__(self, script: Callable[[Received], Reply] | None = None) -> None:
        self.received: list[Received] = []
        self.script = script or (lambda request: Reply())
        self._lock = threading.Lock()
        self._stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else every answer waits ~40 ms for the client's delayed ACK

            def log_message(self, format: str, *args: Any) -> None:  # silence the default stderr log
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Received(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic()
                )
                with server._lock:
                    server.received.append(request)
                reply = server.script(request)
                if reply.hang:
                    server._stop.wait(60)
                    self.close_connection = True
                    return
                if reply.delay:
                    server._stop.wait(reply.delay)
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_POST = do_GET = do_PUT = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def requests_to(self, path: str) -> list[Received]:
        with self._lock:
            return [request for request in self.received if request.path == path]

    def wait_for(self, path: str, count: int = 1, timeout: float = 10.0) -> list[Received]:
        """Wait until `count` requests reached `path`; returns them (fewer if the time ran out)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.requests_to(path)
            if len(found) >= count:
                return found
            time.sleep(0.01)
        return self.requests_to(path)
