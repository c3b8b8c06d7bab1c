"""Validated JSON payloads onto store rows: Composio invocations become `otel_traces` rows,
Tinker events `otel_logs` rows, recorded values `otel_metrics_gauge` rows.

Ids, for deduplication: `metadata.eventId` (48 hex characters) is the span's TraceId + SpanId;
without it the ids are derived from the request's `Idempotency-Key`, or else from its body, and
the item's position, so that a retried request lands once and distinct items never merge.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from sdk_telemetry_exporters import attributes as attr
from sdk_telemetry_exporters import composio

from sdk_telemetry import store
from sdk_telemetry.receiver._models import Invocation, MetricValue, TinkerBatch
from sdk_telemetry.store import LogRow, MetricRow, TraceRow, datetime_ns

NS_PER_S = 1_000_000_000
ENDUSER_ID = "enduser.id"
#: Values adjusted to fit the store, by kind (answered to the client and counted in `/health`).
Adjustments = Counter[str]
_SEVERITY_NUMBER = {"DEBUG": 5, "INFO": 9, "WARNING": 13, "ERROR": 17, "CRITICAL": 21}
_RESOURCE_KEYS = (
    ("service", attr.SOURCE_SERVICE),
    ("version", attr.SERVICE_VERSION),
    ("host", attr.HOST_NAME),
    ("platform", attr.OS_TYPE),
    ("environment", attr.DEPLOYMENT_ENVIRONMENT),
)


#: Longest function name stored; longer ones are cut (and counted), as the real schema takes any.
MAX_NAME_LENGTH = 1024
_SOURCE_ENUMS = (
    ("service", composio.normalize_service),
    ("language", composio.normalize_language),
    ("environment", composio.normalize_environment),
)
_METADATA_KEYS = (
    ("projectId", attr.PROJECT_ID),
    ("provider", attr.PROVIDER),
    ("sessionId", attr.SESSION_ID),
    ("userId", ENDUSER_ID),
)


def _resource(payload: Invocation, extra: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """The resource of `payload`, and how many `source` enum values were dropped (not one of theirs)."""
    resource: dict[str, Any] = {}
    source: dict[str, Any] = dict(payload.get("source") or {})
    dropped = 0
    for key, normalize in _SOURCE_ENUMS:
        if key in source:
            value = normalize(source[key])
            if value is None:
                del source[key]
                dropped += 1
            else:
                source[key] = value
    for key, attribute in _RESOURCE_KEYS:
        value = source.get(key)
        if value is not None:
            resource[attribute] = value
    if "language" in source:
        resource["telemetry.sdk.language"] = source["language"]
    metadata = payload.get("metadata") or {}
    for key, attribute in _METADATA_KEYS:
        if key in metadata:
            resource[attribute] = metadata[key]  # type: ignore[literal-required]
    resource[attr.SERVICE_NAME] = metadata.get("serviceName") or source.get("service") or "unknown_service"
    resource.update(extra)
    return resource, dropped


def invocation_rows(
    payloads: Sequence[Invocation],
    idempotency_key: str | None,
    body: bytes,
    extra_resource: Mapping[str, Any],
    now_ns: int,
    adjusted: Adjustments,
) -> list[TraceRow]:
    """`otel_traces` rows for Composio-style payloads (one span each, scope `sdk_telemetry`).

    An item without `metadata.eventId` is keyed on the request (its `Idempotency-Key`, or else
    the digest of its `body`) and its position: distinct items of one request are
    distinct calls even when their bytes are equal, and a resent request lands once. Values the
    real schema accepts but the store cannot use are adjusted and counted in `adjusted`: negative
    durations become 0, names are cut at `MAX_NAME_LENGTH`, unknown `source` enum values dropped.

    The rows are the ones `store.trace_row` builds, assembled here directly: this runs for every
    event the receiver takes in (attributes hold no sample rate or session, so the rate is 1.0 and
    the session comes from the resource).
    """
    rows = []
    # One resource (and its encoding) per distinct source + metadata (but the event id) in the batch.
    resources: dict[Any, tuple[str, str, str, str, int]] = {}
    scope = attr.INVOCATION_SCOPE
    seed: tuple[str, str] | None = ("idempotency-key", idempotency_key) if idempotency_key else None
    for index, payload in enumerate(payloads):
        metadata = payload.get("metadata")
        event_id = metadata.get("eventId") if metadata else None
        if event_id is None:
            if seed is None:  # the body's digest, taken only when an item has no event id
                seed = ("body", hashlib.blake2b(body, digest_size=24).hexdigest())
            event_id = store.content_id(*seed, index)
        timestamp = payload.get("timestamp")
        start = int(timestamp * NS_PER_S) if timestamp is not None else now_ns
        source = payload.get("source")
        cache_key = (
            tuple(source.items()) if source else None,
            (
                metadata.get("projectId"),
                metadata.get("provider"),
                metadata.get("serviceName"),
                metadata.get("sessionId"),
                metadata.get("userId"),
            )
            if metadata
            else None,
        )
        cached = resources.get(cache_key)
        if cached is None:
            resource, dropped = _resource(payload, extra_resource)
            cached = resources[cache_key] = (
                str(resource[attr.SERVICE_NAME]),
                store.dumps(resource),
                str(resource.get(attr.DEPLOYMENT_ENVIRONMENT, "")),
                str(resource.get(attr.SESSION_ID) or ""),
                dropped,
            )
        service, resource_json, environment, session, dropped = cached
        if dropped:
            adjusted["source_values_dropped"] += dropped
        error = payload.get("error")
        if error is None and "props" not in payload:
            attributes_json, status, message, events_json = "{}", "Unset", "", "[]"
        else:
            attributes: dict[str, Any] = {}
            events: list[dict[str, Any]] = []
            status, message = "Unset", ""
            if error is not None:
                status, message = "Error", error.get("message", "")
                attributes[attr.ERROR_TYPE] = error["name"]
                if "errorId" in error:
                    attributes[attr.ERROR_ID] = error["errorId"]
                if "code" in error:
                    attributes[attr.ERROR_CODE] = error["code"]
                exception = {"exception.type": error["name"]}
                if "message" in error:
                    exception["exception.message"] = error["message"]
                if "stack" in error:
                    exception["exception.stacktrace"] = error["stack"]
                events.append({"Timestamp": start, "Name": "exception", "Attributes": exception})
            if "props" in payload:
                attributes[attr.PROPS] = store.dumps(payload["props"])
            attributes_json, events_json = store.dumps(attributes), store.dumps(events)
        duration_ms = payload.get("durationMs", 0.0)
        if duration_ms < 0:  # any negative number, down to -1.8e308, is a clock step: 0
            adjusted["durations_clamped"] += 1
            duration_ms = 0.0
        duration = int(duration_ms * 1_000_000)
        name = payload["functionName"]
        if len(name) > MAX_NAME_LENGTH:
            adjusted["names_truncated"] += 1
            name = name[:MAX_NAME_LENGTH]
        rows.append(
            (
                start,
                event_id[:32],
                event_id[32:48],
                "",
                "",
                name,
                "Internal",
                service,
                resource_json,
                scope,
                "",
                attributes_json,
                duration,
                status,
                message,
                events_json,
                "[]",
                1.0,
                environment,
                session,
            )
        )
    return rows


def tinker_rows(batch: TinkerBatch, extra_resource: Mapping[str, Any]) -> list[LogRow]:
    """`otel_logs` rows for a Tinker-style session batch; each event keyed by its `event_id`."""
    resource: dict[str, Any] = {
        attr.SESSION_ID: batch["session_id"],
        "process.uuid": batch["process_uuid"],
        "os.type": batch["platform"],
        "telemetry.sdk.version": batch["sdk_version"],
        **extra_resource,
    }
    rows = []
    for event in batch["events"]:
        fields: dict[str, Any] = dict(event)
        kind = fields.pop("event")
        timestamp = fields.pop("timestamp")
        event_id = str(fields.pop("event_id"))
        severity = fields.pop("severity")
        attributes: dict[str, Any] = {"event.type": kind}
        for key, value in fields.items():
            attributes[key] = store.dumps(value) if isinstance(value, dict) else value
        name = str(fields.get("event_name") or kind)
        rows.append(
            store.log_row(
                timestamp=datetime_ns(timestamp),
                event_id=event_id,
                body=str(fields.get("error_message") or name),
                event_name=name,
                severity=severity,
                severity_number=_SEVERITY_NUMBER[severity],
                resource=resource,
                attributes=attributes,
                scope="tinker",
            )
        )
    return rows


def metric_row(value: MetricValue, idempotency_key: str | None, extra_resource: Mapping[str, Any]) -> MetricRow:
    """An `otel_metrics_gauge` row for one recorded value."""
    timestamp = value.get("timestamp")
    ns = int(timestamp * NS_PER_S) if timestamp is not None else time.time_ns()
    return store.metric_row(
        timestamp=ns,
        metric_id=store.content_id("idempotency-key", idempotency_key)
        if idempotency_key
        else store.content_id(value, ns),
        name=value["name"],
        value=value["value"],
        attributes=value.get("context") or {},
        resource=dict(extra_resource),
        unit=value.get("unit", ""),
    )
