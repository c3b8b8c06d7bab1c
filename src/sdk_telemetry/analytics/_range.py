"""Time ranges and time buckets: what period an analysis covers, and how it is cut."""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Union

from sdk_telemetry.store import Buckets, iso

NS = 1_000_000_000
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
#: Bucket widths offered when one is chosen automatically (seconds).
_NICE_STEPS = (1, 5, 10, 15, 30, 60, 300, 600, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)

#: Times an analysis accepts (ns): from the epoch to 2200, well inside both engines' 64-bit nanoseconds.
EARLIEST_NS = 0
LATEST_NS = int(datetime(2200, 1, 1, tzinfo=timezone.utc).timestamp()) * NS
#: Durations an analysis accepts (s): from a millisecond (the smallest unit) to 100 years.
SHORTEST_SECONDS = 0.001
LONGEST_SECONDS = 100 * 365.25 * 86400

TimeLike = Union[str, int, float, datetime, None]  # noqa: UP007 (a runtime alias on Python 3.10)


class AnalyticsError(ValueError):
    """A question that cannot be answered as asked (bad range, bad step, unknown option)."""


def parse_duration(value: str | float | int, what: str = "duration") -> float:
    """Seconds from `90`, `"90"`, `"500ms"`, `"5m"`, `"1.5h"`, `"7d"` or `"2w"` (a bare number is seconds)."""
    if isinstance(value, bool):
        raise AnalyticsError(f"{what}: expected a duration such as '5m', got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise AnalyticsError(f"{what}: expected a duration such as '30s', '5m', '1h' or '7d', got {value!r}")
        seconds = float(match.group(1)) * _UNIT_SECONDS[(match.group(2) or "s").lower()]
    if not SHORTEST_SECONDS <= seconds <= LONGEST_SECONDS:  # also refuses NaN, infinities and <= 0
        raise AnalyticsError(f"{what}: must be a positive duration between 1ms and 100 years, got {value!r}")
    return seconds


def parse_time(value: TimeLike, what: str = "time", now: float | None = None) -> int | None:
    """Nanoseconds since the epoch from an ISO 8601 string, epoch seconds, a datetime or a relative
    duration back from now (`"1h"` means one hour ago), between 1970 and 2200. None stays None."""
    if value is None or value == "":
        return None
    moment = _parse_time(value, what, now)
    if not EARLIEST_NS <= moment < LATEST_NS:
        raise AnalyticsError(f"{what}: must be between 1970-01-01 and 2200-01-01, got {value!r}")
    return moment


def _parse_time(value: TimeLike, what: str, now: float | None) -> int:
    """`parse_time` before its bounds (a huge float becomes a huge integer, not an error)."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return int(moment.timestamp() * NS)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _ns(float(value), what)
    text = str(value).strip()
    if _DURATION.match(text):
        if re.fullmatch(r"\d+(\.\d+)?", text):  # a bare number is epoch seconds, not "N seconds ago"
            return _ns(float(text), what)
        return int(((time.time() if now is None else now) - parse_duration(text, what)) * NS)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise AnalyticsError(
            f"{what}: expected an ISO 8601 time, epoch seconds or a duration back from now such as '1h', got {value!r}"
        ) from None
    return _parse_time(moment, what, now)


def _ns(seconds: float, what: str) -> int:
    nanoseconds = seconds * NS
    if not math.isfinite(nanoseconds):
        raise AnalyticsError(f"{what}: must be a finite number of epoch seconds, got {seconds!r}")
    return int(nanoseconds)


@dataclass(frozen=True)
class TimeRange:
    """A half-open period `[start, end)` in nanoseconds since the epoch; None is unbounded."""

    start: int | None = None
    end: int | None = None

    @classmethod
    def parse(cls, since: TimeLike = None, until: TimeLike = None, now: float | None = None) -> TimeRange:
        """From two time-likes (see `parse_time`); raises `AnalyticsError` when `since` is not before `until`."""
        start = parse_time(since, "since", now)
        end = parse_time(until, "until", now)
        if start is not None and end is not None and start >= end:
            raise AnalyticsError(f"since ({iso(start)}) must be before until ({iso(end)})")
        return cls(start, end)

    @classmethod
    def last(cls, seconds: float, now: float | None = None) -> TimeRange:
        """The `seconds` up to now."""
        end = int((time.time() if now is None else now) * NS)
        return cls(end - int(seconds * NS), end)

    def as_dict(self) -> dict[str, str | None]:
        """ISO 8601 start and end (None when unbounded)."""
        return {
            "start": iso(self.start) if self.start is not None else None,
            "end": iso(self.end) if self.end is not None else None,
        }


#: 1970-01-05, the first Monday after the epoch: week-wide buckets start on Mondays (UTC).
MONDAY_NS = 4 * 86400 * NS
WEEK_NS = 7 * 86400 * NS
#: The most buckets one series may have (a finer step over a long range is refused).
MAX_BUCKETS = 10_000


@dataclass(frozen=True)
class Grid:
    """Evenly spaced buckets covering a range: bucket `i` starts at `origin + i * step` (ns), for
    `first <= i <= last`; buckets are aligned to the step in UTC (whole minutes, hours, days;
    weeks from Monday), so the first and the last bucket may reach outside the range."""

    origin: int
    step: int
    first: int
    last: int

    @classmethod
    def cover(cls, start: int, end: int, step: int) -> Grid:
        """The aligned buckets of width `step` holding every instant of `[start, end)`."""
        origin = MONDAY_NS if step % WEEK_NS == 0 else 0
        first = (start - origin) // step
        last = (max(end, start + 1) - 1 - origin) // step
        count = last - first + 1
        if count > MAX_BUCKETS:
            raise AnalyticsError(
                f"step: {step / NS:g}s over this range makes {count:,} buckets, more than {MAX_BUCKETS:,}; "
                "choose a wider step"
            )
        return cls(origin, step, first, last)

    def buckets(self) -> Buckets:
        """The grid as the store's fixed-width buckets."""
        return Buckets(self.origin, self.step)

    def start(self, index: int) -> int:
        """The start (ns) of bucket `index`."""
        return self.origin + index * self.step

    def indexes(self) -> range:
        """Every bucket's index, in time order."""
        return range(self.first, self.last + 1)


def nice_step(span_ns: int, buckets: int = 60) -> int:
    """A round bucket width (ns) that cuts `span_ns` into about `buckets` pieces at most."""
    wanted = span_ns / NS / max(1, buckets)
    for step in _NICE_STEPS:
        if step >= wanted:
            return step * NS
    return _NICE_STEPS[-1] * NS * math.ceil(wanted / _NICE_STEPS[-1])
