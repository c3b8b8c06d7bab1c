"""What the dashboard's overview shows, as one JSON document: figures, evenly spaced series, errors, a
funnel, alerts, and the services and environments to filter by."""

from __future__ import annotations

import time
from typing import Any

from sdk_telemetry.analytics import (
    NS,
    AnalyticsError,
    Source,
    TimeRange,
    common_paths,
    did_you_mean,
    functions,
    funnel,
    parse_duration,
    performance,
    top_errors,
)
from sdk_telemetry.store import iso

RANGES = ("15m", "1h", "6h", "24h", "7d", "30d", "all")
DEFAULT_RANGE = "24h"
#: The automatic funnel's steps are the main journey of the range's last day.
JOURNEY_WINDOW_NS = 86400 * NS


def time_range(key: str, now: float | None = None) -> TimeRange:
    """The period a range key names (`all`: everything stored)."""
    if key == "all":
        return TimeRange()
    if key not in RANGES:
        raise AnalyticsError(f"range: expected one of {', '.join(RANGES)}, got {key!r}")
    return TimeRange.last(parse_duration(key, "range"), now)


def overview(
    source: Source,
    range_key: str = DEFAULT_RANGE,
    function: str | None = None,
    steps: list[str] | None = None,
    window: float = 3600.0,
    alerts: dict[str, Any] | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """Everything the page draws, for one range and (optionally) one function.

    Without `steps`, the funnel follows the main journey: of the commonest session paths of the range's
    last day (two steps or more, cut at four), the one covering the most calls (sessions times steps).
    """
    with source.snapshot():  # one page: what is stored is asked once
        return _overview(source, range_key, function, steps, window, alerts, now)


def _overview(
    source: Source,
    range_key: str,
    function: str | None,
    steps: list[str] | None,
    window: float,
    alerts: dict[str, Any] | None,
    now: float | None,
) -> dict[str, Any]:
    moment = time.time() if now is None else now
    period = time_range(range_key, moment)
    table = functions(source, period, limit=30)
    names = [row["function"] for row in table]
    selected = function if function in names else None
    notice = None
    if function and selected is None:
        notice = f"no calls of {function!r} in this range{did_you_mean(function, names)} Showing all functions."
    series = performance(source, selected, period)
    overall = series if selected is None else performance(source, None, period, series.step_seconds)
    chosen_steps = steps
    if not chosen_steps:  # from the range's last day: the journeys of every session are the costliest question
        paths = common_paths(source, "session", source.last(period, JOURNEY_WINDOW_NS), max_steps=4, limit=20)
        candidates = [p for p in paths if len(p["path"]) >= 2]
        if candidates:  # the journey covering the most calls: common and long
            chosen_steps = max(candidates, key=lambda p: (p["count"] * len(p["path"]), p["count"]))["path"]
    flow = funnel(source, chosen_steps, window, "session", period).as_dict() if chosen_steps else None
    stored = source.reader.stored_spans()
    return {
        "generated_at": iso(int(moment * NS)),
        "range": range_key,
        "ranges": list(RANGES),
        "service": source.service,
        "environment": source.environment,
        **source.dimensions(),
        "notice": notice,
        "time_range": series.time_range,
        "step_seconds": series.step_seconds,
        "store": source.reader.location,
        "engine": source.reader.engine,
        "stored_spans": stored,
        "totals": overall.summary,
        "functions": table,
        "selected": selected,
        "series": [bucket.__dict__ for bucket in series.buckets],
        "overall_series": [bucket.__dict__ for bucket in overall.buckets],
        "top_errors": top_errors(source, period, limit=8),
        "funnel": flow,
        "funnel_auto": not steps,
        "alerts": alerts,
    }
