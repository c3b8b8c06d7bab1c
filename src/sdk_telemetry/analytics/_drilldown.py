"""Drill-down: from the figures to the things behind them — a function's recent calls, one trace's
spans, an error group's occurrences with their stack, the sessions and one session's timeline,
and the calls stored since a cursor (a live tail).

Calls are invocation spans (scope `sdk_telemetry`); a trace holds every span of its trace id,
other libraries' (an HTTP client's) included. An error group is what `top_errors` counts: an
`error.type` (or `Error`) and a function.
"""

from __future__ import annotations

import re
from typing import Any

from sdk_telemetry_exporters.attributes import INVOCATION_SCOPE

from sdk_telemetry.analytics._range import AnalyticsError, TimeRange
from sdk_telemetry.analytics._source import Source
from sdk_telemetry.store import CallRow, iso

NS_PER_MS = 1_000_000
_HEX = re.compile(r"^[0-9a-f]{8,32}$")


class NotFound(AnalyticsError):
    """What was asked for (a trace, a session) is not in the store."""


def _call(row: CallRow) -> dict[str, Any]:
    return {
        "timestamp": iso(row.timestamp),
        "function": row.function,
        "duration_ms": row.duration / NS_PER_MS,
        "status": row.status,
        "error_type": row.error_type,
        "message": row.message or None,
        "trace_id": row.trace_id,
        "span_id": row.span_id,
        "parent_span_id": row.parent_span_id or None,
        "service": row.service or None,
        "environment": row.environment or None,
        "session_id": row.session_id or None,
        "user_id": row.user_id,
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
    scope = source.scope(time_range, function=function or None, session=session or None, errors_only=errors_only)
    rows = source.reader.calls(scope, "newest", limit)
    return [_call(row) for row in rows]


def _trace_id(source: Source, given: str) -> str:
    """The full trace id for `given` (the id, or a unique prefix of at least 8 hex digits)."""
    wanted = given.strip().lower()
    if not _HEX.match(wanted):
        raise AnalyticsError(f"trace: expected a trace id (32 hex digits, or its first 8 or more), got {given!r}")
    if len(wanted) == 32:
        return wanted
    found = source.reader.trace_ids(wanted, 2)
    if len(found) > 1:
        raise AnalyticsError(f"trace: {given!r} starts more than one trace id; give more of it")
    if not found:
        raise NotFound(f"no trace {given!r} in the store")
    return str(found[0])


def trace(source: Source, trace_id: str) -> dict[str, Any]:
    """Every stored span of one trace, parents before children (a waterfall): name, scope, service,
    start offset and duration (ms), depth, status, attributes and events (an exception's stack)."""
    full = _trace_id(source, trace_id)
    rows = source.reader.trace_spans(full)
    if not rows:
        raise NotFound(f"no trace {trace_id!r} in the store")
    start = min(row.timestamp for row in rows)
    end = max(row.timestamp + row.duration for row in rows)
    spans: dict[str, dict[str, Any]] = {}
    for row in rows:
        spans[row.span_id] = {
            "span_id": row.span_id,
            "parent_span_id": row.parent_span_id or None,
            "name": row.name,
            "kind": row.kind,
            "scope": row.scope,
            "call": row.scope == INVOCATION_SCOPE,
            "service": row.service or None,
            "session_id": row.session_id or None,
            "start": iso(row.timestamp),
            "offset_ms": (row.timestamp - start) / NS_PER_MS,
            "duration_ms": row.duration / NS_PER_MS,
            "status": row.status,
            "status_message": row.status_message or None,
            "attributes": row.attributes,
            "resource": row.resource,
            "events": [_event(event) for event in row.events],
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


def _stack(events: list[dict[str, Any]]) -> tuple[str | None, str | None]:
    """(type, stack trace) of the first `exception` event of a span's events."""
    for event in events:
        if event.get("Name") == "exception":
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
    scope = source.scope(time_range, function=function or None, error_type=error_type)
    found = []
    for row in source.reader.calls(scope, "newest", limit, with_events=True):
        occurrence = _call(row)
        occurrence["error_type"] = row.error_type or "Error"
        _, occurrence["stacktrace"] = _stack(row.events)
        occurrence["propagated"] = row.propagated
        found.append(occurrence)
    return found


def sessions(source: Source, time_range: TimeRange | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Sessions with calls in the range, the latest active first: user, service, first and last call,
    duration, calls, errors and events."""
    rows = source.reader.sessions(source.scope(time_range), limit)
    events = source.reader.event_counts([row.session_id for row in rows]) if rows else {}
    return [
        {
            "session_id": row.session_id,
            "user_id": row.user_id,
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
    calls = [
        {"kind": "call", **_call(row)} for row in source.reader.calls(source.scope(session=session_id), "oldest", limit)
    ]
    events: list[dict[str, Any]] = [
        {
            "kind": "event",
            "timestamp": iso(event.timestamp),
            "name": event.name or None,
            "severity": event.severity or None,
            "body": event.body,
            "attributes": event.attributes,
            "trace_id": event.trace_id or None,
        }
        for event in source.reader.events(source.scope(session=session_id), limit)
    ]
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
    rows = list(source.reader.calls(source.scope(), "stored", limit, after))
    if rows:
        cursor = rows[-1].cursor
    elif after is not None:
        cursor = after
    else:
        cursor = source.reader.last_cursor()
    return {"calls": [_call(row) for row in rows], "cursor": cursor}
