"""Rows of the store's tables, built from already-decoded values; one place for the column order."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from sdk_telemetry_exporters import attributes as attr

TraceRow = tuple[Any, ...]
LogRow = tuple[Any, ...]
MetricRow = tuple[Any, ...]


def dumps(value: Any) -> str:
    """Compact JSON text (unknown objects as their `str`)."""
    if not value:
        return "[]" if isinstance(value, (list, tuple)) else "{}" if isinstance(value, dict) else _dumps(value)
    return _dumps(value)


def _dumps(value: Any) -> str:
    try:
        return orjson.dumps(value, default=str).decode()
    except orjson.JSONEncodeError:  # rare: an integer beyond 64 bits, nesting beyond orjson's limit
        return orjson.dumps(_storable(value, 0), default=str, option=orjson.OPT_NON_STR_KEYS).decode()


_MIN_INT, _MAX_UINT = -(2**63), 2**64 - 1
#: Nesting kept as it is; deeper parts are stored as their text.
_MAX_DEPTH = 200


def _storable(value: Any, depth: int) -> Any:
    """`value` with integers beyond 64 bits as floats (as a JavaScript client meant them) or, beyond
    the float range, as text, and nesting deeper than `_MAX_DEPTH` as text."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if _MIN_INT <= value <= _MAX_UINT:
            return value
        try:
            return float(value)
        except OverflowError:
            return str(value)
    if depth >= _MAX_DEPTH and isinstance(value, (dict, list, tuple)):
        return str(value)
    if isinstance(value, dict):
        return {key: _storable(item, depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_storable(item, depth + 1) for item in value]
    return value


def sample_rate(attributes: Mapping[str, Any]) -> float:
    """The rate a kept span was sampled at, in (0, 1]; 1.0 when absent or not a valid rate."""
    value = attributes.get(attr.SAMPLE_RATE)
    if value is None:
        return 1.0
    try:
        rate = float(value)
    except (TypeError, ValueError):
        return 1.0
    return rate if 0.0 < rate <= 1.0 and math.isfinite(rate) else 1.0


def content_id(*parts: Any, size: int = 24) -> str:
    """A deterministic hex id (`2 * size` characters) from content: the same input gives the same id."""
    digest = hashlib.blake2b(digest_size=size)
    for part in parts:
        try:
            encoded = orjson.dumps(part, option=orjson.OPT_SORT_KEYS, default=str)
        except orjson.JSONEncodeError:  # see `dumps`
            encoded = orjson.dumps(
                _storable(part, 0), option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str
            )
        digest.update(encoded)
        digest.update(b"\x00")
    return digest.hexdigest()


def trace_row(
    *,
    timestamp: int,
    trace_id: str,
    span_id: str,
    name: str,
    duration: int,
    resource: Mapping[str, Any],
    attributes: Mapping[str, Any],
    resource_json: str | None = None,
    kind: str = "Internal",
    service: str = "",
    scope: str = "",
    scope_version: str = "",
    status: str = "Unset",
    status_message: str = "",
    events: Sequence[Mapping[str, Any]] = (),
    links: Sequence[Mapping[str, Any]] = (),
    parent_span_id: str = "",
    trace_state: str = "",
) -> TraceRow:
    """One `otel_traces` row (times and durations in nanoseconds); `resource_json`, when given, is
    `resource` already encoded (shared by the spans of one batch)."""
    session = attributes.get(attr.SESSION_ID) or resource.get(attr.SESSION_ID) or ""
    return (
        int(timestamp),
        trace_id,
        span_id,
        parent_span_id,
        trace_state,
        name,
        kind,
        service or str(resource.get(attr.SERVICE_NAME, "")),
        resource_json if resource_json is not None else dumps(resource),
        scope,
        scope_version,
        dumps(attributes),
        max(0, int(duration)),
        status,
        status_message,
        dumps(list(events)),
        dumps(list(links)),
        sample_rate(attributes),
        str(resource.get(attr.DEPLOYMENT_ENVIRONMENT, "")),
        str(session),
    )


def log_row(
    *,
    timestamp: int,
    event_id: str,
    body: str,
    resource: Mapping[str, Any],
    attributes: Mapping[str, Any],
    event_name: str = "",
    severity: str = "",
    severity_number: int = 0,
    service: str = "",
    scope: str = "",
    trace_id: str = "",
    span_id: str = "",
) -> LogRow:
    """One `otel_logs` row."""
    session = attributes.get(attr.SESSION_ID) or resource.get(attr.SESSION_ID) or ""
    return (
        int(timestamp),
        event_id,
        trace_id,
        span_id,
        severity,
        int(severity_number),
        service or str(resource.get(attr.SERVICE_NAME, "")),
        body,
        dumps(resource),
        scope,
        dumps(attributes),
        event_name,
        str(session),
    )


def metric_row(
    *,
    timestamp: int,
    metric_id: str,
    name: str,
    value: float,
    attributes: Mapping[str, Any],
    resource: Mapping[str, Any],
    unit: str = "",
    service: str = "",
) -> MetricRow:
    """One `otel_metrics_gauge` row."""
    return (
        int(timestamp),
        metric_id,
        service or str(resource.get(attr.SERVICE_NAME, "")),
        name,
        unit,
        dumps(attributes),
        dumps(resource),
        float(value),
    )
