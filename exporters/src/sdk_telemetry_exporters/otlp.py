"""OTLP/HTTP protobuf for spans, written straight to bytes.

`encode_spans(spans)` gives exactly the bytes of upstream's
`encode_spans(spans).SerializePartialToString()` (the same fields, in the same order) without
building a protobuf object per span, per attribute and per value: what repeats from span to span
(the resource, the scope, an instrumented function's shared start attributes, its name) is
encoded once and reused. `OTLPSpanExporter` is upstream's exporter (its endpoint, headers,
compression, TLS, timeout and retries, from the same `OTEL_EXPORTER_OTLP_*` variables) with
this encoder in place of the generic one.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as UpstreamOTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanKind, Status

from sdk_telemetry_exporters.notices import warn

_logger = logging.getLogger(__name__)
_FIXED64 = struct.Struct("<Q").pack
_DOUBLE = struct.Struct("<d").pack
_FIXED32 = struct.Struct("<I").pack
_KIND_FIELD = {  # field 6, the span kind (an enum: INTERNAL is 1)
    SpanKind.INTERNAL: b"\x30\x01",
    SpanKind.SERVER: b"\x30\x02",
    SpanKind.CLIENT: b"\x30\x03",
    SpanKind.PRODUCER: b"\x30\x04",
    SpanKind.CONSUMER: b"\x30\x05",
}
_HAS_IS_REMOTE = 0x100  # SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
_IS_REMOTE = 0x200  # SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK
_CACHE_LIMIT = 4096


def _varint(value: int) -> bytes:
    """A protobuf varint; negative numbers as 64-bit two's complement (int64)."""
    if value < 0:
        value += 1 << 64
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _tag(field: int, wire_type: int) -> bytes:
    return _varint(field << 3 | wire_type)


def _field(field: int, payload: bytes) -> bytes:
    """A length-delimited field (string, bytes or message)."""
    return _tag(field, 2) + _varint(len(payload)) + payload


def _string(field: int, text: str | None) -> bytes:
    """A string field, left out when empty (proto3)."""
    return _field(field, text.encode()) if text else b""


def _any_value(value: Any) -> bytes:
    """An `AnyValue` message body (a oneof: its member is written even when it holds a default)."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return b"\x10" + (b"\x01" if value else b"\x00")
    if isinstance(value, str):
        return _field(1, value.encode())
    if isinstance(value, int):
        if not -(1 << 63) <= value < 1 << 63:
            raise ValueError(f"Value out of range: {value}")
        return b"\x18" + _varint(value)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE(value)
    if isinstance(value, bytes):
        return _field(7, value)
    if isinstance(value, Sequence):
        return _field(5, b"".join(_field(1, _any_value(item)) for item in value))
    if isinstance(value, Mapping):
        return _field(6, b"".join(_field(1, _key_value(str(key), item)) for key, item in value.items()))
    raise TypeError(f"Invalid type {type(value)} of value {value}")


def _key_value(key: str, value: Any) -> bytes:
    return _string(1, key) + _field(2, _any_value(value))


def encode_attributes(field: int, attributes: Mapping[str, Any] | None) -> bytes:
    """`attributes` as repeated `KeyValue` fields numbered `field`; an attribute that cannot be encoded is left out."""
    if not attributes:
        return b""
    parts = []
    for key, value in attributes.items():
        try:
            parts.append(_field(field, _key_value(key, value)))
        except Exception as error:
            _logger.exception("Failed to encode key %s: %s", key, error)
    return b"".join(parts)


def _scope(scope: InstrumentationScope | None) -> bytes:
    if scope is None:
        return b""
    return _string(1, scope.name) + _string(2, scope.version) + encode_attributes(3, scope.attributes)


_LOCAL_FLAGS = b"\x85\x01" + _FIXED32(_HAS_IS_REMOTE)  # field 16, fixed32
_REMOTE_PARENT_FLAGS = b"\x85\x01" + _FIXED32(_HAS_IS_REMOTE | _IS_REMOTE)
_UNSET_STATUS = b"\x7a\x00"  # field 15, an empty Status


def _status(status: Status) -> bytes:
    code = status.status_code.value
    if not code and not status.description:
        return _UNSET_STATUS
    return _field(15, _string(2, status.description) + (b"\x18" + _varint(code) if code else b""))


class _Encoder:
    """Encodings that repeat from span to span, kept by identity of what they encode."""

    def __init__(self) -> None:
        self.resources: dict[int, tuple[Resource, bytes]] = {}
        self.scopes: dict[int, tuple[InstrumentationScope | None, bytes]] = {}
        self.attributes: dict[int, tuple[Mapping[str, Any], bytes]] = {}
        self.names: dict[str, bytes] = {}

    def resource(self, resource: Resource) -> bytes:
        cached = self.resources.get(id(resource))
        if cached is None or cached[0] is not resource:
            cached = (resource, _field(1, encode_attributes(1, resource.attributes)))
            self._keep(self.resources, id(resource), cached)
        return cached[1]

    def scope(self, scope: InstrumentationScope | None) -> bytes:
        cached = self.scopes.get(id(scope))
        if cached is None or cached[0] is not scope:
            cached = (scope, _field(1, _scope(scope)))
            self._keep(self.scopes, id(scope), cached)
        return cached[1]

    def span_attributes(self, attributes: Mapping[str, Any] | None, shared: bool) -> bytes:
        """Field 9; `shared`: the mapping is immutable and used by many spans (worth keeping)."""
        if not shared or attributes is None:
            return encode_attributes(9, attributes)
        cached = self.attributes.get(id(attributes))
        if cached is None or cached[0] is not attributes:
            cached = (attributes, encode_attributes(9, attributes))
            self._keep(self.attributes, id(attributes), cached)
        return cached[1]

    def name(self, name: str) -> bytes:
        encoded = self.names.get(name)
        if encoded is None:
            encoded = _string(5, name)
            self._keep(self.names, name, encoded)
        return encoded

    @staticmethod
    def _keep(cache: dict[Any, Any], key: Any, value: Any) -> None:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[key] = value

    def span(self, span: ReadableSpan) -> bytes:
        context = span.get_span_context()
        assert context is not None
        parent = span.parent
        state = context.trace_state
        start, end = span.start_time, span.end_time
        body = b"\x0a\x10" + context.trace_id.to_bytes(16, "big") + b"\x12\x08" + context.span_id.to_bytes(8, "big")
        if state:
            body += _string(3, ",".join(f"{key}={value}" for key, value in state.items()))
        if parent:
            body += b"\x22\x08" + parent.span_id.to_bytes(8, "big")
        body += self.name(span.name) + _KIND_FIELD[span.kind]
        if start:
            body += b"\x39" + _FIXED64(start)
        if end:
            body += b"\x41" + _FIXED64(end)
        # `shares_attributes`: a span whose attributes are the immutable ones many spans share.
        body += self.span_attributes(span.attributes, bool(getattr(span, "shares_attributes", False)))
        if span.dropped_attributes:
            body += b"\x50" + _varint(span.dropped_attributes)
        for event in span.events:
            body += _field(
                11,
                (b"\x09" + _FIXED64(event.timestamp) if event.timestamp else b"")
                + _string(2, event.name)
                + encode_attributes(3, event.attributes)
                + (b"\x20" + _varint(event.dropped_attributes) if event.dropped_attributes else b""),
            )
        if span.dropped_events:
            body += b"\x60" + _varint(span.dropped_events)
        for link in span.links:
            body += _field(
                13,
                b"\x0a\x10"
                + link.context.trace_id.to_bytes(16, "big")
                + b"\x12\x08"
                + link.context.span_id.to_bytes(8, "big")
                + encode_attributes(4, link.attributes)
                + (b"\x28" + _varint(link.dropped_attributes) if link.dropped_attributes else b"")
                + b"\x35"
                + _FIXED32(_HAS_IS_REMOTE | (_IS_REMOTE if link.context.is_remote else 0)),
            )
        if span.dropped_links:
            body += b"\x70" + _varint(span.dropped_links)
        body += _status(span.status) + (_REMOTE_PARENT_FLAGS if parent and parent.is_remote else _LOCAL_FLAGS)
        return b"\x12" + _varint(len(body)) + body  # field 2 of ScopeSpans

    def request(self, spans: Sequence[ReadableSpan]) -> bytes:
        """An `ExportTraceServiceRequest`: spans grouped by resource, then by scope, in first-seen order.

        Grouped by identity (upstream groups equal resources; the spans of one provider share one
        resource object, so the bytes are the same).
        """
        grouped: dict[int, tuple[Resource, dict[int, tuple[InstrumentationScope | None, list[bytes]]]]] = {}
        for span in spans:
            resource = span.resource
            scope = span.instrumentation_scope or None
            scopes = grouped.get(id(resource))
            if scopes is None:
                scopes = grouped[id(resource)] = (resource, {})
            entry = scopes[1].get(id(scope))
            if entry is None:
                entry = scopes[1][id(scope)] = (scope, [])
            entry[1].append(self.span(span))
        out = []
        for resource, scopes_by_id in grouped.values():
            scope_spans = b"".join(
                _field(2, self.scope(scope) + b"".join(encoded) + _string(3, scope.schema_url if scope else None))
                for scope, encoded in scopes_by_id.values()
            )
            out.append(_field(1, self.resource(resource) + scope_spans + _string(3, resource.schema_url)))
        return b"".join(out)


_shared_encoder = _Encoder()


def encode_spans(spans: Sequence[ReadableSpan]) -> bytes:
    """The serialized `ExportTraceServiceRequest` for `spans`, as upstream's encoder writes it."""
    return _shared_encoder.request(spans)


class OTLPSpanExporter(UpstreamOTLPSpanExporter):
    """Upstream's OTLP/HTTP span exporter, configured the same way, encoding with `encode_spans`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._encoder = _Encoder()
        self._lock = threading.Lock()
        self.exported = 0
        self.failed = 0
        self.last_error: str | None = None
        self.last_error_time: float | None = None
        self.last_success_time: float | None = None
        self.failing_since: float | None = None
        _quiet_upstream_retries()

    def stats(self) -> dict[str, Any]:
        """Spans exported and failed, the endpoint, the last error and when, and since when it fails."""
        with self._lock:
            return {
                "endpoint": self._endpoint,
                "exported": self.exported,
                "failed": self.failed,
                "last_error": self.last_error,
                "last_error_time": self.last_error_time,
                "last_success_time": self.last_success_time,
                "failing_since": self.failing_since,
            }

    def _record(self, spans: int, ok: bool, error: Any) -> None:
        moment = time.time()
        with self._lock:
            if ok:
                self.exported += spans
                self.last_success_time, self.failing_since = moment, None
                return
            self.failed += spans
            self.last_error = f"POST {self._endpoint}: {error or 'failed'}"
            self.last_error_time = moment
            if self.failing_since is None:
                self.failing_since = moment
            message = self.last_error
        warn(f"otlp:{self._endpoint}", "OTLP export failed (%s); %d span(s) lost", message, spans)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Encode and send one batch, as upstream's `export` does.

        A copy of upstream's `OTLPSpanExporter.export` (1.45) with `self._encoder` in place of its
        encoder; it reads upstream's private `_shutdown`, `_metrics`, `_max_request_size` and
        `_client`. `exporters/tests/test_otlp.py` fails when the installed upstream changes that
        method or those fields. Unlike upstream's, it does not set `result.error` for a batch over
        `max_request_size` nor `result.error_attrs` (the HTTP status) for a failed send: those only
        feed upstream's own exporter metrics (`OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED`).
        """
        if self._shutdown:
            _logger.warning("Exporter already shutdown, ignoring batch")
            return SpanExportResult.FAILURE
        with self._metrics.export_operation(len(spans)) as result:
            try:
                data = self._encoder.request(spans)
            except Exception as error:
                _logger.error("Failed to encode span batch: %s", error)
                result.error = error
                return SpanExportResult.FAILURE
            if 0 < self._max_request_size < len(data):
                _logger.warning(
                    "Dropping span batch: serialized size %d bytes exceeds max_request_size %d bytes.",
                    len(data),
                    self._max_request_size,
                )
                return SpanExportResult.FAILURE
            sent = self._client.export(data)
            self._record(len(spans), sent.success, sent.error)
            if not sent.success:
                result.error = sent.error
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS


class _UpstreamRetryLines(logging.Filter):
    """Keeps upstream's per-attempt retry and failure lines out of the host's log: `OTLPSpanExporter`
    warns once a minute itself, and counts every failed span in `stats()`."""

    PREFIXES = ("Transient error ", "Failed to export ")

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith(self.PREFIXES))


_retry_filter = _UpstreamRetryLines()


def _quiet_upstream_retries() -> None:
    """Install the filter on the logger upstream's span exporter hands its HTTP client (once)."""
    upstream = logging.getLogger(UpstreamOTLPSpanExporter.__module__)
    if _retry_filter not in upstream.filters:
        upstream.addFilter(_retry_filter)
