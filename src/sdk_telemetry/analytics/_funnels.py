"""Conversion funnels: how many sessions (or users) went through ordered steps within a window.

A step is a function name (an instrumented call) or an event name (`otel_logs.EventName`). An
actor reaches step k when steps 1..k happened in that order, all within `window` of the step-1
occurrence that started the chain — the semantics of ClickHouse's `windowFunnel(window)`, which
answers the same question on a cluster:

    SELECT level, count() FROM (
        SELECT ResourceAttributes['session.id'] AS actor,
               windowFunnel(<window>)(Timestamp, SpanName = 's1', SpanName = 's2', ...) AS level
        FROM otel_traces WHERE ... GROUP BY actor) GROUP BY level
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sdk_telemetry.analytics._range import NS, AnalyticsError, TimeRange
from sdk_telemetry.analytics._source import Source


@dataclass(frozen=True)
class FunnelStep:
    """One step: how many actors reached it, and how many were lost since the previous one."""

    step: str
    count: int
    conversion: float  # share of the actors who entered the funnel (reached step 1)
    from_previous: float  # share of the previous step's actors
    dropped: int  # actors who reached the previous step but not this one


@dataclass(frozen=True)
class Funnel:
    """A funnel's steps over a time range, counted per `by` (session or user)."""

    by: str
    window_seconds: float
    time_range: dict[str, str | None]
    entered: int
    completed: int
    steps: list[FunnelStep]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def _occurrences(source: Source, steps: Sequence[str], by: str, time_range: TimeRange) -> list[tuple[Any, int, str]]:
    """(actor, timestamp, name) for every call or event named as a step, ordered by actor and time."""
    marks = ", ".join("?" * len(set(steps)))
    names = sorted(set(steps))
    condition, params = source.calls(time_range)
    log_condition, log_params = source.events(time_range)
    actor, actor_params = source.entity(by)
    queries = [
        f"SELECT {actor} AS actor, Timestamp, SpanName FROM otel_traces "
        f"WHERE +SpanName IN ({marks}) AND {condition} AND actor IS NOT NULL"
    ]
    values: list[Any] = [*actor_params, *names, *params]
    if source.has_logs:
        log_actor, log_actor_params = source.entity(by, table="otel_logs")
        queries.append(
            f"SELECT {log_actor} AS actor, Timestamp, EventName FROM otel_logs "
            f"WHERE EventName IN ({marks}) AND {log_condition} AND actor IS NOT NULL"
        )
        values += [*log_actor_params, *names, *log_params]
    sql = " UNION ALL ".join(queries) + " ORDER BY actor, Timestamp"
    return source.connection.execute(sql, values).fetchall()


def _level(events: list[tuple[int, str]], steps: Sequence[str], window_ns: int) -> int:
    """How many steps one actor completed in order within the window (ClickHouse windowFunnel)."""
    starts: list[int | None] = [None] * len(steps)
    best = 0
    for timestamp, name in events:
        # Walk the steps backwards so that one event never advances two levels at once.
        for index in range(len(steps) - 1, -1, -1):
            if steps[index] != name:
                continue
            if index == 0:
                starts[0] = timestamp
            else:
                start = starts[index - 1]
                if start is not None and timestamp - start <= window_ns:
                    starts[index] = start
            if starts[index] is not None:
                best = max(best, index + 1)
    return best


def funnel(
    source: Source,
    steps: Sequence[str],
    window_seconds: float = 3600.0,
    by: str = "session",
    time_range: TimeRange | None = None,
) -> Funnel:
    """Counts and drop-off per step of an ordered funnel, per session (or user, or any resource attribute)."""
    if len(steps) < 2:
        raise AnalyticsError(f"steps: a funnel needs at least two steps, got {list(steps)!r}")
    if any(not step for step in steps):
        raise AnalyticsError("steps: step names must not be empty")
    if window_seconds <= 0:
        raise AnalyticsError(f"window: must be positive, got {window_seconds!r}")
    source.require_recorded(steps, events=True)
    time_range = time_range or TimeRange()
    reached = [0] * len(steps)
    actor: Any = object()
    events: list[tuple[int, str]] = []

    def close() -> None:
        level = _level(events, steps, int(window_seconds * NS))
        for index in range(level):
            reached[index] += 1

    for who, timestamp, name in _occurrences(source, steps, by, time_range):
        if who != actor:
            if events:
                close()
            actor, events = who, []
        events.append((timestamp, name))
    if events:
        close()
    entered = reached[0]
    result = []
    for index, (name, count) in enumerate(zip(steps, reached, strict=True)):
        previous = reached[index - 1] if index else count
        result.append(
            FunnelStep(
                step=name,
                count=count,
                conversion=count / entered if entered else 0.0,
                from_previous=count / previous if previous else 0.0,
                dropped=previous - count,
            )
        )
    return Funnel(by, float(window_seconds), time_range.as_dict(), entered, reached[-1], result)
