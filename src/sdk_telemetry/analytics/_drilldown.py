"""Drill-down: from the figures to the things behind them — a function's recent calls, one trace's
spans, an error group's occurrences with their stack, the sessions and one session's timeline,
and the calls stored since a cursor (a live tail).

Calls are invocation spans (scope `sdk_telemetry`); a trace holds every span of its trace id,
other libraries' (an HTTP client's) included. An error group is what `top_errors` counts: an
`error.type` (or `Error`) and a function.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson
from sdk_telemetry_exporters.attributes import ERROR_PROPAGATED, ERROR_TYPE, INVOCATION_SCOPE

from sdk_telemetry.analytics._range import AnalyticsError, TimeRange
from sdk_telemetry.analytics._source import Source
from sdk_telemetry.store import iso

NS_PER_MS = 1_000_000
_HEX = re.compile(r"^[0-9a-f]{8,32}$")
_ERROR_TYPE_SQL = f"COALESCE(json_extract(SpanAttributes, '$.\"{ERROR_TYPE}\"'), 'Error')"


class NotFound(AnalyticsError):
    """What was asked for (a trace, a session) is not in the store."""


def _json(text: str | None) -> Any:
    try:
        return orjson.loads(text or "{}")
    except orjson.JSONDecodeError:
        return {}


_CALL_COLUMNS = (
    "rowid, Timestamp, SpanName, Duration, StatusCode, StatusMessage, TraceId, SpanId, ParentSpanId, "
    "ServiceName, Environment, SessionId, json_extract(ResourceAttributes, '$.\"enduser.id\"'), "
    f"json_extract(SpanAttributes, '$.\"{ERROR_TYPE}\"')"
)


def _call(row: tuple[Any, ...]) -> dict[str, Any]:
    _rowid, timestamp, name, duration, status, message, trace, span, parent, service, env, session, user, kind = row
    return {
        "timestamp": iso(timestamp),
        "function": name,
        "duration_ms": duration / NS_PER_MS,
        "status": status,
        "error_type": kind,
        "message": message or None,
        "trace_id": trace,
        "span_id": span,
        "parent_span_id": parent or None,
        "service": service or None,
        "environment": env or None,
        "session_id": session or None,
        "user_id": user,
    }


def recent_calls(
    source: Source,
    function: str | None = None,
    time_range: TimeRange | None = None,
    limit: int = 50,
    session: str | None = None,
    errors_only: bool = False,
) -> list[dict[str, Any]]:
    """The newest calls (of `function`, of `session`, failed ones only), newest first, each with its
    trace id for the trace view."""
    condition, params = source.calls(time_range or TimeRange())
    if function:
        condition += " AND +SpanName = ?"
        params.append(function)
    if session:
        condition += " AND SessionId = ?"
        params.append(session)
    if errors_only:
        condition += " AND StatusCode = 'Error'"
    rows = source.connection.execute(
        f"SELECT {_CALL_COLUMNS} FROM otel_traces WHERE {condition} ORDER BY Timestamp DESC, SpanId LIMIT ?",
        [*params, limit],
    )
    return [_call(row) for row in rows]


def _trace_id(source: Source, given: str) -> str:
    """The full trace id for `given` (the id, or a unique prefix of at least 8 hex digits)."""
    wanted = given.strip().lower()
    if not _HEX.match(wanted):
        raise AnalyticsError(f"trace: expected a trace id (32 hex digits, or its first 8 or more), got {given!r}")
    if len(wanted) == 32:
        return wanted
    found = [
        row[0]
        for row in source.connection.execute(
            "SELECT DISTINCT TraceId FROM otel_traces WHERE TraceId >= ? AND TraceId < ? LIMIT 2",
            [wanted, wanted + "g"],
        )
    ]
    if len(found) > 1:
        raise AnalyticsError(f"trace: {given!r} starts more than one trace id; give more of it")
    if not found:
        raise NotFound(f"no trace {given!r} in the store")
    return str(found[0])


def trace(source: Source, trace_id: str) -> dict[str, Any]:
    """Every stored span of one trace, parents before children (a waterfall): name, scope, service,
    start offset and duration (ms), depth, status, attributes and events (an exception's stack)."""
    full = _trace_id(source, trace_id)
    rows = source.connection.execute(
        "SELECT Timestamp, SpanId, ParentSpanId, SpanName, SpanKind, ScopeName, ServiceName, Duration, "
        "StatusCode, StatusMessage, SpanAttributes, Events, SessionId, ResourceAttributes "
        "FROM otel_traces WHERE TraceId = ? ORDER BY Timestamp, SpanId",
        [full],
    ).fetchall()
    if not rows:
        raise NotFound(f"no trace {trace_id!r} in the store")
    start = min(row[0] for row in rows)
    end = max(row[0] + row[7] for row in rows)
    spans: dict[str, dict[str, Any]] = {}
    for timestamp, span, parent, name, kind, scope, service, duration, status, message, attrs, events, sid, res in rows:
        spans[span] = {
            "span_id": span,
            "parent_span_id": parent or None,
            "name": name,
            "kind": kind,
            "scope": scope,
            "call": scope == INVOCATION_SCOPE,
            "service": service or None,
            "session_id": sid or None,
            "start": iso(timestamp),
            "offset_ms": (timestamp - start) / NS_PER_MS,
            "duration_ms": duration / NS_PER_MS,
            "status": status,
            "status_message": message or None,
            "attributes": _json(attrs),
            "resource": _json(res),
            "events": [_event(e) for e in _json(events) or [] if isinstance(e, dict)],
            "depth": 0,
        }
    children: dict[str | None, list[str]] = {}
    for span_id, span in spans.items():
        parent = span["parent_span_id"] if span["parent_span_id"] in spans else None
        children.setdefault(parent, []).append(span_id)
    ordered: list[dict[str, Any]] = []

    def walk(parent: str | None, depth: int) -> None:
        for span_id in children.get(parent, []):  # already in start order
            spans[span_id]["depth"] = depth
            ordered.append(spans[span_id])
            walk(span_id, depth + 1)

    walk(None, 0)
    return {
        "trace_id": full,
        "start": iso(start),
        "duration_ms": (end - start) / NS_PER_MS,
        "spans": ordered,
        "services": sorted({s["service"] for s in ordered if s["service"]}),
        "errors": sum(1 for s in ordered if s["status"] == "Error"),
    }


def _event(event: dict[str, Any]) -> dict[str, Any]:
    """A span event as the trace view shows it."""
    return {
        "name": event.get("Name"),
        "timestamp": iso(int(event.get("Timestamp") or 0)),
        "attributes": event.get("Attributes"),
    }


def _stack(events: str | None) -> tuple[str | None, str | None]:
    """(type, stack trace) of the first `exception` event of a span's Events."""
    for event in _json(events) or []:
        if isinstance(event, dict) and event.get("Name") == "exception":
            attributes = event.get("Attributes") or {}
            return attributes.get("exception.type"), attributes.get("exception.stacktrace")
    return None, None


def error_occurrences(
    source: Source,
    error_type: str,
    function: str | None = None,
    time_range: TimeRange | None = None,
    limit: int = 20,
) -> list[dict[str, Any]]:
    """The newest failed calls of one error group (`error_type`, and `function` when given), each with
    its message, stack trace (None when an inner call recorded it: `propagated`), trace and session."""
    if not error_type:
        raise AnalyticsError("type: name the error type of the group, such as type=ValueError")
    condition, params = source.calls(time_range or TimeRange())
    condition += f" AND StatusCode = 'Error' AND {_ERROR_TYPE_SQL} = ?"
    params.append(error_type)
    if function:
        condition += " AND +SpanName = ?"
        params.append(function)
    rows = source.connection.execute(
        f"SELECT {_CALL_COLUMNS}, Events, json_extract(SpanAttributes, '$.\"{ERROR_PROPAGATED}\"') "
        f"FROM otel_traces WHERE {condition} ORDER BY Timestamp DESC, SpanId LIMIT ?",
        [*params, limit],
    )
    found = []
    for row in rows:
        occurrence = _call(row[:-2])
        occurrence["error_type"] = occurrence["error_type"] or "Error"
        _, occurrence["stacktrace"] = _stack(row[-2])
        occurrence["propagated"] = bool(row[-1])
        found.append(occurrence)
    return found


@dataclass(frozen=True)
class _SessionRow:
    session_id: str
    first: int
    last: int
    calls: int
    errors: int
    user: str | None
    service: str | None
    environment: str | None


def sessions(source: Source, time_range: TimeRange | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Sessions with calls in the range, the latest active first: user, service, first and last call,
    duration, calls, errors and events."""
    condition, params = source.calls(time_range or TimeRange())
    rows = [
        _SessionRow(*row)
        for row in source.connection.execute(
            f"""SELECT SessionId, MIN(Timestamp), MAX(Timestamp + Duration), COUNT(*),
                       SUM(StatusCode = 'Error'), MAX(json_extract(ResourceAttributes, '$."enduser.id"')),
                       MAX(ServiceName), MAX(Environment)
                FROM otel_traces WHERE {condition} AND SessionId != ''
                GROUP BY SessionId ORDER BY 3 DESC, 1 LIMIT ?""",
            [*params, limit],
        )
    ]
    events: dict[str, int] = {}
    if source.has_logs and rows:
        marks = ", ".join("?" * len(rows))
        events = dict(
            source.connection.execute(
                f"SELECT SessionId, COUNT(*) FROM otel_logs WHERE SessionId IN ({marks}) GROUP BY SessionId",
                [row.session_id for row in rows],
            ).fetchall()
        )
    return [
        {
            "session_id": row.session_id,
            "user_id": row.user,
            "service": row.service or None,
            "environment": row.environment or None,
            "start": iso(row.first),
            "end": iso(row.last),
            "duration_s": (row.last - row.first) / 1e9,
            "calls": row.calls,
            "errors": row.errors,
            "events": events.get(row.session_id, 0),
        }
        for row in rows
    ]


def session_timeline(source: Source, session_id: str, limit: int = 2000) -> dict[str, Any]:
    """One session's calls and events, in time order (calls made inside another call carry its span id
    as `parent_span_id`)."""
    if not session_id:
        raise AnalyticsError("session: give a session id")
    condition, params = source.calls(TimeRange())
    calls = [
        {"kind": "call", **_call(row)}
        for row in source.connection.execute(
            f"SELECT {_CALL_COLUMNS} FROM otel_traces WHERE {condition} AND SessionId = ? "
            "ORDER BY Timestamp, SpanId LIMIT ?",
            [*params, session_id, limit],
        )
    ]
    events: list[dict[str, Any]] = []
    if source.has_logs:
        log_condition, log_params = source.events(TimeRange())
        for timestamp, name, severity, body, attributes, trace_id in source.connection.execute(
            f"SELECT Timestamp, EventName, SeverityText, Body, LogAttributes, TraceId FROM otel_logs "
            f"WHERE {log_condition} AND SessionId = ? ORDER BY Timestamp, EventId LIMIT ?",
            [*log_params, session_id, limit],
        ):
            events.append(
                {
                    "kind": "event",
                    "timestamp": iso(timestamp),
                    "name": name or None,
                    "severity": severity or None,
                    "body": body,
                    "attributes": _json(attributes),
                    "trace_id": trace_id or None,
                }
            )
    if not calls and not events:
        raise NotFound(f"no session {session_id!r} in the store")
    items = sorted(calls + events, key=lambda item: item["timestamp"])
    first = calls[0] if calls else {}
    return {
        "session_id": session_id,
        "user_id": first.get("user_id"),
        "service": first.get("service"),
        "environment": first.get("environment"),
        "start": items[0]["timestamp"],
        "end": items[-1]["timestamp"],
        "calls": len(calls),
        "errors": sum(1 for call in calls if call["status"] == "Error"),
        "events": len(events),
        "items": items,
    }


def tail(source: Source, after: int | None = None, limit: int = 100) -> dict[str, Any]:
    """Calls stored after the cursor `after` (all new ones, in the order they were stored, at most
    `limit`), or the last `limit` calls without one; and the cursor to ask with next time."""
    condition, params = source.calls(TimeRange())
    if after is None:
        rows = source.connection.execute(
            f"SELECT {_CALL_COLUMNS} FROM otel_traces WHERE {condition} ORDER BY rowid DESC LIMIT ?",
            [*params, limit],
        ).fetchall()[::-1]
    else:
        rows = source.connection.execute(
            f"SELECT {_CALL_COLUMNS} FROM otel_traces WHERE rowid > ? AND {condition} ORDER BY rowid LIMIT ?",
            [after, *params, limit],
        ).fetchall()
    if rows:
        cursor = int(rows[-1][0])
    elif after is not None:
        cursor = after
    else:
        (top,) = source.connection.execute("SELECT COALESCE(MAX(rowid), 0) FROM otel_traces").fetchone()
        cursor = int(top)
    return {"calls": [_call(row) for row in rows], "cursor": cursor}
