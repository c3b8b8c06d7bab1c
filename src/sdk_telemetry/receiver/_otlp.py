"""OTLP/HTTP requests (protobuf or JSON) onto store rows, with opentelemetry-proto's classes.

OTLP JSON differs from protobuf's JSON mapping in one place: trace and span ids are hex, not
base64; they are converted before `json_format` parses the rest (unknown fields ignored).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import orjson
from google.protobuf import json_format  # type: ignore[import-untyped]
from google.protobuf.message import DecodeError, Message  # type: ignore[import-untyped]
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from sdk_telemetry.store import LogRow, TraceRow, content_id, dumps, log_row, trace_row

_KINDS = {0: "Unspecified", 1: "Internal", 2: "Server", 3: "Client", 4: "Producer", 5: "Consumer"}
_STATUS = {0: "Unset", 1: "Ok", 2: "Error"}
_ID_FIELDS = frozenset({"traceId", "spanId", "parentSpanId"})
#: Log attributes that carry a client's event id (the dedup key of otel_logs).
EVENT_ID_KEYS = ("event.id", "event_id", "log.record.uid")


class OtlpError(ValueError):
    """The request is not a valid OTLP message; the text names what is wrong."""


def _hex_ids_to_base64(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in _ID_FIELDS and isinstance(item, str):
                try:
                    out[key] = base64.b64encode(bytes.fromhex(item)).decode()
                except ValueError:
                    raise OtlpError(f"{key} {item!r} is not hex") from None
            else:
                out[key] = _hex_ids_to_base64(item)
        return out
    if isinstance(value, list):
        return [_hex_ids_to_base64(item) for item in value]
    return value


def decode(body: bytes, json: bool, message: Message) -> None:
    """Fill `message` from a protobuf or OTLP-JSON body; raises `OtlpError`."""
    try:
        if json:
            json_format.ParseDict(_hex_ids_to_base64(orjson.loads(body)), message, ignore_unknown_fields=True)
        else:
            message.ParseFromString(body)
    except (DecodeError, json_format.ParseError, orjson.JSONDecodeError, RecursionError) as exc:
        raise OtlpError(f"not a valid {type(message).__name__}: {exc}") from None


def any_value(value: AnyValue) -> Any:
    """A Python value for an OTLP AnyValue."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if which == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, which)


def attributes(pairs: Any) -> dict[str, Any]:
    """A dict from repeated KeyValue."""
    result: dict[str, Any] = {}
    pair: KeyValue
    for pair in pairs:
        result[pair.key] = any_value(pair.value)
    return result


def _id(raw: bytes, size: int, what: str, required: bool = True) -> str:
    if not raw and not required:
        return ""
    if len(raw) != size or not any(raw):
        raise OtlpError(f"{what} must be {size} bytes and not all zero, got {binascii.hexlify(raw).decode()!r}")
    return raw.hex()


def trace_rows(body: bytes, json: bool, extra_resource: Mapping[str, Any]) -> list[TraceRow]:
    """`otel_traces` rows for an ExportTraceServiceRequest."""
    request = ExportTraceServiceRequest()
    decode(body, json, request)
    rows = []
    for resource_spans in request.resource_spans:
        resource = {**attributes(resource_spans.resource.attributes), **extra_resource}
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            for span in scope_spans.spans:
                events = [
                    {"Timestamp": event.time_unix_nano, "Name": event.name, "Attributes": attributes(event.attributes)}
                    for event in span.events
                ]
                links = [
                    {
                        "TraceId": link.trace_id.hex(),
                        "SpanId": link.span_id.hex(),
                        "Attributes": attributes(link.attributes),
                    }
                    for link in span.links
                ]
                rows.append(
                    trace_row(
                        timestamp=span.start_time_unix_nano,
                        trace_id=_id(span.trace_id, 16, "traceId"),
                        span_id=_id(span.span_id, 8, "spanId"),
                        parent_span_id=_id(span.parent_span_id, 8, "parentSpanId", required=False),
                        trace_state=span.trace_state,
                        name=span.name,
                        kind=_KINDS.get(span.kind, "Unspecified"),
                        resource=resource,
                        scope=scope.name,
                        scope_version=scope.version,
                        attributes=attributes(span.attributes),
                        duration=span.end_time_unix_nano - span.start_time_unix_nano,
                        status=_STATUS.get(span.status.code, "Unset"),
                        status_message=span.status.message,
                        events=events,
                        links=links,
                    )
                )
    return rows


def log_rows(body: bytes, json: bool, extra_resource: Mapping[str, Any]) -> list[LogRow]:
    """`otel_logs` rows for an ExportLogsServiceRequest; the event id comes from an `event.id`
    attribute, or else from the record's content."""
    request = ExportLogsServiceRequest()
    decode(body, json, request)
    rows = []
    for resource_logs in request.resource_logs:
        resource = {**attributes(resource_logs.resource.attributes), **extra_resource}
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                attrs = attributes(record.attributes)
                timestamp = record.time_unix_nano or record.observed_time_unix_nano
                event_id = next((str(attrs[key]) for key in EVENT_ID_KEYS if attrs.get(key)), None)
                body_value = any_value(record.body)
                if event_id is None:
                    event_id = content_id(resource, scope_logs.scope.name, timestamp, attrs, body_value)
                name = getattr(record, "event_name", "") or str(attrs.get("event.name", ""))
                rows.append(
                    log_row(
                        timestamp=timestamp,
                        event_id=event_id,
                        trace_id=record.trace_id.hex(),
                        span_id=record.span_id.hex(),
                        body=body_value if isinstance(body_value, str) else dumps(body_value),
                        event_name=name,
                        severity=record.severity_text,
                        severity_number=record.severity_number,
                        resource=resource,
                        attributes=attrs,
                        scope=scope_logs.scope.name,
                    )
                )
    return rows
