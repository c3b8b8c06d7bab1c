"""A scripted, fault-injecting HTTP server on 127.0.0.1 that counts the event ids it accepted.

Each request takes the next `Fault` of the plan (then `then`, or `decide(request)` when given):
answer a status (with headers, after a delay), hang without answering, reset the connection
while the request body is still arriving, or answer and break the response half way. The server
can go down (its port refuses connections) and come back on the same port.

An event id counts as *accepted* when the server answered 2xx, or when it processed the request
and broke the response afterwards (`reset="response"`): a real server would have stored it.
"""

from __future__ import annotations

import collections
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .loopback import Received


@dataclass(frozen=True)
class Fault:
    """What to do with one request."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    hang: bool = False
    reset: str | None = None  # "request": RST before the body is read; "response": break the reply midway


OK = Fault()


def event_ids(body: Any) -> list[str]:
    """Event ids in a Composio-style body (an array of payloads or one payload) or a Tinker-style one."""
    if isinstance(body, dict) and isinstance(body.get("events"), list):
        return [str(event.get("event_id")) for event in body["events"] if isinstance(event, dict)]
    payloads = body if isinstance(body, list) else [body]
    ids = []
    for payload in payloads:
        metadata = payload.get("metadata") if isinstance(payload, dict) else None
        if isinstance(metadata, dict) and "eventId" in metadata:
            ids.append(str(metadata["eventId"]))
    return ids


class FaultServer:
    """A `ThreadingHTTPServer` on an ephemeral loopback port that follows a plan of faults."""

    def __init__(
        self,
        plan: Iterable[Fault] = (),
        then: Fault = OK,
        decide: Callable[[Received, list[str]], Fault] | None = None,
    ) -> None:
        self._plan = collections.deque(plan)
        self.then = then
        self.decide = decide
        self.received: list[Received] = []
        self.accepted: collections.Counter[str] = collections.Counter()
        self.outcomes: list[tuple[int | str, int]] = []  # (status or fault, items) per request
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.port = 0
        self.httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- life cycle ------------------------------------------------------------------------

    def __enter__(self) -> FaultServer:
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.down()

    def up(self) -> None:
        """Listen (again, on the same port once one was chosen)."""
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, address: None  # type: ignore[method-assign]  # resets are on purpose
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        self._thread.start()

    def down(self) -> None:
        """Stop listening: new connections are refused until `up()`."""
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    # --- what was received -----------------------------------------------------------------

    def accepted_ids(self) -> set[str]:
        with self._lock:
            return set(self.accepted)

    def duplicates(self) -> int:
        """Extra acceptances of an id beyond its first."""
        with self._lock:
            return sum(count - 1 for count in self.accepted.values())

    def wait_for_ids(self, ids: set[str], timeout: float = 10.0) -> set[str]:
        """Wait until every id in `ids` was accepted; the ids still missing."""
        deadline = time.monotonic() + timeout
        while True:
            missing = ids - self.accepted_ids()
            if not missing or time.monotonic() >= deadline:
                return missing
            time.sleep(0.02)

    # --- the handler -----------------------------------------------------------------------

    def _next(self, request: Received, ids: list[str]) -> Fault:
        with self._lock:
            if self._plan:
                return self._plan.popleft()
        return self.decide(request, ids) if self.decide is not None else self.then

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in two writes: without this, Nagle plus delayed ACKs add 40 ms a reply.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                peek = Received(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, b"", 0.0)
                with server._lock:
                    planned = server._plan.popleft() if server._plan else None
                if planned is not None and planned.reset == "request":
                    self.rfile.read(min(length, 16))
                    server._record(peek, [], "reset-request")
                    self._reset()
                    return
                body = self.rfile.read(length) if length else b""
                request = Received(peek.method, peek.path, peek.headers, body, time.monotonic())
                try:
                    ids = event_ids(json.loads(body)) if body else []
                except ValueError:
                    ids = []
                fault = planned or (server.decide(request, ids) if server.decide is not None else server.then)
                if fault.reset == "request":
                    server._record(request, [], "reset-request")
                    self._reset()
                    return
                if fault.hang:
                    server._record(request, [], "hang")
                    server._stop.wait(60)
                    self.close_connection = True
                    return
                if fault.delay:
                    server._stop.wait(fault.delay)
                accepted = 200 <= fault.status < 300 or fault.reset == "response"
                outcome = fault.status if fault.reset is None else "reset-response"
                server._record(request, ids if accepted else [], outcome)
                payload = b'{"status": "accepted"}'
                self.send_response(fault.status)
                for key, value in fault.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if fault.reset == "response":
                    self.wfile.write(payload[:5])
                    self.wfile.flush()
                    self._reset()
                    return
                self.wfile.write(payload)

            def _reset(self) -> None:
                """Close with RST (SO_LINGER 0), as a crashed peer or a middlebox would."""
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()

        return Handler

    def _record(self, request: Received, accepted_ids: list[str], outcome: int | str) -> None:
        with self._lock:
            self.received.append(request)
            self.accepted.update(accepted_ids)
            self.outcomes.append((outcome, len(accepted_ids)))
