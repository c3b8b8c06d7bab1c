"""OTLP/HTTP requests (protobuf or JSON) onto store rows, with opentelemetry-proto's classes.

Metrics become `otel_metrics_gauge` values: a gauge or sum point its value; a histogram (or
exponential histogram) point `<name>.count` and `<name>.sum` (and `.min`, `.max` when sent); a
summary point `<name>.count` and `<name>.sum`; NaN and infinite values are left out. Each
value is keyed by its content, so a resent request lands once.

OTLP JSON differs from protobuf's JSON mapping in one place: trace and span ids are hex, not
base64; they are converted before `json_format` parses the rest (unknown fields ignored).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
from collections.abc import Mapping
from typing import Any

import orjson
from google.protobuf import json_format  # type: ignore[import-untyped]
from google.protobuf.message import DecodeError, Message  # type: ignore[import-untyped]
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from sdk_telemetry.store import LogRow, MetricRow, TraceRow, content_id, dumps, log_row, metric_row, trace_row

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
            document = orjson.loads(body)
            if not isinstance(document, dict):
                raise OtlpError(f"not a valid {type(message).__name__}: the body is not a JSON object")
            json_format.ParseDict(_hex_ids_to_base64(document), message, ignore_unknown_fields=True)
        else:
            message.ParseFromString(body)
    except OtlpError:
        raise
    except RecursionError:
        raise OtlpError(f"not a valid {type(message).__name__}: the body is too deeply nested") from None
    except (DecodeError, json_format.ParseError, orjson.JSONDecodeError, TypeError, ValueError, AttributeError) as exc:
        # json_format raises TypeError or AttributeError where a field holds the wrong JSON type
        if "depth limit" in str(exc) or "recursion" in str(exc).lower():
            raise OtlpError(f"not a valid {type(message).__name__}: the body is too deeply nested") from None
        raise OtlpError(f"not a valid {type(message).__name__}: {exc}") from None


#: Times are signed 64-bit nanoseconds in the store (until 2262-04-11).
MAX_TIME_NS = 2**63 - 1


def _time(value: int, field: str) -> int:
    if value > MAX_TIME_NS:
        raise OtlpError(f"{field}: {value} is after 2262-04-11, the last time the store can hold")
    return value


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
    for r, resource_spans in enumerate(request.resource_spans):
        resource = {**attributes(resource_spans.resource.attributes), **extra_resource}
        for s, scope_spans in enumerate(resource_spans.scope_spans):
            scope = scope_spans.scope
            for i, span in enumerate(scope_spans.spans):
                if span.start_time_unix_nano > MAX_TIME_NS or span.end_time_unix_nano > MAX_TIME_NS:
                    where = f"resourceSpans.{r}.scopeSpans.{s}.spans.{i}"
                    _time(span.start_time_unix_nano, f"{where}.startTimeUnixNano")
                    _time(span.end_time_unix_nano, f"{where}.endTimeUnixNano")
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
    attribute, or else from the record's content, the request's digest and the record's position:
    identical records of one export (a logging bridge stamping whole milliseconds) are distinct
    events, while the same request sent again is stored once."""
    request = ExportLogsServiceRequest()
    decode(body, json, request)
    request_digest = hashlib.blake2b(body, digest_size=16).hexdigest()
    rows = []
    for r, resource_logs in enumerate(request.resource_logs):
        resource = {**attributes(resource_logs.resource.attributes), **extra_resource}
        for s, scope_logs in enumerate(resource_logs.scope_logs):
            for i, record in enumerate(scope_logs.log_records):
                attrs = attributes(record.attributes)
                timestamp = _time(
                    record.time_unix_nano or record.observed_time_unix_nano,
                    f"resourceLogs.{r}.scopeLogs.{s}.logRecords.{i}.timeUnixNano",
                )
                event_id = next((str(attrs[key]) for key in EVENT_ID_KEYS if attrs.get(key)), None)
                body_value = any_value(record.body)
                if event_id is None:
                    event_id = content_id(
                        request_digest,
                        (r, s, i),
                        resource,
                        scope_logs.scope.name,
                        timestamp,
                        attrs,
                        body_value,
                        record.severity_number,
                        record.trace_id.hex(),
                        record.span_id.hex(),
                    )
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


def _point_values(metric: Any) -> list[tuple[Any, list[tuple[str, float]]]]:
    """(point, [(name, value), ...]) for each data point of `metric`."""
    name = metric.name
    which = metric.WhichOneof("data")
    if which in ("gauge", "sum"):
        return [
            (point, [(name, float(getattr(point, point.WhichOneof("value") or "as_double")))])
            for point in getattr(metric, which).data_points
        ]
    if which in ("histogram", "exponential_histogram", "summary"):
        result = []
        for point in getattr(metric, which).data_points:
            values = [(f"{name}.count", float(point.count)), (f"{name}.sum", float(point.sum))]
            for bound in ("min", "max"):
                if which != "summary" and point.HasField(bound):
                    values.append((f"{name}.{bound}", float(getattr(point, bound))))
            result.append((point, values))
        return result
    return []


def metric_rows(body: bytes, json: bool, extra_resource: Mapping[str, Any]) -> list[MetricRow]:
    """`otel_metrics_gauge` rows for an ExportMetricsServiceRequest."""
    request = ExportMetricsServiceRequest()
    decode(body, json, request)
    rows = []
    for r, resource_metrics in enumerate(request.resource_metrics):
        resource = {**attributes(resource_metrics.resource.attributes), **extra_resource}
        for s, scope_metrics in enumerate(resource_metrics.scope_metrics):
            scope = scope_metrics.scope.name
            for m, metric in enumerate(scope_metrics.metrics):
                for p, (point, values) in enumerate(_point_values(metric)):
                    timestamp = _time(
                        point.time_unix_nano,
                        f"resourceMetrics.{r}.scopeMetrics.{s}.metrics.{m}.dataPoints.{p}.timeUnixNano",
                    )
                    point_attributes = attributes(point.attributes)
                    for name, value in values:
                        if not math.isfinite(value):  # NaN marks "no value"; the store keeps numbers
                            continue
                        rows.append(
                            metric_row(
                                timestamp=timestamp,
                                metric_id=content_id(resource, scope, name, point_attributes, timestamp),
                                name=name,
                                value=value,
                                attributes=point_attributes,
                                resource=resource,
                                unit=metric.unit,
                            )
                        )
    return rows
