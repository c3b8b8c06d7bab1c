"""The receiver as an ASGI app (Starlette): validate, authenticate, deduplicate, store, answer.

Every refusal is JSON: `{"status": "error", "error": {"code", "message", "details"}}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
import math
import re
import sqlite3
import time
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sdk_telemetry.receiver import _mapping, _models, _otlp
from sdk_telemetry.receiver._openapi import openapi
from sdk_telemetry.receiver._ratelimit import RateLimiter, client_key
from sdk_telemetry.receiver._settings import ReceiverSettings
from sdk_telemetry.receiver._writer import SQLITE_FULL, Batch, Outcome, Overloaded, StoreWriter
from sdk_telemetry.store import (
    ClickHouseStore,
    Filters,
    QueryError,
    connect,
    function_stats,
    get_metrics,
    health,
    iso,
    open_clickhouse,
    retention_cutoff,
    retention_step,
    rollup_cutoffs,
    to_ns,
    top_errors,
)

_logger = logging.getLogger("sdk_telemetry.receiver")
JSON_TYPES = ("application/json",)
PROTOBUF_TYPES = ("application/x-protobuf", "application/protobuf")
_CLIENT_ADDRESS = "client.address"
_GZIP_MAGIC = b"\x1f\x8b"
_DIGITS = re.compile(r"[0-9]{1,9}")
_NUMBER = re.compile(r"[0-9]+")
#: Metric names one `GET /api/v1/metrics` may ask for.
MAX_METRIC_NAMES = 1000


class JsonAnswer(JSONResponse):
    """JSON through orjson: whatever a query computed, the answer is valid JSON (a non-finite
    number is `null`)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=str)


class Refusal(Exception):
    """An answer other than success: HTTP status, code, message, details, headers."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details or {}
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        """The JSON error response."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return JsonAnswer({"status": "error", "error": body}, status_code=self.status, headers=self.headers)


def truncate_ip(address: str) -> str:
    """The network of `address`: /24 for IPv4, /48 for IPv6 (e.g. `203.0.113.0`); '' when not an IP."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return ""
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False).network_address)


def validation_details(exc: ValidationError) -> dict[str, Any]:
    """The failing fields, as dotted paths, with the problem of each."""
    errors = [
        {
            "field": ".".join(str(part) for part in error["loc"]) or "(body)",
            "problem": error["msg"],
            "type": error["type"],
        }
        for error in exc.errors(include_url=False)[:20]
    ]
    return {"validation_errors": errors}


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


class Receiver:
    """The app's state and handlers."""

    def __init__(self, settings: ReceiverSettings) -> None:
        self.settings = settings
        self.started = time.monotonic()
        self.writer: StoreWriter | None = None
        self._keys = tuple(key.encode() for key in settings.api_keys)
        self.retention_runs = 0
        self.last_retention: dict[str, int] | None = None
        self.keyless_limit = RateLimiter(settings.keyless_rate, settings.keyless_burst)
        #: Values adjusted to fit the store since the start, by kind (see `_mapping`).
        self.adjusted: Counter[str] = Counter()
        self.disconnects = 0
        #: Bytes of request bodies held now (see `_hold`), and the requests refused for it.
        self.inflight_bytes = 0
        self.rejected_inflight = 0
        self._sweep: asyncio.Future[dict[str, int]] | None = None

    # --- plumbing -------------------------------------------------------------------------

    @staticmethod
    def _supplied_key(request: Request) -> str | None:
        supplied = request.headers.get("x-api-key")
        if supplied is None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            supplied = token.strip() if scheme.lower() == "bearer" else None
        return supplied

    def _accepted(self, supplied: str | None) -> bool:
        if not supplied:
            return False
        candidate = supplied.encode()
        matched = False
        for key in self._keys:  # every key is compared, in constant time
            matched |= hmac.compare_digest(candidate, key)
        return matched

    def authenticated(self, request: Request) -> bool:
        """True when no key is required or the request carries an accepted one."""
        return self.settings.insecure_no_auth or self._accepted(self._supplied_key(request))

    def authenticate(self, request: Request) -> None:
        """Refuse (401) unless the request carries an accepted key; keys are never logged."""
        if not self.authenticated(request):
            raise _unauthorized()

    def authenticate_composio(self, request: Request) -> None:
        """As `authenticate`, except that with `composio_keyless` a request with no key at all is
        accepted within the per-client rate limit (429 with Retry-After beyond it); a wrong key is
        still refused."""
        if self.settings.insecure_no_auth:
            return
        supplied = self._supplied_key(request)
        if self._accepted(supplied):
            return
        if supplied or not self.settings.composio_keyless:
            raise _unauthorized()
        client = client_key(request.client.host) if request.client else ""
        wait = self.keyless_limit.retry_after(client)
        if wait:
            raise Refusal(
                429,
                "RATE_LIMITED",
                f"more than {self.settings.keyless_rate:g} requests per second from this client without an API key",
                {"keyless_rate": self.settings.keyless_rate, "keyless_burst": self.settings.keyless_burst},
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )

    async def read_body(self, request: Request, accepted: tuple[str, ...]) -> bytes:
        """The request body, decompressed, within the size limit (413) and of an accepted type (415)."""
        media = _media_type(request)
        if media not in accepted:
            raise Refusal(
                415,
                "UNSUPPORTED_MEDIA_TYPE",
                f"Content-Type {media or '(none)'!r} is not accepted here; send {' or '.join(accepted)}",
            )
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("identity", "gzip", ""):
            raise Refusal(415, "UNSUPPORTED_MEDIA_TYPE", f"Content-Encoding {encoding!r} is not accepted; use gzip")
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and _NUMBER.fullmatch(declared) and int(declared) > limit:
            raise self._too_large()
        chunks: list[bytes] = []
        size = 0
        # A body that stalls longer than body_timeout between two chunks is cut off (as
        # asyncio.timeout does, which Python 3.10 lacks: one timer, moved on at every chunk).
        loop, task = asyncio.get_running_loop(), asyncio.current_task()
        assert task is not None
        stalled: list[bool] = []

        def cut_off() -> None:
            stalled.append(True)
            task.cancel()

        timer = loop.call_later(self.settings.body_timeout, cut_off)
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise self._too_large()
                self._hold(request, len(chunk))
                chunks.append(chunk)
                timer.cancel()
                timer = loop.call_later(self.settings.body_timeout, cut_off)
        except ClientDisconnect:
            self.disconnects += 1
            _logger.debug("sdk-telemetry serve: a client disconnected after %d bytes of its body", size)
            raise Refusal(400, "CLIENT_DISCONNECTED", "the client disconnected before sending its whole body") from None
        except asyncio.CancelledError:
            if not stalled:
                raise
            if hasattr(task, "uncancel"):  # Python 3.11+: the cancellation was ours, not the server's
                task.uncancel()
            raise Refusal(408, "BODY_TIMEOUT", f"the body stalled for {self.settings.body_timeout:g} s") from None
        finally:
            timer.cancel()
        raw = b"".join(chunks)
        if encoding != "gzip":
            return raw
        body = self._gunzip(raw)
        self._hold(request, len(body))
        return body

    def _hold(self, request: Request, size: int) -> None:
        """Count `size` bytes of `request`'s body as held until it is answered; 503 with
        Retry-After when the bodies held at once would pass `max_inflight_bytes`."""
        if self.inflight_bytes + size > self.settings.max_inflight_bytes:
            self.rejected_inflight += 1
            raise Refusal(
                503,
                "BUSY",
                f"more than {self.settings.max_inflight_bytes} bytes of request bodies are being handled; retry later",
                headers={"Retry-After": str(self.settings.retry_after)},
            )
        self.inflight_bytes += size
        request.scope["sdk_telemetry.held"] = request.scope.get("sdk_telemetry.held", 0) + size

    def handler(self, method: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        """`method` as a route handler: a `Refusal` is its JSON answer; held body bytes are released."""

        async def handle(request: Request) -> Response:
            try:
                return await method(request)
            except Refusal as refusal:
                return refusal.response()
            finally:
                self.inflight_bytes -= request.scope.get("sdk_telemetry.held", 0)

        return handle

    def _gunzip(self, raw: bytes) -> bytes:
        """Every member of a gzip body (as `gzip.decompress` reads them), within the size limit;
        bytes after the last member that are not gzip are refused, not ignored."""
        limit = self.settings.max_body_bytes
        members: list[bytes] = []
        size, rest = 0, raw
        while True:
            inflater = zlib.decompressobj(wbits=31)
            try:
                member = inflater.decompress(rest, limit + 1 - size)
            except zlib.error as exc:
                raise Refusal(400, "INVALID_ENCODING", f"the body is not valid gzip: {exc}") from None
            size += len(member)
            if size > limit or inflater.unconsumed_tail:
                raise self._too_large(after_decompression=True)
            if not inflater.eof:
                raise Refusal(400, "INVALID_ENCODING", "the gzip body is truncated")
            members.append(member)
            rest = inflater.unused_data
            if not rest:
                return members[0] if len(members) == 1 else b"".join(members)
            if not rest.startswith(_GZIP_MAGIC):
                raise Refusal(400, "INVALID_ENCODING", f"{len(rest)} byte(s) after the gzip data are not a gzip member")

    def _too_large(self, after_decompression: bool = False) -> Refusal:
        where = " after decompression" if after_decompression else ""
        return Refusal(
            413,
            "PAYLOAD_TOO_LARGE",
            f"the body is larger than {self.settings.max_body_bytes} bytes{where}",
            {"max_body_bytes": self.settings.max_body_bytes},
        )

    def client_resource(self, request: Request) -> dict[str, Any]:
        """Resource attributes the receiver adds: the truncated client address, only when configured."""
        if not self.settings.store_client_ip or request.client is None:
            return {}
        network = truncate_ip(request.client.host)
        return {_CLIENT_ADDRESS: network} if network else {}

    async def store(self, batch: Batch) -> Outcome:
        """Commit `batch` (whole or not at all): how many rows were new and how many stored already.
        503 with Retry-After when the store cannot keep up or fails (507 when its disk is full)."""
        assert self.writer is not None
        retry = {"Retry-After": str(self.settings.retry_after)}
        try:
            future = self.writer.submit(batch)
        except Overloaded as exc:
            raise Refusal(503, "OVERLOADED", f"the store cannot keep up: {exc}; retry later", headers=retry) from None
        try:
            outcome: Outcome = await asyncio.wrap_future(future)
        except sqlite3.Error as exc:
            if getattr(exc, "sqlite_errorcode", None) == SQLITE_FULL:
                self._sweep_soon()  # let retention make room now rather than at the next interval
                raise Refusal(507, "STORAGE_FULL", f"the store's disk is full: {exc}", headers=retry) from None
            raise Refusal(503, "STORAGE_FAILURE", f"the store refused the batch: {exc}", headers=retry) from None
        except (OverflowError, ValueError, TypeError) as exc:  # a value no check caught: this batch only
            raise Refusal(400, "INVALID_EVENT", f"a value of this batch cannot be stored: {exc}") from None
        return outcome

    @staticmethod
    def validate(adapter: TypeAdapter[Any], body: bytes) -> Any:
        try:
            return adapter.validate_json(body)
        except ValidationError as exc:
            problems = exc.errors()
            if any(error["type"] == "json_invalid" for error in problems):
                if any("recursion limit" in error["msg"] for error in problems):
                    raise Refusal(
                        400, "INVALID_JSON", "the body is too deeply nested", validation_details(exc)
                    ) from None
                raise Refusal(400, "INVALID_JSON", "the body is not valid JSON", validation_details(exc)) from None
            raise Refusal(400, "INVALID_EVENT", _summary(exc), validation_details(exc)) from None

    def _answer(self, received: int, outcome: Outcome, adjusted: Counter[str] | None = None) -> Response:
        """`{"status": "accepted", "accepted", "stored", "duplicates"}` (+ `adjusted`, by kind, when
        a value was adjusted to fit the store): `accepted` items were valid, `stored` of them new."""
        answer: dict[str, Any] = {
            "status": "accepted",
            "accepted": received,
            "stored": outcome.stored,
            "duplicates": outcome.duplicates,
        }
        if adjusted:
            self.adjusted.update(adjusted)
            answer["adjusted"] = dict(adjusted)
        return JsonAnswer(answer)

    # --- ingest ---------------------------------------------------------------------------

    async def invocations(self, request: Request) -> Response:
        self.authenticate_composio(request)
        body = await self.read_body(request, JSON_TYPES)
        payloads = self.validate(_models.INVOCATIONS, body)
        adjusted: Counter[str] = Counter()
        rows = _mapping.invocation_rows(
            payloads,
            request.headers.get("idempotency-key"),
            body,
            self.client_resource(request),
            time.time_ns(),
            adjusted,
        )
        return self._answer(len(rows), await self.store(Batch(spans=rows)), adjusted)

    async def errors(self, request: Request) -> Response:
        self.authenticate_composio(request)
        body = await self.read_body(request, JSON_TYPES)
        payload = self.validate(_models.ERROR_REPORT, body)
        if "error" not in payload:
            raise Refusal(
                400,
                "INVALID_EVENT",
                "error: a report sent to /errors needs an error object",
                {"validation_errors": [{"field": "error", "problem": "Field required", "type": "missing"}]},
            )
        adjusted: Counter[str] = Counter()
        rows = _mapping.invocation_rows(
            [payload],
            request.headers.get("idempotency-key"),
            body,
            self.client_resource(request),
            time.time_ns(),
            adjusted,
        )
        return self._answer(1, await self.store(Batch(spans=rows)), adjusted)

    async def tinker(self, request: Request) -> Response:
        self.authenticate(request)
        batch = self.validate(_models.TINKER_BATCH, await self.read_body(request, JSON_TYPES))
        rows = _mapping.tinker_rows(batch, self.client_resource(request))
        return self._answer(len(rows), await self.store(Batch(events=rows)))

    async def otlp_traces(self, request: Request) -> Response:
        return await self._otlp(request, _otlp.trace_rows, "spans")

    async def otlp_logs(self, request: Request) -> Response:
        return await self._otlp(request, _otlp.log_rows, "events")

    async def otlp_metrics(self, request: Request) -> Response:
        return await self._otlp(request, _otlp.metric_rows, "metrics")

    async def _otlp(self, request: Request, decode: Callable[..., list[tuple[Any, ...]]], table: str) -> Response:
        self.authenticate(request)
        body = await self.read_body(request, PROTOBUF_TYPES + JSON_TYPES)
        json = _media_type(request) in JSON_TYPES
        try:
            rows = decode(body, json, self.client_resource(request))
        except _otlp.OtlpError as exc:
            raise Refusal(400, "INVALID_OTLP", str(exc)) from None
        await self.store(Batch(**{table: rows}))
        if json:
            return JsonAnswer({})
        return Response(b"", media_type="application/x-protobuf")

    async def record_metric(self, request: Request) -> Response:
        self.authenticate(request)
        value = self.validate(_models.METRIC_VALUE, await self.read_body(request, JSON_TYPES))
        row = _mapping.metric_row(value, request.headers.get("idempotency-key"), self.client_resource(request))
        outcome = await self.store(Batch(metrics=[row]))
        return JsonAnswer(
            {
                "status": "success",
                "event_id": row[1],
                "timestamp": iso(row[0]),
                "stored": outcome.stored,
                "duplicates": outcome.duplicates,
            }
        )

    # --- queries --------------------------------------------------------------------------

    async def _read(self, question: Callable[[sqlite3.Connection], Any]) -> Any:
        def ask() -> Any:
            connection = connect(self.settings.store_path)
            try:
                return question(connection)
            finally:
                connection.close()

        try:
            return await run_in_threadpool(ask)
        except QueryError as exc:
            raise Refusal(400, exc.code, exc.message) from None

    @staticmethod
    def _filters(request: Request) -> Filters:
        query = request.query_params
        return Filters(
            service=query.get("service"),
            environment=query.get("environment"),
            session=query.get("session"),
            start=_time_parameter(request, "start"),
            end=_time_parameter(request, "end"),
        )

    async def stats(self, request: Request) -> Response:
        self.authenticate(request)
        filters = self._filters(request)
        rows = await self._read(lambda connection: function_stats(connection, filters))
        return JsonAnswer({"status": "success", "functions": [row.as_dict() for row in rows]})

    async def top_errors(self, request: Request) -> Response:
        self.authenticate(request)
        filters = self._filters(request)
        limit_text = request.query_params.get("limit", "10")
        if not _DIGITS.fullmatch(limit_text) or not 0 < int(limit_text) <= 1000:
            raise Refusal(400, "INVALID_QUERY", f"limit: must be an integer from 1 to 1000, got {limit_text!r}")
        rows = await self._read(lambda connection: top_errors(connection, filters, int(limit_text)))
        return JsonAnswer({"status": "success", "errors": [row.as_dict() for row in rows]})

    async def get_metrics(self, request: Request) -> Response:
        self.authenticate(request)
        query = request.query_params
        names_text = query.get("names")
        names = [name for name in names_text.split(",") if name] if names_text else None
        if names is not None and len(names) > MAX_METRIC_NAMES:
            raise Refusal(400, "INVALID_QUERY", f"names: at most {MAX_METRIC_NAMES} names, got {len(names)}")
        start, end = _time_parameter(request, "start"), _time_parameter(request, "end")
        time_range = (start, end) if start is not None or end is not None else None
        aggregation = query.get("aggregation", "MEAN")
        answer = await self._read(lambda connection: get_metrics(connection, names, time_range, aggregation))
        return JsonAnswer(answer)

    async def health(self, request: Request) -> Response:
        """The store's and the receiver's state; without an accepted key, only the status."""
        answer = await self._read(
            lambda connection: health(
                connection, self.settings.store_path, self.settings.retention_days, time.monotonic() - self.started
            )
        )
        if self.writer is not None and self.writer.storage_full:
            answer["status"] = "unhealthy"
            answer["problems"] = [f"the store's disk is full: {self.writer.storage_full}"]
        status = 200 if answer["status"] == "healthy" else 503
        if not self.authenticated(request):
            return JsonAnswer({"status": answer["status"], "version": answer["version"]}, status_code=status)
        writer = self.writer
        answer["receiver"] = {
            "backlog_rows": writer.backlog if writer else 0,
            "max_backlog_rows": self.settings.max_backlog_rows,
            "committed_rows": writer.committed_rows if writer else 0,
            "duplicate_rows": writer.duplicate_rows if writer else 0,
            "failed_batches": writer.failed_batches if writer else 0,
            "isolated_groups": writer.isolated_groups if writer else 0,
            "adjusted": dict(self.adjusted),
            "keyless_rate_limited": self.keyless_limit.limited,
            "client_disconnects": self.disconnects,
            "inflight_bytes": self.inflight_bytes,
            "rejected_inflight": self.rejected_inflight,
            "rejected_overload": writer.rejected_overload if writer else 0,
            "clickhouse_copied_rows": writer.mirrored_rows if writer else 0,
            "clickhouse_failed_rows": writer.mirror_failed_rows if writer else 0,
            "clickhouse_last_error": writer.mirror_last_error if writer else None,
            "retention_runs": self.retention_runs,
            "last_retention": self.last_retention,
        }
        return JsonAnswer(answer, status_code=status)

    async def openapi(self, request: Request) -> Response:
        return JsonAnswer(openapi())

    # --- background -----------------------------------------------------------------------

    async def retention_loop(self) -> None:
        """Apply retention now and then every `retention_interval` seconds, on the writer thread."""
        while True:
            await self.enforce_retention()
            await asyncio.sleep(self.settings.retention_interval)

    def _sweep_soon(self) -> None:
        """Start a retention sweep now, unless one is running."""
        if self._sweep is None or self._sweep.done():
            self._sweep = asyncio.ensure_future(self.enforce_retention())

    async def enforce_retention(self) -> dict[str, int]:
        """Delete what is older than the retention limits (raw rows, each rollup tier), in small steps
        (each one job on the writer thread, so that batches are committed between them); rows
        deleted per table."""
        assert self.writer is not None
        cutoff = retention_cutoff(self.settings.retention_days)
        rollups = rollup_cutoffs(self.settings.rollup_days)
        total = {"spans": 0, "events": 0, "metrics": 0, "rollups": 0}
        while True:
            try:
                deleted: dict[str, int] = await asyncio.wrap_future(
                    self.writer.run_job(lambda connection: retention_step(connection, cutoff, rollups=rollups))
                )
            except sqlite3.Error as exc:
                _logger.warning("sdk-telemetry serve: retention failed: %s", exc)
                return total
            for table, count in deleted.items():
                total[table] += count
            if not any(deleted.values()):
                break
        self.retention_runs += 1
        self.last_retention = total
        return total


def _unauthorized() -> Refusal:
    return Refusal(
        401,
        "UNAUTHORIZED",
        "an API key is required (X-API-Key or Authorization: Bearer)",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _time_parameter(request: Request, name: str) -> str | None:
    """Query parameter `name`, checked to be a time the store can hold (400 naming it otherwise)."""
    value = request.query_params.get(name)
    if value is not None:
        try:
            to_ns(value)
        except QueryError as exc:
            raise Refusal(400, exc.code, f"{name}: {exc.message}") from None
    return value


def _summary(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    field = ".".join(str(part) for part in first["loc"]) or "(body)"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{field}: {first['msg']}{more}"


#: Tries of each copy to ClickHouse, and the pause before each retry (seconds): an insert carries a
#: token from its content, so a retry whose first try did land is dropped by ClickHouse, not doubled.
CLICKHOUSE_COPY_PAUSES = (0.0, 0.25)


def _clickhouse_mirror(clickhouse: ClickHouseStore) -> Callable[[Batch], None]:
    """What the writer calls with each commit's new rows: the copy of spans, events and metric values."""

    def mirror(stored: Batch) -> None:
        for insert, rows in (
            (clickhouse.insert_spans, stored.spans),
            (clickhouse.insert_events, stored.events),
            (clickhouse.insert_metrics, stored.metrics),
        ):
            if rows:
                _with_retries(insert, rows)

    return mirror


def _with_retries(insert: Callable[[list[tuple[Any, ...]]], None], rows: list[tuple[Any, ...]]) -> None:
    for pause in CLICKHOUSE_COPY_PAUSES:
        try:
            insert(rows)
            return
        except Exception as exc:
            _logger.info("sdk-telemetry serve: a copy to ClickHouse failed (%s); retrying", exc)
            time.sleep(pause)
    insert(rows)


def create_app(settings: ReceiverSettings, clickhouse: ClickHouseStore | None = None) -> Starlette:
    """The receiver app for `settings`; the store writer starts and stops with the app's lifespan.

    `clickhouse` (or `settings.clickhouse_url`: a server URL, which needs the `clickhouse` extra, or
    `chdb:PATH`, the embedded engine, extra `chdb`) receives a copy
    of every span, event and metric value newly stored (`otel_traces`, `otel_logs`,
    `otel_metrics_gauge`, created as the Collector's exporter creates them).
    """
    receiver = Receiver(settings)
    if clickhouse is None and settings.clickhouse_url:
        clickhouse = open_clickhouse(settings.clickhouse_url)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        mirror = None
        if clickhouse is not None:
            await run_in_threadpool(clickhouse.create_tables)
            mirror = _clickhouse_mirror(clickhouse)
        receiver.writer = StoreWriter(settings.store_path, settings.max_backlog_rows, mirror)
        retention = asyncio.create_task(receiver.retention_loop())
        try:
            yield
        finally:
            for task in (retention, receiver._sweep):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            await run_in_threadpool(receiver.writer.close)

    routes = [
        Route("/v1/metrics/invocations", receiver.handler(receiver.invocations), methods=["POST"]),
        Route("/v1/errors", receiver.handler(receiver.errors), methods=["POST"]),
        Route("/api/v1/telemetry", receiver.handler(receiver.tinker), methods=["POST"]),
        Route("/v1/traces", receiver.handler(receiver.otlp_traces), methods=["POST"]),
        Route("/v1/logs", receiver.handler(receiver.otlp_logs), methods=["POST"]),
        Route("/v1/metrics", receiver.handler(receiver.otlp_metrics), methods=["POST"]),
        Route("/api/v1/metrics", receiver.handler(receiver.record_metric), methods=["POST"]),
        Route("/api/v1/metrics", receiver.handler(receiver.get_metrics), methods=["GET"]),
        Route("/api/v1/stats", receiver.handler(receiver.stats), methods=["GET"]),
        Route("/api/v1/errors", receiver.handler(receiver.top_errors), methods=["GET"]),
        Route("/health", receiver.handler(receiver.health), methods=["GET"]),
        Route("/openapi.json", receiver.handler(receiver.openapi), methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.receiver = receiver
    return app
