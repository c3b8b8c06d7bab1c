"""Journeys: the most common paths through functions within sessions.

A session's path is its top-level calls (calls not made from inside another instrumented call)
in start order, with consecutive repeats of one function folded into one step, cut at
`max_steps`. Besides whole paths, the step-to-step transitions and the last step of each session
(where sessions end) are counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from sdk_telemetry.analytics._range import NS, AnalyticsError, TimeRange, parse_duration
from sdk_telemetry.analytics._source import Source

END = "(end)"


@dataclass(frozen=True)
class Journeys:
    """The commonest paths, transitions and exits over a time range."""

    by: str
    time_range: dict[str, str | None]
    sessions: int
    paths: list[dict[str, Any]]  # {"path": [...], "count": n, "share": x}
    transitions: list[dict[str, Any]]  # {"from": a, "to": b, "count": n}
    exits: list[dict[str, Any]]  # {"function": a, "count": n, "share": x}

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def journeys(
    source: Source,
    by: str = "session",
    time_range: TimeRange | None = None,
    max_steps: int = 5,
    limit: int = 10,
    top_level: bool = True,
    last: float | None = None,
) -> Journeys:
    """The `limit` commonest paths (cut at `max_steps`), transitions and exits, per session (or user);
    with `last` (seconds), over the range's last stretch only (ending where the range ends: at its last
    stored call when it is open-ended)."""
    if max_steps < 1 or limit < 1:
        raise AnalyticsError(f"max_steps and limit must be at least 1, got {max_steps} and {limit}")
    time_range = time_range or TimeRange()
    if last is not None:
        time_range = source.last(time_range, int(parse_duration(last, "last") * NS))
    counted = source.reader.path_summary(source.scope(time_range), Source.actor(by), top_level, max_steps, limit)
    total = counted.actors
    # A path's last step goes to the end: as many times as paths end there.
    steps = [((a, b), n) for a, b, n in counted.steps] + [((name, END), n) for name, n in counted.exits]
    return Journeys(
        by=by,
        time_range=time_range.as_dict(),
        sessions=total,
        paths=_ranked(counted.paths, total, limit),
        transitions=[{"from": a, "to": b, "count": count} for (a, b), count in sorted(steps, key=_order)[:limit]],
        exits=[
            {"function": name, "count": count, "share": count / total}
            for name, count in sorted(counted.exits, key=_order)[:limit]
        ],
    )


def common_paths(
    source: Source, by: str = "session", time_range: TimeRange | None = None, max_steps: int = 5, limit: int = 10
) -> list[dict[str, Any]]:
    """`journeys(...).paths` alone: the `limit` commonest paths cut at `max_steps`, cut and counted
    by the store (far fewer paths to send and count than the whole ones transitions and exits need)."""
    if max_steps < 1 or limit < 1:
        raise AnalyticsError(f"max_steps and limit must be at least 1, got {max_steps} and {limit}")
    scope = source.scope(time_range or TimeRange())
    paths = source.reader.paths(scope, Source.actor(by), True, max_steps)
    return _ranked(paths, sum(count for _, count in paths), limit)


def _order(item: tuple[Any, int]) -> tuple[int, Any]:
    """Most frequent first, then by name."""
    return -item[1], item[0]


def _ranked(paths: Iterable[tuple[tuple[str, ...], int]], total: int, limit: int) -> list[dict[str, Any]]:
    return [
        {"path": list(path), "count": count, "share": count / total}
        for path, count in sorted(paths, key=_order)[:limit]
    ]
