"""Calendar periods (UTC): hours, days, weeks starting on Monday, or any fixed width."""

from __future__ import annotations

from dataclasses import dataclass

from sdk_telemetry.analytics._range import NS, AnalyticsError, parse_duration
from sdk_telemetry.store import Buckets, iso

_NAMED = {"hour": 3600, "day": 86400, "week": 7 * 86400}
#: 1970-01-05, the first Monday after the epoch: weeks start on Mondays.
_MONDAY_NS = 4 * 86400 * NS


@dataclass(frozen=True)
class Period:
    """A period width and its alignment, in nanoseconds."""

    name: str
    width: int
    origin: int = 0

    @classmethod
    def parse(cls, value: str) -> Period:
        """`hour`, `day`, `week` (Monday to Sunday, UTC) or a duration such as `6h`."""
        text = value.strip().lower()
        if text in _NAMED:
            return cls(text, _NAMED[text] * NS, _MONDAY_NS if text == "week" else 0)
        try:
            return cls(text, int(parse_duration(text, "period") * NS))
        except AnalyticsError:
            raise AnalyticsError(
                f"period: expected 'hour', 'day', 'week' or a duration such as '6h', got {value!r}"
            ) from None

    def buckets(self) -> Buckets:
        """The periods as the store's fixed-width buckets."""
        return Buckets(self.origin, self.width)

    def start(self, index: int) -> str:
        """The ISO 8601 start of period `index`."""
        return iso(self.origin + index * self.width)
