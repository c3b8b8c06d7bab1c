"""Retention: cohorts by the period an actor was first seen, and the share returning in later periods.

An actor (a user by default: the resource attribute `enduser.id`) belongs to the cohort of the
period of its first stored call in the range; it is retained in period k when it made at least one
call k periods after its cohort's period. Period 0 is always 100 %. A period that has not happened
yet (after the end of the range, or after now for an open range) has no figure: None, not 0.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from sdk_telemetry.analytics._periods import Period
from sdk_telemetry.analytics._range import NS, AnalyticsError, TimeRange
from sdk_telemetry.analytics._source import Source


@dataclass(frozen=True)
class Cohort:
    """Actors first seen in one period, and how many came back in each later period."""

    cohort: str
    size: int
    returning: list[int | None]  # None: that period has not happened yet
    rates: list[float | None]


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
    now: float | None = None,
) -> Retention:
    """Cohorts by first-seen `period` and the share of each returning in the next `periods` - 1 periods;
    periods after the range's end (or after `now`, default the current time) are None."""
    if periods < 1:
        raise AnalyticsError(f"periods: must be at least 1, got {periods}")
    unit = Period.parse(period)
    time_range = time_range or TimeRange()
    table = source.reader.cohorts(source.scope(time_range), Source.actor(by), unit.buckets(), periods)
    end = time_range.end if time_range.end is not None else int((time.time() if now is None else now) * NS)
    last_period = unit.buckets().index(end - 1)
    cohorts = []
    for index, counts in sorted(table.items()):
        seen: list[int | None] = [count if index + age <= last_period else None for age, count in enumerate(counts)]
        rates = [None if count is None else count / counts[0] for count in seen]
        cohorts.append(Cohort(unit.start(index), counts[0], seen, rates))
    return Retention(by, unit.name, periods, time_range.as_dict(), cohorts)
