"""Rollups: the calls of every hour, day, week (from Monday, UTC) and calendar month (UTC), per
function, service and environment, kept long after the raw rows are deleted.

Each bucket holds the stored calls (`Kept`), calls and errors scaled by sampling, the duration
sum, minimum and maximum, and a duration `Sketch`, so that percentiles over any union of buckets
stay within 1 %. Writers add the calls they newly stored in the same transaction
(`add_calls`), so a bucket never counts a call twice and survives `kill -9` with its rows.

`otel_traces_complete_since` says from when each origin holds everything (`raw`: the raw rows,
or a tier) once retention has deleted older data; a reader combines the finest tiers that hold
each part of a range (`read_rollups`) with raw rows where those are complete (`combine`).
"""

from __future__ import annotations

import calendar
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from sdk_telemetry_exporters.attributes import INVOCATION_SCOPE

from sdk_telemetry.store.reader import Aggregate, Buckets, Origin, Scope
from sdk_telemetry.store.sketch import Sketch

Tier = Literal["hour", "day", "week", "month"]
#: Finest first.
TIERS: tuple[Tier, ...] = ("hour", "day", "week", "month")
NS_PER_S = 1_000_000_000
NS_PER_HOUR = 3_600 * NS_PER_S
NS_PER_DAY = 24 * NS_PER_HOUR
NS_PER_WEEK = 7 * NS_PER_DAY
#: Fixed-width tiers: (width, a bucket start). 1970-01-05 was a Monday.
_FIXED: dict[Tier, tuple[int, int]] = {
    "hour": (NS_PER_HOUR, 0),
    "day": (NS_PER_DAY, 0),
    "week": (NS_PER_WEEK, 4 * NS_PER_DAY),
}
#: Coarser tiers whose bucket starts are all bucket starts of the finer one (where a range can
#: pass from the finer to the coarser without a bucket straddling the change).
_NESTED: dict[Tier, tuple[Tier, ...]] = {
    "hour": ("day", "week", "month"),
    "day": ("week", "month"),
    "week": (),
    "month": (),
}
_MIN_NS = -(2**63)

#: One stored call, as rollups need it: Timestamp, SpanName, ServiceName, Environment, Duration, StatusCode, SampleRate.
Call = tuple[int, str, str, str, int, str, float]


def bucket_start(tier: Tier, timestamp: int) -> int:
    """The start (ns) of the `tier` bucket holding `timestamp`."""
    if tier == "month":
        moment = datetime.fromtimestamp(timestamp // NS_PER_S, timezone.utc)
        return calendar.timegm((moment.year, moment.month, 1, 0, 0, 0)) * NS_PER_S
    width, anchor = _FIXED[tier]
    return timestamp - (timestamp - anchor) % width


def next_start(tier: Tier, start: int) -> int:
    """The start of the bucket after the one starting at `start`."""
    if tier == "month":
        moment = datetime.fromtimestamp(start // NS_PER_S, timezone.utc)
        year, month = divmod(moment.year * 12 + moment.month, 12)  # the next month, 1-based
        return calendar.timegm((year, month + 1, 1, 0, 0, 0)) * NS_PER_S
    return start + _FIXED[tier][0]


def first_start_from(tier: Tier, moment: int) -> int:
    """The first `tier` bucket start at or after `moment`."""
    start = bucket_start(tier, moment)
    return start if start == moment else next_start(tier, start)


@dataclass
class RollupGroup:
    """The figures of a group of calls read from rollups (or raw rows put in the same form)."""

    key: Any  # the bucket index, the function name, or None for everything
    kept: int = 0
    calls: float = 0.0
    errors: float = 0.0
    duration_sum: float = 0.0
    duration_min: int = 0
    duration_max: int = 0
    sketch: Sketch = field(default_factory=Sketch)

    @classmethod
    def from_aggregate(cls, aggregate: Aggregate, durations: Iterable[int]) -> RollupGroup:
        """Raw figures and their stored durations, in rollup form (to be merged with rollups)."""
        return cls(
            aggregate.key,
            aggregate.kept,
            aggregate.calls,
            aggregate.errors,
            aggregate.duration_sum,
            aggregate.duration_min,
            aggregate.duration_max,
            Sketch.of(durations),
        )

    def add(self, duration: int, weight: float, error: bool) -> None:
        """Count one stored call."""
        if not self.kept or duration < self.duration_min:
            self.duration_min = duration
        if not self.kept or duration > self.duration_max:
            self.duration_max = duration
        self.kept += 1
        self.calls += weight
        if error:
            self.errors += weight
        self.duration_sum += duration
        self.sketch.add((duration,))

    def merge(self, other: RollupGroup) -> None:
        """Add `other`'s calls to this group."""
        if other.kept:
            self.duration_min = other.duration_min if not self.kept else min(self.duration_min, other.duration_min)
            self.duration_max = other.duration_max if not self.kept else max(self.duration_max, other.duration_max)
        self.kept += other.kept
        self.calls += other.calls
        self.errors += other.errors
        self.duration_sum += other.duration_sum
        self.sketch.merge(other.sketch)

    def aggregate(self) -> Aggregate:
        """The group's figures, percentiles from its sketch (clamped to its minimum and maximum)."""
        low, high = self.duration_min, self.duration_max
        return Aggregate(
            key=self.key,
            kept=self.kept,
            calls=self.calls,
            errors=self.errors,
            duration_sum=self.duration_sum,
            duration_min=low,
            duration_max=high,
            p50=self.sketch.quantile(50, low, high),
            p95=self.sketch.quantile(95, low, high),
            p99=self.sketch.quantile(99, low, high),
        )


# --- writing --------------------------------------------------------------------------------

_SELECT = """SELECT Kept, Calls, Errors, DurationSum, DurationMin, DurationMax, Sketch FROM otel_traces_rollups
WHERE Tier = ? AND BucketStart = ? AND SpanName = ? AND ServiceName = ? AND Environment = ?"""
_REPLACE = "INSERT OR REPLACE INTO otel_traces_rollups VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


Hour = tuple[int, str, str, str]  # (hour start, SpanName, ServiceName, Environment)
#: Hours are folded into the coarser tiers once a batch holds calls this much later (the latest
#: hours, still filling, are rewritten once per batch in the hour tier alone).
FOLD_LAG = NS_PER_HOUR


def add_calls(connection: sqlite3.Connection, calls: Iterable[Call]) -> None:
    """Add newly stored invocation calls to the rollups. Call inside the write transaction that
    stored them, so that the rollups and the rows commit (or vanish) together.

    Calls go to the hour tier; the coarser tiers receive whole hours once they are older than
    the latest hour of a batch by `FOLD_LAG` (`fold_rollups`), and late calls of hours already
    folded at once, so that each coarse bucket is rewritten about once an hour, not once a batch.
    """
    hours: dict[Hour, RollupGroup] = {}
    for timestamp, name, service, environment, duration, status, rate in calls:
        key = (timestamp - timestamp % NS_PER_HOUR, name, service, environment)
        group = hours.get(key)
        if group is None:
            group = hours[key] = RollupGroup(key)
        group.add(duration, 1.0 / rate, status == "Error")
    if not hours:
        return
    folded = folded_through(connection)
    late = {key: group for key, group in hours.items() if key[0] < folded}
    _upsert(connection, {("hour", *key): group for key, group in hours.items()})
    if late:
        _add_to_coarser(connection, late)
    fold_rollups(connection, max(key[0] for key in hours) - FOLD_LAG)


def folded_through(connection: sqlite3.Connection) -> int:
    """The hours starting before this (ns) are in the coarser tiers; later ones only in the hour tier."""
    row = connection.execute("SELECT Through FROM otel_traces_rollups_folded").fetchone()
    return int(row[0]) if row else _MIN_NS


def fold_rollups(connection: sqlite3.Connection, through: int) -> None:
    """Add the hour tier's buckets starting before `through` and not folded yet to the coarser tiers."""
    folded = folded_through(connection)
    if through <= folded:
        return
    hours = {
        (start, name, service, environment): _stored_group((start, name, service, environment), figures)
        for start, name, service, environment, *figures in connection.execute(
            "SELECT BucketStart, SpanName, ServiceName, Environment, Kept, Calls, Errors, DurationSum, DurationMin, "
            "DurationMax, Sketch FROM otel_traces_rollups WHERE Tier = 'hour' AND BucketStart >= ? AND BucketStart < ?",
            (folded, through),
        )
    }
    _add_to_coarser(connection, hours)
    connection.execute("DELETE FROM otel_traces_rollups_folded")
    connection.execute("INSERT INTO otel_traces_rollups_folded VALUES (?)", (through,))


def _add_to_coarser(connection: sqlite3.Connection, hours: Mapping[Hour, RollupGroup]) -> None:
    """Add hours' figures to the day, week and month buckets holding them."""
    buckets: dict[tuple[Tier, int, str, str, str], RollupGroup] = {}
    for (hour, name, service, environment), group in hours.items():
        for tier in TIERS[1:]:
            coarser = (tier, bucket_start(tier, hour), name, service, environment)
            total = buckets.get(coarser)
            if total is None:
                total = buckets[coarser] = RollupGroup(coarser)
            total.merge(group)
    _upsert(connection, buckets)


def _upsert(connection: sqlite3.Connection, buckets: Mapping[tuple[Any, ...], RollupGroup]) -> None:
    """Add each group to its stored bucket (Tier, BucketStart, SpanName, ServiceName, Environment)."""
    rows = []
    for bucket, group in buckets.items():
        stored = connection.execute(_SELECT, bucket).fetchone()
        if stored is not None:  # the new figures go into the stored sketch, not the reverse
            total = _stored_group(bucket, stored)
            total.merge(group)
            group = total
        rows.append((*bucket, *_figures(group)))
    connection.executemany(_REPLACE, rows)


def _figures(group: RollupGroup) -> tuple[Any, ...]:
    return (
        group.kept,
        group.calls,
        group.errors,
        group.duration_sum,
        group.duration_min,
        group.duration_max,
        group.sketch.to_json(),
    )


def _stored_group(key: Any, row: Sequence[Any]) -> RollupGroup:
    kept, calls, errors, total, low, high, sketch = row
    return RollupGroup(key, kept, calls, errors, total, low, high, Sketch.from_json(sketch))


#: Rows read at a time when rollups are filled from stored rows.
_FILL_ROWS = 50_000


def fill_rollups(connection: sqlite3.Connection) -> None:
    """Fill empty rollup tables from the stored invocation spans (once, when a store gains rollups)."""
    cursor = connection.execute(
        "SELECT Timestamp, SpanName, ServiceName, Environment, Duration, StatusCode, SampleRate "
        "FROM otel_traces WHERE ScopeName = ?",
        (INVOCATION_SCOPE,),
    )
    while chunk := cursor.fetchmany(_FILL_ROWS):
        add_calls(connection, chunk)


# --- what is complete since when ------------------------------------------------------------


def complete_since(connection: sqlite3.Connection) -> dict[str, int]:
    """Per origin (`raw` or a tier) that retention has trimmed: from when (ns) it holds everything;
    an origin absent holds everything ever stored."""
    return dict(connection.execute("SELECT Origin, Since FROM otel_traces_complete_since"))


def raw_complete_since(connection: sqlite3.Connection) -> int | None:
    """From when (ns) the raw rows hold every call stored; None when retention never deleted any."""
    row = connection.execute("SELECT Since FROM otel_traces_complete_since WHERE Origin = 'raw'").fetchone()
    return int(row[0]) if row else None


def record_complete_since(connection: sqlite3.Connection, origin: str, since: int) -> None:
    """Note that `origin` holds everything from `since` on (never moving the moment back)."""
    connection.execute(
        "INSERT INTO otel_traces_complete_since VALUES (?, ?)"
        " ON CONFLICT DO UPDATE SET Since = max(Since, excluded.Since)",
        (origin, since),
    )


# --- reading --------------------------------------------------------------------------------

Group = Literal["function"] | Buckets | None
Segment = tuple[Tier, int, int]  # the tier's buckets starting in [low, high)


def read_rollups(
    connection: sqlite3.Connection, scope: Scope, group: Group, before: int
) -> tuple[list[RollupGroup], list[Origin]]:
    """The rollup buckets starting in [`scope.start`, `before`) (and before `scope.end`), grouped
    like `Reader.aggregate` (overall, per function, or per time bucket), in key order; and the
    tiers that answered, in the order they first answered from the oldest part on.

    Each part of the range is read from the finest tier that still holds it whose buckets fit the
    grouping (time buckets: a tier whose width divides the step, aligned with the origin when one
    is); a bucket is counted whole when its start is in the range. Within a part, whole buckets of
    a coarser tier that holds them are read instead of the finer ones they sum (the same figures,
    as sketches merge exactly, from fewer rows); the latest hours, not folded into the coarser
    tiers yet, from the hour tier. Raises ValueError for a scope
    rollups cannot answer (`session`, `errors_only`).
    """
    if scope.session is not None or scope.errors_only:
        raise ValueError("rollups hold no sessions or error-only figures: read raw rows for this scope")
    high = before if scope.end is None else min(before, scope.end)
    low = scope.start
    if low is None:  # from the first stored bucket's month: every bucket starts after it
        (earliest,) = connection.execute("SELECT MIN(BucketStart) FROM otel_traces_rollups").fetchone()
        if earliest is None:
            return [], []
        low = bucket_start("month", earliest)
    tiers, since = _tiers_for(group), complete_since(connection)
    plan = [part for segment in plan_tiers(tiers, since, low, high) for part in _interior(*segment, tiers, since)]
    folded = folded_through(connection)
    plan = [part for segment in plan for part in _folded_part(*segment, tiers, since, folded)]
    where, params = "", []
    for column, value in (
        ("ServiceName", scope.service),
        ("Environment", scope.environment),
        ("SpanName", scope.function),
    ):
        if value is not None:
            where += f" AND {column} = ?"
            params.append(value)
    if scope.functions is not None:
        where += f" AND SpanName IN ({', '.join('?' * len(scope.functions))})"
        params.extend(scope.functions)
    groups: dict[Any, RollupGroup] = {}
    sketches: dict[Any, list[str]] = {}  # merged once per group (`Sketch.from_texts`)
    used: list[Origin] = []
    for tier, low, top in reversed(plan):  # oldest first
        found = False
        for start, name, *figures, sketch in connection.execute(
            "SELECT BucketStart, SpanName, Kept, Calls, Errors, DurationSum, DurationMin, DurationMax, Sketch "
            f"FROM otel_traces_rollups WHERE Tier = ? AND BucketStart >= ? AND BucketStart < ?{where}",
            [tier, low, top, *params],
        ):
            found = True
            key = None if group is None else name if group == "function" else group.index(start)
            part = RollupGroup(key, *figures)
            total = groups.get(key)
            if total is None:
                groups[key], sketches[key] = part, [sketch]
            else:
                total.merge(part)
                sketches[key].append(sketch)
        if found and tier not in used:
            used.append(tier)
    for key, texts in sketches.items():
        groups[key].sketch = Sketch.from_texts(texts)
    return [groups[key] for key in _ordered(groups)], used


def _tiers_for(group: Group) -> tuple[Tier, ...]:
    """The tiers whose buckets fit the grouping, finest first."""
    if not isinstance(group, Buckets):
        return TIERS
    fitting = tuple(tier for tier, (width, _) in _FIXED.items() if group.step % width == 0)
    aligned = tuple(tier for tier in fitting if (group.origin - _FIXED[tier][1]) % _FIXED[tier][0] == 0)
    return aligned or fitting


def plan_tiers(tiers: Sequence[Tier], since: Mapping[str, int], start: int | None, high: int) -> list[Segment]:
    """Which tier answers which part of [`start`, `high`), latest part first: the finest tier that
    holds the latest part, then coarser ones for older parts (passing to a coarser tier at one of
    its bucket starts), the combination reaching furthest back."""
    low = _MIN_NS if start is None else start
    best: tuple[int, list[Segment]] = (high, [])
    for tier in tiers:
        if since.get(tier, _MIN_NS) < high:
            reach, segments = _cover(tier, tiers, since, low, high)
            if reach < best[0]:
                best = (reach, segments)
    return best[1]


def _interior(tier: Tier, low: int, high: int, tiers: Sequence[Tier], since: Mapping[str, int]) -> list[Segment]:
    """The segment of `tier` over [`low`, `high`), its interior read from the coarsest tier that
    holds whole buckets of it (the same calls, so the same figures), latest part first."""
    for coarser in reversed(_NESTED[tier]):
        if coarser not in tiers:
            continue
        first, last = first_start_from(coarser, low), bucket_start(coarser, high)
        if first >= last or since.get(coarser, _MIN_NS) > first:
            continue
        return [
            *_interior(tier, last, high, tiers, since),
            *_interior(coarser, first, last, tiers, since),
            *_interior(tier, low, first, tiers, since),
        ]
    return [(tier, low, high)] if low < high else []


def _folded_part(
    tier: Tier, low: int, high: int, tiers: Sequence[Tier], since: Mapping[str, int], folded: int
) -> list[Segment]:
    """The segment of `tier` over [`low`, `high`) where its buckets are whole (a coarse bucket is
    once every hour in it is folded); the hour tier for the rest, where it fits and holds it."""
    if tier == "hour":
        return [(tier, low, high)]
    limit = _MIN_NS if folded == _MIN_NS else bucket_start(tier, folded)
    if high <= limit:
        return [(tier, low, high)]
    rest = max(low, limit)
    parts: list[Segment] = []
    if "hour" in tiers and since.get("hour", _MIN_NS) <= rest:
        parts.append(("hour", rest, high))
    if low < limit:
        parts.append((tier, low, limit))
    return parts


def _cover(
    tier: Tier, tiers: Sequence[Tier], since: Mapping[str, int], low: int, high: int
) -> tuple[int, list[Segment]]:
    """Segments covering bucket starts below `high` (down to `low`), `tier` answering the latest
    part; and how far back they reach."""
    held = since.get(tier, _MIN_NS)
    if held <= low:  # the tier holds all the rest
        return low, [(tier, low, high)]
    first = first_start_from(tier, held)
    if first >= high:
        return high, []
    best: tuple[int, list[Segment]] = (first, [(tier, first, high)])
    for coarser in _NESTED[tier]:
        if coarser not in tiers:
            continue
        change = first_start_from(coarser, first)
        if change >= high:
            continue
        reach, older = _cover(coarser, tiers, since, low, change)
        if reach < best[0]:
            best = (reach, [(tier, change, high), *older])
    return best


def _ordered(groups: Mapping[Any, Any]) -> list[Any]:
    """The keys in key order (None is the only key of an overall figure)."""
    keys = list(groups)
    return keys if None in groups else sorted(keys)


def combine(
    rollups: Sequence[RollupGroup], raw: Sequence[Aggregate], raw_durations: Callable[[Any], Iterable[int]]
) -> list[Aggregate]:
    """Aggregates of rollup groups and raw ones, by key, in key order: a key only in `raw` keeps its
    exact figures; one in both merges them, the raw group's durations (`raw_durations(key)`,
    asked for such keys only) put into the rollups' sketch."""
    merged: dict[Any, Aggregate] = {aggregate.key: aggregate for aggregate in raw}
    for group in rollups:
        exact = merged.get(group.key)
        if exact is None:
            merged[group.key] = group.aggregate()
            continue
        total = RollupGroup(group.key)
        total.merge(group)
        total.merge(RollupGroup.from_aggregate(exact, raw_durations(group.key)))
        merged[group.key] = total.aggregate()
    return [merged[key] for key in _ordered(merged)]


# --- retention ------------------------------------------------------------------------------

_DELETE = """DELETE FROM otel_traces_rollups WHERE (Tier, BucketStart, SpanName, ServiceName, Environment) IN
(SELECT Tier, BucketStart, SpanName, ServiceName, Environment FROM otel_traces_rollups
 WHERE Tier = ? AND BucketStart < ? LIMIT ?)"""


def rollup_retention_step(connection: sqlite3.Connection, cutoffs: Mapping[Tier, int], rows: int) -> int:
    """Delete at most `rows` buckets per tier starting before the tier's cutoff (ns), noting from
    when each trimmed tier is complete; buckets deleted. Call inside a write transaction."""
    deleted = 0
    if "hour" in cutoffs:  # hours leave the hour tier only once they are in the coarser ones
        fold_rollups(connection, first_start_from("hour", cutoffs["hour"]))
    for tier, cutoff in cutoffs.items():
        count = connection.execute(_DELETE, (tier, cutoff, rows)).rowcount
        if count:
            record_complete_since(connection, tier, cutoff)
        deleted += count
    return deleted


__all__ = [
    "NS_PER_HOUR",
    "TIERS",
    "Call",
    "RollupGroup",
    "Tier",
    "add_calls",
    "bucket_start",
    "combine",
    "complete_since",
    "fill_rollups",
    "first_start_from",
    "fold_rollups",
    "folded_through",
    "next_start",
    "plan_tiers",
    "raw_complete_since",
    "read_rollups",
    "record_complete_since",
    "rollup_retention_step",
]
