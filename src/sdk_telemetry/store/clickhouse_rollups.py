"""Rollups on ClickHouse: per (bucket, function, service, environment) figures of the calls in
`otel_traces` at hour, day, week (Monday, UTC) and month (calendar, UTC) granularity, kept in
`AggregatingMergeTree` tables filled by materialized views (the engine's own way) and read back
merged.

Each tier's table holds Kept (stored calls), Calls and Errors (sums of 1 / sample rate),
DurationSum/Min/Max and the duration sketch (`sketch.py`'s keys, `sumMap`-merged key -> count), and
drops its buckets after the tier's retention (a TTL). A view only sees rows inserted after it
exists, so `create_rollups` creates each view for rows from a cut-off moment on and copies the
calls already stored before it (`INSERT ... SELECT`) once.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sdk_telemetry.store.clickhouse import Runner
from sdk_telemetry.store.clickhouse_sql import CALLS, ENVIRONMENT, FAILED, SKETCH_KEY, WEIGHT
from sdk_telemetry.store.reader import Origin

NS = 1_000_000_000
_HOUR, _DAY = 3600 * NS, 86400 * NS
#: 1970-01-05, the first Monday after the epoch: weeks start on Mondays.
_MONDAY = 4 * _DAY
#: Retention (days) of each tier by default, after Rive's.
DEFAULT_RETENTION_DAYS: dict[str, int] = {"hour": 30, "day": 90, "week": 180, "month": 365}


@dataclass(frozen=True)
class Tier:
    """One rollup granularity: its table, its bucket SQL and width (None: calendar months)."""

    name: Origin
    bucket_sql: str
    width: int | None
    origin: int = 0

    @property
    def table(self) -> str:
        """The rollup table."""
        return f"sdk_telemetry_rollup_{self.name}"

    @property
    def view(self) -> str:
        """The materialized view filling the table."""
        return f"sdk_telemetry_rollup_{self.name}_mv"

    def floor(self, ns: int) -> int:
        """The start (ns) of the bucket holding `ns`."""
        if self.width is not None:
            return ns - (ns - self.origin) % self.width
        moment = datetime.fromtimestamp(ns // NS, tz=timezone.utc)
        return calendar.timegm((moment.year, moment.month, 1, 0, 0, 0)) * NS

    def ceil(self, ns: int) -> int:
        """The first bucket start at or after `ns`."""
        start = self.floor(ns)
        if start == ns:
            return ns
        if self.width is not None:
            return start + self.width
        moment = datetime.fromtimestamp(start // NS, tz=timezone.utc)
        year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
        return calendar.timegm((year, month, 1, 0, 0, 0)) * NS

    def fits(self, origin: int, step: int) -> bool:
        """Whether whole buckets of this tier make up buckets of `step` from `origin`."""
        return self.width is not None and step % self.width == 0 and (origin - self.origin) % self.width == 0


#: Finest first.
TIERS: tuple[Tier, ...] = (
    Tier("hour", "toStartOfHour(Timestamp, 'UTC')", _HOUR),
    Tier("day", "toStartOfDay(Timestamp, 'UTC')", _DAY),
    Tier("week", "toDateTime(toMonday(Timestamp, 'UTC'), 'UTC')", 7 * _DAY, _MONDAY),
    Tier("month", "toDateTime(toStartOfMonth(Timestamp, 'UTC'), 'UTC')", None),
)

_FIGURES = f"""
    count() AS Kept, sum({WEIGHT}) AS Calls, sumIf({WEIGHT}, {FAILED}) AS Errors,
    sum(Duration) AS DurationSum, min(Duration) AS DurationMin, max(Duration) AS DurationMax,
    sumMap(map({SKETCH_KEY}, toUInt64(1))) AS Sketch"""


def _table_ddl(tier: Tier, days: int) -> str:
    return f"""
CREATE TABLE IF NOT EXISTS {tier.table} (
    Bucket DateTime('UTC'),
    SpanName LowCardinality(String),
    ServiceName LowCardinality(String),
    Environment LowCardinality(String),
    Kept SimpleAggregateFunction(sum, UInt64),
    Calls SimpleAggregateFunction(sum, Float64),
    Errors SimpleAggregateFunction(sum, Float64),
    DurationSum SimpleAggregateFunction(sum, UInt64),
    DurationMin SimpleAggregateFunction(min, UInt64),
    DurationMax SimpleAggregateFunction(max, UInt64),
    Sketch SimpleAggregateFunction(sumMap, Map(Int32, UInt64))
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(Bucket)
ORDER BY (Bucket, SpanName, ServiceName, Environment)
TTL Bucket + INTERVAL {int(days)} DAY
"""


def _select(tier: Tier, condition: str) -> str:
    return f"""
SELECT {tier.bucket_sql} AS Bucket, SpanName, ServiceName, {ENVIRONMENT} AS Environment,{_FIGURES}
FROM otel_traces WHERE {CALLS} AND {condition}
GROUP BY Bucket, SpanName, ServiceName, Environment
"""


def existing(run: Runner) -> set[str]:
    """The rollup tiers whose table exists."""
    names = {tier.table: tier.name for tier in TIERS}
    rows = run(
        "SELECT name FROM system.tables WHERE database = currentDatabase() AND name LIKE 'sdk_telemetry_rollup_%'", {}
    )
    return {names[str(row[0])] for row in rows if str(row[0]) in names}


def create_rollups(
    run: Runner, retention_days: Mapping[str, int] | None = None, now: int | None = None
) -> dict[str, int]:
    """Create each tier's table and view if absent; for a view created now, copy the calls stored
    before its cut-off (`now`, ns) into the table once. Returns the calls copied per tier."""
    days = {**DEFAULT_RETENTION_DAYS, **(retention_days or {})}
    for name, value in days.items():
        if name not in DEFAULT_RETENTION_DAYS or not isinstance(value, int) or value < 1:
            raise ValueError(f"rollup retention: expected a whole number of days >= 1 per tier, got {name}={value!r}")
    views = {str(row[0]) for row in run("SELECT name FROM system.tables WHERE database = currentDatabase()", {})}
    copied: dict[str, int] = {}
    for tier in TIERS:
        run(_table_ddl(tier, days[tier.name]), {})
        if tier.view in views:
            continue
        cutoff = int(time.time_ns() if now is None else now)
        # Rows from the cut-off on go through the view; rows before it are copied once below. A
        # row inserted after this with a Timestamp before the cut-off (a late batch) is missed.
        since = f"Timestamp >= fromUnixTimestamp64Nano(toInt64({cutoff}))"
        run(f"CREATE MATERIALIZED VIEW IF NOT EXISTS {tier.view} TO {tier.table} AS {_select(tier, since)}", {})
        before = f"Timestamp < fromUnixTimestamp64Nano(toInt64({cutoff}))"
        run(f"INSERT INTO {tier.table} SETTINGS async_insert = 0 {_select(tier, before)}", {})
        ((count,),) = run(f"SELECT count() FROM otel_traces WHERE {CALLS} AND {before}", {})
        copied[tier.name] = int(count)
    return copied


def drop_rollups(run: Runner) -> None:
    """Drop every tier's view and table."""
    for tier in TIERS:
        run(f"DROP VIEW IF EXISTS {tier.view}", {})
        run(f"DROP TABLE IF EXISTS {tier.table}", {})


def oldest(run: Runner, tiers: Sequence[Tier]) -> dict[str, int]:
    """The start (ns) of each tier's oldest stored bucket (tiers without buckets absent)."""
    if not tiers:
        return {}
    sql = " UNION ALL ".join(
        f"SELECT '{tier.name}', toInt64(toUnixTimestamp(min(Bucket))) * {NS}, count() FROM {tier.table}"
        for tier in tiers
    )
    return {str(name): int(start) for name, start, count in run(sql, {}) if int(count)}


@dataclass(frozen=True)
class RollupRow:
    """The merged figures of one group of rollup buckets."""

    key: Any
    kept: int
    calls: float
    errors: float
    duration_sum: int
    duration_min: int
    duration_max: int
    sketch: dict[int, int]


def read(run: Runner, tier: Tier, key_sql: str, where: str, params: Mapping[str, Any]) -> list[RollupRow]:
    """The tier's buckets matching `where` (over Bucket, SpanName, ServiceName, Environment and
    `BucketNs`), merged per `key_sql`."""
    rows = run(
        f"""
        SELECT {key_sql} AS Key, sum(Kept), sum(Calls), sum(Errors), sum(DurationSum), min(DurationMin),
               max(DurationMax), sumMap(Sketch)
        FROM (SELECT *, toInt64(toUnixTimestamp(Bucket)) * {NS} AS BucketNs FROM {tier.table})
        WHERE {where} GROUP BY Key
        """,
        params,
    )
    return [
        RollupRow(
            key,
            int(kept),
            float(calls),
            float(errors),
            int(total),
            int(low),
            int(high),
            {int(k): int(v) for k, v in dict(sketch).items()},
        )
        for key, kept, calls, errors, total, low, high, sketch in rows
    ]
