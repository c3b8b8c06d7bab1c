"""A ClickHouse HTTP endpoint on 127.0.0.1 over the real ClickHouse engine (a chDB session), for
driving the real `clickhouse-connect` client: no ClickHouse server can be started here.

It speaks the part of ClickHouse's HTTP interface a client uses: `GET /ping`; `POST` (and read-only
`GET`) `/?query=...` with the rest of the statement, or an INSERT's data, in the body (chunked or not,
compressed with lz4, zstd, gzip or deflate as `Content-Encoding` says); `param_*` query parameters;
`database`; `default_format`; any other query parameter as a setting of that query; the answer in the
format the statement asks for (Native, RowBinaryWithNamesAndTypes, TabSeparated... whatever the engine
emits), compressed as `Accept-Encoding` asks when `enable_http_compression` is on (the engine's
default: on); the `X-ClickHouse-*` headers a client reads (Query-Id, Format, Timezone, Summary,
Exception-Code); credentials from Basic auth, `X-ClickHouse-User/Key` or `user`/`password`.

What it is not: one chDB session serves every request in turn (no concurrency, no HTTP sessions, no
progress headers, no ClickHouse-native `compress`/`decompress` framing, no multipart external data),
and errors answer 4xx (403 bad credentials, 404 unknown table or database, 400 otherwise) where a
server answers 500 for some.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import re
import socket
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import lz4.frame
import orjson
from chdb import session as chdb_session

try:
    from compression import zstd  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # Python < 3.14: the backport clickhouse-connect depends on
    from backports import zstd  # type: ignore[no-redef,import-not-found,unused-ignore]

#: Query parameters that steer the HTTP interface itself, not settings of the query.
TRANSPORT_PARAMETERS = frozenset(
    {
        "query",
        "database",
        "default_format",
        "user",
        "password",
        "session_id",
        "session_timeout",
        "session_check",
        "query_id",
        "quota_key",
        "buffer_size",
        "wait_end_of_query",
        "client_protocol_version",
        "role",
        "enable_http_compression",
        "send_progress_in_http_headers",
        "http_headers_progress_interval_ms",
        "http_zlib_compression_level",
        "cancel_http_readonly_queries_on_client_close",
    }
)
_DECOMPRESS = {
    "lz4": lz4.frame.decompress,
    "zstd": zstd.decompress,
    "gzip": gzip.decompress,
    "deflate": zlib.decompress,
}
_COMPRESS = {
    "lz4": lz4.frame.compress,
    "zstd": zstd.compress,
    "gzip": gzip.compress,
    "deflate": zlib.compress,
}
_INSERT = re.compile(rb"^\s*(INSERT\s+INTO\s+.+?)\s+FORMAT\s+(\w+)[ \t]*\r?\n?", re.IGNORECASE | re.DOTALL)
_OUTPUT_FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
_READ_ONLY = re.compile(r"^\s*(SELECT|WITH|SHOW|DESCRIBE|DESC|EXISTS|EXPLAIN)\b", re.IGNORECASE)
_ERROR_CODE = re.compile(r"Code: (\d+)")
_NOT_FOUND_CODES = {"60", "81"}  # UNKNOWN_TABLE, UNKNOWN_DATABASE
_CONTENT_TYPES = {
    "JSON": "application/json; charset=UTF-8",
    "JSONCompact": "application/json; charset=UTF-8",
    "JSONEachRow": "application/x-ndjson; charset=UTF-8",
}


class ClickHouseRefused(Exception):
    """A request the endpoint answers with a ClickHouse error."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass
class Received:
    """One request as the endpoint saw it."""

    method: str
    params: dict[str, str]
    headers: dict[str, str]
    statement: str  # the statement run (an INSERT without its data)
    data_bytes: int  # an INSERT's data, decompressed
    answer_encoding: str = "identity"  # how the answer was compressed


@dataclass
class ClickHouseHTTP:
    """A running endpoint: its port, the chDB session behind it, and what it received."""

    port: int
    session: Any
    user: str | None
    password: str
    requests: list[Received] = field(default_factory=list)
    #: Inserts still to be run and then answered by closing the connection (a lost answer).
    lose_insert_answers: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    timezone: str = "UTC"
    version: str = ""
    #: The engine's `enable_http_compression` (what a request without the parameter gets).
    http_compression: str = "0"

    @property
    def url(self) -> str:
        """A clickhouse-connect DSN for this endpoint (with its credentials)."""
        auth = f"{self.user}:{self.password}@" if self.user else ""
        return f"http://{auth}127.0.0.1:{self.port}/default"

    def rows(self, sql: str) -> list[list[Any]]:
        """Ask the engine directly (beside the HTTP interface), for assertions."""
        with self.lock:
            result = self.session.query(sql, "JSONCompact")
        text = result.bytes()
        return list(orjson.loads(text)["data"]) if text.strip() else []


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    received: Received

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        endpoint = self.server.endpoint
        parts = urlsplit(self.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        body = self._body()
        if parts.path in ("/ping", "/") and "query" not in params and not body:
            self._answer(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
            return
        if parts.path != "/":
            self._error(ClickHouseRefused(404, "0", f"There is no handle {parts.path}"))
            return
        query_id = params.get("query_id") or str(uuid.uuid4())
        try:
            self._authenticate(params)
            encoding = self.headers.get("Content-Encoding", "identity").lower()
            if encoding != "identity":
                if encoding not in _DECOMPRESS:
                    raise ClickHouseRefused(400, "0", f"Unknown HTTP Content-Encoding: {encoding}")
                body = _DECOMPRESS[encoding](body)
            text = params.get("query", "").encode()
            full = text + b"\n" + body if text and body else text or body
            insert = _INSERT.match(full)
            if self.command == "GET" and (insert or not _READ_ONLY.match(full.decode(errors="replace"))):
                raise ClickHouseRefused(
                    400, "164", "Code: 164. DB::Exception: Cannot execute query in readonly mode. (READONLY)"
                )
            default_format = params.get("default_format", "TabSeparated")
            with endpoint.lock:
                if insert and endpoint.lose_insert_answers:
                    endpoint.lose_insert_answers -= 1
                    self._run(params, insert, full, default_format, query_id)
                    self._lose_answer()
                    return
                output, fmt, summary = self._run(params, insert, full, default_format, query_id)
        except ClickHouseRefused as refused:
            self._error(refused, query_id)
            return
        headers = {
            "Content-Type": _CONTENT_TYPES.get(
                fmt, "text/plain; charset=UTF-8" if "Separated" in fmt else "application/octet-stream"
            ),
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Format": fmt,
            "X-ClickHouse-Timezone": endpoint.timezone,
            "X-ClickHouse-Server-Display-Name": "chdb-http",
            "X-ClickHouse-Summary": orjson.dumps(summary).decode(),
        }
        if params.get("enable_http_compression", endpoint.http_compression) == "1":
            for accepted in self.headers.get("Accept-Encoding", "").split(","):
                name = accepted.split(";")[0].strip().lower()
                if name in _COMPRESS:
                    output = _COMPRESS[name](output)
                    headers["Content-Encoding"] = self.received.answer_encoding = name
                    break
        self._answer(200, output, headers)

    def _run(
        self, params: dict[str, str], insert: re.Match[bytes] | None, full: bytes, default_format: str, query_id: str
    ) -> tuple[bytes, str, dict[str, str]]:
        endpoint = self.server.endpoint
        session = endpoint.session
        settings = {
            key: value
            for key, value in params.items()
            if key not in TRANSPORT_PARAMETERS and not key.startswith("param_")
        }
        query_params = {key[len("param_") :]: value for key, value in params.items() if key.startswith("param_")}
        statement = insert.group(1).decode() if insert else full.decode()
        data = full[insert.end() :] if insert else b""
        self.received = Received(self.command, params, dict(self.headers.items()), statement, len(data))
        endpoint.requests.append(self.received)
        started = time.perf_counter_ns()
        try:
            session.query(f"USE {_identifier(params.get('database') or 'default')}")
            for key, value in settings.items():
                session.query(f"SET {_identifier(key)} = {_literal(value)}")
            if insert:
                with session.send_insert(statement, insert.group(2).decode()) as inserting:
                    inserting.append(data)
                    result = inserting.finish()
                output, fmt = b"", default_format
            else:
                match = _OUTPUT_FORMAT.search(statement)
                fmt = match.group(1) if match else default_format
                result = session.query(statement, fmt, params=query_params)
                output = result.bytes()
        except Exception as exc:  # chDB raises its engine's exception text
            message = str(exc)
            code_match = _ERROR_CODE.search(message)
            code = code_match.group(1) if code_match else "1001"
            raise ClickHouseRefused(404 if code in _NOT_FOUND_CODES else 400, code, message) from None
        finally:
            for key in settings:
                with contextlib.suppress(Exception):
                    session.query(f"SET {_identifier(key)} = DEFAULT")
        summary = {
            "read_rows": str(_figure(result, "rows_read")),
            "read_bytes": str(_figure(result, "bytes_read")),
            "written_rows": str(_figure(result, "rows_written")),
            "written_bytes": str(_figure(result, "bytes_written")),
            "total_rows_to_read": str(_figure(result, "rows_read")),
            "result_rows": "0",
            "result_bytes": str(len(output)),
            "elapsed_ns": str(time.perf_counter_ns() - started),
        }
        return output, fmt, summary

    def _authenticate(self, params: dict[str, str]) -> None:
        endpoint = self.server.endpoint
        user, password = params.get("user", "default"), params.get("password", "")
        if "X-ClickHouse-User" in self.headers:
            user, password = self.headers["X-ClickHouse-User"], self.headers.get("X-ClickHouse-Key", "")
        authorization = self.headers.get("Authorization", "")
        if authorization.startswith("Basic "):
            user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
        if endpoint.user is not None and (user != endpoint.user or password != endpoint.password):
            raise ClickHouseRefused(
                403,
                "516",
                f"Code: 516. DB::Exception: {user}: Authentication failed: password is incorrect, "
                "or there is no user with such name. (AUTHENTICATION_FAILED)",
            )

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _error(self, refused: ClickHouseRefused, query_id: str = "") -> None:
        message = str(refused)
        if not message.startswith("Code:"):
            message = f"Code: {refused.code}. DB::Exception: {message}"
        headers = {"Content-Type": "text/plain; charset=UTF-8", "X-ClickHouse-Exception-Code": refused.code}
        if query_id:
            headers["X-ClickHouse-Query-Id"] = query_id
        self._answer(refused.status, (message.rstrip() + "\n").encode(), headers)

    def _answer(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "Keep-Alive")
        self.end_headers()
        self.wfile.write(payload)

    def _lose_answer(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    endpoint: ClickHouseHTTP


def _figure(result: Any, name: str) -> int:
    value = getattr(result, name, 0)
    return int(value() if callable(value) else value)


def _identifier(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ClickHouseRefused(
            400, "115", f"Code: 115. DB::Exception: Unknown setting or name {name!r}. (UNKNOWN_SETTING)"
        )
    return name


def _literal(value: str) -> str:
    if re.fullmatch(r"-?\d+(\.\d+)?", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@contextlib.contextmanager
def serve_clickhouse(path: Path, user: str | None = None, password: str = "") -> Iterator[ClickHouseHTTP]:
    """A ClickHouse HTTP endpoint on a free loopback port over a chDB session kept in `path`;
    with `user`, requests must carry that user and `password`."""
    session = chdb_session.Session(str(path))
    server = _Server(("127.0.0.1", 0), _Handler)
    endpoint = ClickHouseHTTP(port=server.server_address[1], session=session, user=user, password=password)
    ((endpoint.timezone, endpoint.version, endpoint.http_compression),) = orjson.loads(
        session.query("SELECT timezone(), version(), getSetting('enable_http_compression')", "JSONCompact").bytes()
    )["data"]
    endpoint.http_compression = str(int(endpoint.http_compression))
    server.endpoint = endpoint
    thread = threading.Thread(target=server.serve_forever, name="clickhouse-http", daemon=True)
    thread.start()
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        session.close()
