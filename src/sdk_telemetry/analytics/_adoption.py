"""Feature adoption: the share of active sessions (or users) using each function per period, with a trend.

The trend is decided by the least-squares slope of the share over the periods that had any
activity: `up` when the fitted change across those periods is at least `threshold` (5 percentage
points by default), `down` when it is at most -`threshold`, `stable` otherwise or when fewer than
two periods had activity. Every trend carries the figures it was decided from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sdk_telemetry.analytics._periods import Period
from sdk_telemetry.analytics._range import AnalyticsError, TimeRange
from sdk_telemetry.analytics._source import Source

DEFAULT_THRESHOLD = 0.05


@dataclass(frozen=True)
class Trend:
    """A direction and how it was decided."""

    direction: str  # up, down or stable
    method: str
    slope_per_period: float
    change: float  # fitted change over the periods considered (slope * (n - 1))
    threshold: float
    periods: int
    reason: str


@dataclass(frozen=True)
class FeatureAdoption:
    """One function's adoption per period."""

    function: str
    users: int  # distinct actors using it over the whole range
    share: float  # of all active actors over the whole range
    per_period: list[dict[str, Any]]  # {"period": iso, "users": n, "active": m, "share": n/m}
    trend: Trend


@dataclass(frozen=True)
class Adoption:
    """Adoption of every function over a time range."""

    by: str
    period: str
    time_range: dict[str, str | None]
    active: int
    features: list[FeatureAdoption]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def trend(shares: list[float], threshold: float = DEFAULT_THRESHOLD) -> Trend:
    """The direction of a series of shares, by least-squares slope against `threshold`."""
    method = "least-squares slope of the share per period; fitted change over the periods vs ±threshold"
    n = len(shares)
    if n < 2:
        return Trend("stable", method, 0.0, 0.0, threshold, n, f"only {n} period(s) with activity: no trend")
    mean_x = (n - 1) / 2
    mean_y = sum(shares) / n
    denominator = sum((x - mean_x) ** 2 for x in range(n))
    slope = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(shares)) / denominator
    change = slope * (n - 1)
    if change >= threshold:
        direction, comparison = "up", f"≥ +{threshold:.1%}"
    elif change <= -threshold:
        direction, comparison = "down", f"≤ -{threshold:.1%}"
    else:
        direction, comparison = "stable", f"within ±{threshold:.1%}"
    reason = (
        f"share went from {shares[0]:.1%} to {shares[-1]:.1%} over {n} periods; "
        f"fitted change {change:+.1%} {comparison}"
    )
    return Trend(direction, method, slope, change, threshold, n, reason)


def adoption(
    source: Source,
    by: str = "session",
    period: str = "day",
    time_range: TimeRange | None = None,
    functions: list[str] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> Adoption:
    """Per function and period: distinct actors using it / distinct active actors, with a trend."""
    if not 0 < threshold < 1:
        raise AnalyticsError(f"threshold: expected a share between 0 and 1, got {threshold!r}")
    unit = Period.parse(period)
    time_range = time_range or TimeRange()
    usage = source.reader.usage(source.scope(time_range), Source.actor(by), unit.buckets())
    active_per_period, active_total, using, totals = usage.active, usage.everyone, usage.using, usage.users
    periods = sorted(active_per_period)
    features = []
    for name in sorted(functions if functions is not None else totals, key=lambda n: (-totals.get(n, 0), n)):
        shares = [using.get(name, {}).get(index, 0) / active_per_period[index] for index in periods]
        rows: list[dict[str, Any]] = [
            {
                "period": unit.start(index),
                "users": using.get(name, {}).get(index, 0),
                "active": active_per_period[index],
                "share": share,
            }
            for index, share in zip(periods, shares, strict=True)
        ]
        users = totals.get(name, 0)
        features.append(
            FeatureAdoption(
                function=name,
                users=users,
                share=users / active_total if active_total else 0.0,
                per_period=rows,
                trend=trend(shares, threshold),
            )
        )
    return Adoption(by, unit.name, time_range.as_dict(), active_total, features)
