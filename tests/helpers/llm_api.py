"""A loopback fake of the OpenAI and Anthropic HTTP APIs, for driving the real `openai` and
`anthropic` packages: chat completions and messages, plain or streamed (server-sent events with a
delay between chunks), scripted failures (429s with the real error bodies, 500s), and every
request recorded with its headers."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "fake-model"


@dataclass
class Request:
    """One request as the fake saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any  # the decoded JSON body, or None


@dataclass
class Failure:
    """An error answer: its status, and the error's code (OpenAI `code`, Anthropic `type`)."""

    status: int
    code: str = "rate_limit_exceeded"
    message: str = "Rate limit reached for requests"


class FakeLLMAPI:
    """OpenAI (`/v1/chat/completions`) and Anthropic (`/v1/messages`) on an ephemeral 127.0.0.1 port.

    A reply's text is `chunks` joined; a streamed reply sends one event per chunk, `chunk_delay`
    seconds apart. `fail(...)` queues error answers that come before the next successes.
    """

    def __init__(self, chunks: tuple[str, ...] = ("Hel", "lo", " world"), chunk_delay: float = 0.0) -> None:
        self.chunks = chunks
        self.chunk_delay = chunk_delay
        self.requests: list[Request] = []
        self._failures: deque[Failure] = deque()
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake._serve(self)

            def do_POST(self) -> None:
                fake._serve(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The base URL (Anthropic's `base_url`); OpenAI's is `openai_url`."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def openai_url(self) -> str:
        return f"{self.url}/v1"

    def fail(self, status: int, times: int = 1, code: str = "rate_limit_exceeded", message: str = "") -> None:
        """Answer the next `times` requests with `status` and a real-shaped error body."""
        with self._lock:
            for _ in range(times):
                self._failures.append(Failure(status, code, message or Failure.message))

    def paths(self) -> list[str]:
        return [request.path for request in self.requests]

    def __enter__(self) -> FakeLLMAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- serving ------------------------------------------------------------------------------

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        path = handler.path.split("?", 1)[0]
        with self._lock:
            self.requests.append(
                Request(handler.command, path, {k.lower(): v for k, v in handler.headers.items()}, body)
            )
            failure = self._failures.popleft() if self._failures else None
        anthropic = path.endswith("/messages")
        if failure is not None:
            self._send_json(handler, failure.status, _error_body(failure, anthropic), {"retry-after-ms": "1"})
        elif path.endswith("/chat/completions") or anthropic:
            streamed = isinstance(body, dict) and body.get("stream") is True
            if streamed:
                self._stream(handler, _anthropic_events(self.chunks) if anthropic else _openai_events(self.chunks))
            else:
                reply = _anthropic_message(self.chunks) if anthropic else _openai_completion(self.chunks)
                self._send_json(handler, 200, reply)
        elif path.endswith("/models"):
            self._send_json(
                handler,
                200,
                {"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "fake"}]},
            )
        else:
            self._send_json(handler, 404, {"error": {"message": f"no route {path}", "type": "invalid_request_error"}})

    @staticmethod
    def _send_json(
        handler: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)

    def _stream(self, handler: BaseHTTPRequestHandler, events: list[tuple[str | None, str]]) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for index, (event, data) in enumerate(events):
            if index and self.chunk_delay:
                time.sleep(self.chunk_delay)
            text = (f"event: {event}\n" if event else "") + f"data: {data}\n\n"
            payload = text.encode()
            handler.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
            handler.wfile.flush()
        handler.wfile.write(b"0\r\n\r\n")
        handler.wfile.flush()


def _error_body(failure: Failure, anthropic: bool) -> dict[str, Any]:
    if anthropic:
        return {"type": "error", "error": {"type": failure.code, "message": failure.message}}
    return {"error": {"message": failure.message, "type": "requests", "param": None, "code": failure.code}}


def _openai_completion(chunks: tuple[str, ...]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": MODEL,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "".join(chunks)}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": len(chunks), "total_tokens": 3 + len(chunks)},
    }


def _openai_events(chunks: tuple[str, ...]) -> list[tuple[str | None, str]]:
    def chunk(delta: dict[str, Any], finish: str | None) -> tuple[str | None, str]:
        body = {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return None, json.dumps(body)

    events = [chunk({"role": "assistant", "content": text}, None) for text in chunks]
    return [*events, chunk({}, "stop"), (None, "[DONE]")]


def _anthropic_message(chunks: tuple[str, ...]) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [{"type": "text", "text": "".join(chunks)}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": len(chunks)},
    }


def _anthropic_events(chunks: tuple[str, ...]) -> list[tuple[str | None, str]]:
    start = {**_anthropic_message(()), "content": [], "stop_reason": None}
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start}),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
    ]
    for text in chunks:
        delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}
        events.append(("content_block_delta", delta))
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": len(chunks)},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return [(name, json.dumps(data)) for name, data in events]
