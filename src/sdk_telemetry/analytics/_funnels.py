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


#: ClickHouse's `windowFunnel` takes at most 32 conditions; both engines keep the same limit.
MAX_STEPS = 32


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
    if len(steps) > MAX_STEPS:
        raise AnalyticsError(f"steps: a funnel has at most {MAX_STEPS} steps, got {len(steps)}")
    if window_seconds <= 0:
        raise AnalyticsError(f"window: must be positive, got {window_seconds!r}")
    source.require_recorded(steps, events=True)
    time_range = time_range or TimeRange()
    reached = source.reader.funnel(source.scope(time_range), list(steps), int(window_seconds * NS), Source.actor(by))
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
