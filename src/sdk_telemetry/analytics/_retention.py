"""Retention: cohorts by the period an actor was first seen, and the share returning in later periods.

An actor (a user by default: the resource attribute `enduser.id`) belongs to the cohort of the
period of its first stored call in the range; it is retained in period k when it made at least one
call k periods after its cohort's period. Period 0 is always 100 %.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

from sdk_telemetry.analytics._periods import Period
from sdk_telemetry.analytics._range import AnalyticsError, TimeRange
from sdk_telemetry.analytics._source import Source


@dataclass(frozen=True)
class Cohort:
    """Actors first seen in one period, and how many came back in each later period."""

    cohort: str
    size: int
    returning: list[int]
    rates: list[float]


@dataclass(frozen=True)
class Retention:
    """Cohorts over a time range."""

    by: str
    period: str
    periods: int
    time_range: dict[str, str | None]
    cohorts: list[Cohort]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def retention(
    source: Source,
    by: str = "user",
    period: str = "day",
    periods: int = 8,
    time_range: TimeRange | None = None,
) -> Retention:
    """Cohorts by first-seen `period` and the share of each returning in the next `periods` - 1 periods."""
    if periods < 1:
        raise AnalyticsError(f"periods: must be at least 1, got {periods}")
    unit = Period.parse(period)
    time_range = time_range or TimeRange()
    condition, params = source.calls(time_range)
    actor, actor_params = source.entity(by)
    # Distinct (actor, period) pairs in SQL; cohorts in one pass here (SQLite joins a CTE slowly).
    pairs = source.connection.execute(
        f"""
        SELECT DISTINCT {actor} AS actor, {unit.sql_index()} AS period
        FROM otel_traces WHERE {condition} AND actor IS NOT NULL
        ORDER BY actor, period
        """,
        [*actor_params, *params],
    )
    table: dict[int, list[int]] = defaultdict(lambda: [0] * periods)
    current: Any = object()
    cohort = 0
    for who, period_index in pairs:
        if who != current:  # the first period of an actor is its cohort
            current, cohort = who, period_index
        age = period_index - cohort
        if age < periods:
            table[cohort][age] += 1
    cohorts = [
        Cohort(unit.start(index), counts[0], counts, [count / counts[0] for count in counts])
        for index, counts in sorted(table.items())
    ]
    return Retention(by, unit.name, periods, time_range.as_dict(), cohorts)
