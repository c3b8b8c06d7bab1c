"""A simulated week up to a chosen moment: 84 sessions of 15 users on two services and two
environments, only in the daytime (08:00-20:00 UTC, so every night is a gap), each session
logging in, listing, executing tools (each with an HTTP child span) and searching, some executes
failing with a stack trace, and each session's events in the events table.

`week(now_ns)` returns the spans, the event rows and what was made (`Made`), from which the tests
compute their expectations independently of the store's SQL.
"""

from __future__ import annotations

import random
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from sdk_telemetry.store import _rows, _sqlite
from tests.helpers.spans import DAY, HOUR, MS, NS, write_spans

LOGIN, LIST, EXECUTE, SEARCH, HTTP = "Client.login", "Tools.list", "Tools.execute", "Tools.search", "POST"
#: A fixed "now" for the week's tests (a Thursday afternoon, UTC), in nanoseconds.
WEEK_NOW = int(datetime(2026, 12, 3, 15, 20, tzinfo=timezone.utc).timestamp()) * 1_000_000_000
SESSIONS_PER_DAY = 12
USERS = 15
DAY_START_HOUR, DAY_END_HOUR = 8, 20


def _stack(message: str) -> str:
    """A real Python traceback text of a ToolTimeout raised two frames deep."""

    class ToolTimeout(Exception):
        pass

    def call_tool() -> None:
        raise ToolTimeout(message)

    try:
        call_tool()
    except ToolTimeout as exc:
        return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    raise AssertionError("unreachable")


@dataclass
class Made:
    """What the week holds, as made: every invocation (start ns, function, service, environment,
    session, failed), the HTTP children, and the sessions."""

    calls: list[tuple[int, str, str, str, str, bool]] = field(default_factory=list)
    http: list[tuple[int, str]] = field(default_factory=list)  # (start, parent trace id hex)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)

    def count(self, start: int, end: int, **where: Any) -> int:
        """Invocations in [start, end) matching `function`, `service`, `environment`, `session`, `failed`."""
        keys = ("at", "function", "service", "environment", "session", "failed")
        total = 0
        for call in self.calls:
            row = dict(zip(keys, call, strict=True))
            if start <= row["at"] < end and all(row[key] == value for key, value in where.items()):
                total += 1
        return total


class _Ids:
    """Span ids in sequence; trace ids as random as real ones (from a seeded generator)."""

    def __init__(self, first: int) -> None:
        self.value = first
        self.random = random.Random(first)

    def next(self) -> int:
        self.value += 1
        return self.value

    def trace(self) -> int:
        return self.random.getrandbits(128) | 1 << 127


def _span(
    ids: _Ids,
    name: str,
    start: int,
    duration_ms: float,
    resource: dict[str, Any],
    parent: SpanContext | None = None,
    error: str | None = None,
    scope: str = "sdk_telemetry",
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: dict[str, Any] | None = None,
) -> ReadableSpan:
    context = SpanContext(parent.trace_id if parent else ids.trace(), ids.next(), False, TraceFlags(TraceFlags.SAMPLED))
    values: dict[str, Any] = dict(attributes or {})
    events = []
    if scope == "sdk_telemetry":
        values["code.function.name"] = name
    if error:
        kind_name, message = error.split(": ", 1)
        values["error.type"] = kind_name
        values["sdk_telemetry.error.id"] = f"{context.span_id:016x}"
        events.append(
            Event(
                "exception",
                {"exception.type": kind_name, "exception.message": message, "exception.stacktrace": _stack(message)},
                start + int(duration_ms * MS),
            )
        )
    return ReadableSpan(
        name=name,
        context=context,
        parent=parent,
        resource=Resource.create(resource),
        attributes=values,
        events=events,
        kind=kind,
        status=Status(StatusCode.ERROR, error) if error else Status(StatusCode.OK),
        start_time=start,
        end_time=start + int(duration_ms * MS),
        instrumentation_scope=InstrumentationScope(scope, "0.1.0"),
    )


def week(now_ns: int, seed: int = 15) -> tuple[list[ReadableSpan], list[tuple[Any, ...]], Made]:
    """Seven days of daytime sessions ending before `now_ns` (today's only up to then)."""
    rng = random.Random(seed)
    ids = _Ids(40_000_000)
    spans: list[ReadableSpan] = []
    events: list[tuple[Any, ...]] = []
    made = Made()
    today = now_ns - now_ns % DAY
    index = 0
    for day in range(-6, 1):
        midnight = today + day * DAY
        for slot in range(SESSIONS_PER_DAY):
            start = (
                midnight
                + DAY_START_HOUR * HOUR
                + int(slot * (DAY_END_HOUR - DAY_START_HOUR - 1) * HOUR / SESSIONS_PER_DAY)
            )
            start += rng.randint(0, 20 * 60) * NS
            if start >= now_ns - 10 * 60 * NS:
                continue
            session = f"w-{index:03d}"
            user = f"user-{index % USERS:02d}"
            service = "billing-sdk" if index % 5 == 4 else "acme-sdk"
            environment = "staging" if index % 4 == 3 else "production"
            index += 1
            resource = {
                "service.name": service,
                "deployment.environment.name": environment,
                "session.id": session,
                "enduser.id": user,
            }
            plan = [LOGIN, LIST] + [EXECUTE] * rng.randint(1, 3) + ([SEARCH] if rng.random() < 0.6 else [])
            at = start
            made.sessions[session] = {"user": user, "service": service, "environment": environment, "start": start}
            events.append(_event(session, resource, at - 50 * MS, "SESSION_START", "session started"))
            for name in plan:
                duration = {LOGIN: 40, LIST: 20, EXECUTE: 180, SEARCH: 60}[name] * rng.lognormvariate(0, 0.3)
                failed = name == EXECUTE and rng.random() < 0.15
                error = "ToolTimeout: tool 'github.create_issue' did not answer within 30 s" if failed else None
                span = _span(ids, name, at, duration, resource, error=error)
                spans.append(span)
                made.calls.append((at, name, service, environment, session, failed))
                if name == EXECUTE:
                    http = _span(ids, HTTP, at + 3 * MS, duration * 0.7, resource, parent=span.context,
                                 scope="sdk_telemetry.http", kind=SpanKind.CLIENT,
                                 attributes={"http.request.method": "POST", "url.full": "http://127.0.0.1:9/tools/run",
                                             "http.response.status_code": 504 if failed else 200})  # fmt: skip
                    spans.append(http)
                    made.http.append((at + 3 * MS, f"{span.context.trace_id:032x}"))
                at += int((duration + rng.uniform(500, 3000)) * MS)
            events.append(_event(session, resource, at, "SESSION_END", "session ended"))
            made.sessions[session]["end"] = at
    return spans, events, made


def _event(session: str, resource: dict[str, Any], at: int, name: str, body: str) -> tuple[Any, ...]:
    return _rows.log_row(
        timestamp=at,
        event_id=f"{session}-{name}",
        body=body,
        resource=resource,
        attributes={"session.id": session},
        event_name=name,
        severity="INFO",
        severity_number=9,
        scope="sdk_telemetry.events",
    )


def write_week(path: Path, now_ns: int) -> Made:
    """Store the week at `path` (spans through the `local` exporter, events through the store's insert)."""
    spans, events, made = week(now_ns)
    write_spans(path, spans)
    connection = _sqlite.connect(path)
    try:
        with connection:
            connection.execute("BEGIN IMMEDIATE")
            _sqlite.insert_events(connection, events)
    finally:
        connection.close()
    return made
