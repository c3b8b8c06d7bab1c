"""Rollups on ClickHouse: per (bucket, function, service, environment) figures of the calls in
`otel_traces` at hour, day, week (Monday, UTC) and month (calendar, UTC) granularity, and per
(bucket, function, service, environment, error type) the failed ones, kept in
`AggregatingMergeTree` tables filled by materialized views (the engine's own way) and read back
merged.

Each tier's table holds Kept (stored calls), Calls and Errors (sums of 1 / sample rate),
DurationSum/Min/Max, the duration sketch (`sketch.py`'s keys, `sumMap`-merged key -> count) and
the first call's Timestamp (so that a reader can tell which tiers lost old buckets); its error
table, the failed calls (weighted and stored), the greatest message and the first and last
failure's Timestamp. Both drop their buckets after the tier's retention (a TTL). A view only
sees rows inserted after it exists, so `create_rollups` also copies the calls already stored
(`INSERT ... SELECT`), once.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from typing import Any

from sdk_telemetry.store.clickhouse import Runner
from sdk_telemetry.store.clickhouse.expressions import CALLS, ENVIRONMENT, ERROR_KIND, FAILED, SKETCH_KEY, WEIGHT
from sdk_telemetry.store.reader import ErrorGroupRow, Origin

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

    @property
    def errors_table(self) -> str:
        """The error rollup table."""
        return f"sdk_telemetry_errors_{self.name}"

    @property
    def errors_view(self) -> str:
        """The materialized view filling the error table."""
        return f"sdk_telemetry_errors_{self.name}_mv"

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
    sumMap(map({SKETCH_KEY}, toUInt64(1))) AS Sketch, min(Timestamp) AS First"""


def _rollup_ddl(table: str, keys: Sequence[str], figures: str, days: int) -> str:
    """An `AggregatingMergeTree` of buckets by (Bucket, SpanName, ServiceName, Environment, *`keys`),
    with the `figures` columns, dropping buckets after `days` (0: never)."""
    key_columns = "".join(f"    {key} LowCardinality(String),\n" for key in keys)
    return f"""
CREATE TABLE IF NOT EXISTS {table} (
    Bucket DateTime('UTC'),
    SpanName LowCardinality(String),
    ServiceName LowCardinality(String),
    Environment LowCardinality(String),
{key_columns}{figures}
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(Bucket)
ORDER BY (Bucket, SpanName, ServiceName, Environment{"".join(f", {key}" for key in keys)})
{f"TTL Bucket + INTERVAL {int(days)} DAY" if days > 0 else ""}
SETTINGS non_replicated_deduplication_window = 1000
"""


_CALL_FIGURES = """    Kept SimpleAggregateFunction(sum, UInt64),
    Calls SimpleAggregateFunction(sum, Float64),
    Errors SimpleAggregateFunction(sum, Float64),
    DurationSum SimpleAggregateFunction(sum, UInt64),
    DurationMin SimpleAggregateFunction(min, UInt64),
    DurationMax SimpleAggregateFunction(max, UInt64),
    Sketch SimpleAggregateFunction(sumMap, Map(Int32, UInt64)),
    First SimpleAggregateFunction(min, DateTime64(9))"""
_ERROR_FIGURES = """    Kept SimpleAggregateFunction(sum, UInt64),
    Calls SimpleAggregateFunction(sum, Float64),
    Message SimpleAggregateFunction(max, String),
    First SimpleAggregateFunction(min, DateTime64(9)),
    Last SimpleAggregateFunction(max, DateTime64(9))"""


def _select(tier: Tier, condition: str) -> str:
    return f"""
SELECT {tier.bucket_sql} AS Bucket, SpanName, ServiceName, {ENVIRONMENT} AS Environment,{_FIGURES}
FROM otel_traces WHERE {CALLS} AND {condition}
GROUP BY Bucket, SpanName, ServiceName, Environment
"""


def _errors_select(tier: Tier, condition: str) -> str:
    return f"""
SELECT {tier.bucket_sql} AS Bucket, SpanName, ServiceName, {ENVIRONMENT} AS Environment, {ERROR_KIND} AS ErrorType,
    count() AS Kept, sum({WEIGHT}) AS Calls, max(StatusMessage) AS Message, min(Timestamp) AS First,
    max(Timestamp) AS Last
FROM otel_traces WHERE {CALLS} AND {FAILED} AND {condition}
GROUP BY Bucket, SpanName, ServiceName, Environment, ErrorType
"""


@dataclass(frozen=True)
class _View:
    """A materialized view over `otel_traces`, its table, and the SELECT (over a condition) that fills it."""

    label: str  # what it is called in `create_rollups`' answer
    name: str
    table: str
    ddl: str
    select: Callable[[str], str]


def _views(days: Mapping[str, int]) -> list[_View]:
    calls = [
        _View(
            tier.name,
            tier.view,
            tier.table,
            _rollup_ddl(tier.table, (), _CALL_FIGURES, days[tier.name]),
            partial(_select, tier),
        )
        for tier in TIERS
    ]
    errors = [
        _View(
            f"{tier.name} errors",
            tier.errors_view,
            tier.errors_table,
            _rollup_ddl(tier.errors_table, ("ErrorType",), _ERROR_FIGURES, days[tier.name]),
            partial(_errors_select, tier),
        )
        for tier in TIERS
    ]
    return calls + errors


def existing(run: Runner, errors: bool = False) -> set[str]:
    """The rollup tiers whose table (or, with `errors`, error table and its view) exists."""
    rows = run("SELECT name FROM system.tables WHERE database = currentDatabase() AND name LIKE 'sdk_telemetry_%'", {})
    found = {str(row[0]) for row in rows}
    if not errors:
        return {tier.name for tier in TIERS if tier.table in found}
    # Without its view a table is not filled. While `create_rollups` copies the failures stored
    # before the view, a reader's staircase reads whole buckets from after each tier's oldest
    # failure only, and raw rows before it.
    return {tier.name for tier in TIERS if tier.errors_table in found and tier.errors_view in found}


def create_rollups(run: Runner, retention_days: Mapping[str, int] | None = None) -> dict[str, int]:
    """Create each tier's table and error table, with their views, if absent; for the views created
    now, copy the calls (or failures) already stored into their tables once. Returns, per view made
    now (`hour` ... `month`, `hour errors` ... `month errors`), the stored calls it covers.

    The rows already stored are told from the rows the new views see by the block numbers of the
    table's parts, taken just before the views exist (merges are paused meanwhile, so that no part
    mixes both). A batch inserted in the instant between the two would be missed, never counted twice.
    """
    days = {**DEFAULT_RETENTION_DAYS, **(retention_days or {})}
    for name, value in days.items():
        if name not in DEFAULT_RETENTION_DAYS or not isinstance(value, int) or value < 0:
            raise ValueError(
                f"rollup retention: expected a whole number of days per tier (0: forever), got {name}={value!r}"
            )
    tables = {str(row[0]) for row in run("SELECT name FROM system.tables WHERE database = currentDatabase()", {})}
    if "otel_traces" not in tables:
        raise ValueError(
            "rollups: the database has no otel_traces table (the Collector's ClickHouse exporter creates it)"
        )
    views = _views(days)
    for view in views:
        run(view.ddl, {})
    new = [view for view in views if view.name not in tables]
    if not new:
        return {}
    paused = _pause_merges(run, True)
    try:
        stored = run(
            f"SELECT partition_id, max(max_block_number) FROM system.parts WHERE {_TRACE_PARTS} GROUP BY partition_id",
            {},
        )
        for view in new:
            run(f"CREATE MATERIALIZED VIEW IF NOT EXISTS {view.name} TO {view.table} AS {view.select('1')}", {})
        created = [view.label for view in new]
        if not stored:
            return dict.fromkeys(created, 0)
        blocks = ", ".join(f"'{partition}', {int(block)}" for partition, block in stored)
        before = (
            f"_part IN (SELECT name FROM system.parts WHERE {_TRACE_PARTS} "
            f"AND mapContains(map({blocks}), partition_id) AND max_block_number <= map({blocks})[partition_id])"
        )
        ((count,),) = run(f"SELECT count() FROM otel_traces WHERE {CALLS} AND {before}", {})
        for view in new:
            run(f"INSERT INTO {view.table} SETTINGS async_insert = 0 {view.select(before)}", {})
        return dict.fromkeys(created, int(count))
    finally:
        if paused:
            _pause_merges(run, False)


_TRACE_PARTS = "database = currentDatabase() AND table = 'otel_traces' AND active"


def _pause_merges(run: Runner, pause: bool) -> bool:
    """Stop (or start again) merges of `otel_traces`; False when the server does not allow it."""
    try:
        run(f"SYSTEM {'STOP' if pause else 'START'} MERGES otel_traces", {})
    except Exception:  # a user without the SYSTEM privilege (any client's error): go on without the pause
        return False
    return True


def drop_rollups(run: Runner) -> None:
    """Drop every tier's view and table."""
    for tier in TIERS:
        for view, table in ((tier.view, tier.table), (tier.errors_view, tier.errors_table)):
            run(f"DROP VIEW IF EXISTS {view}", {})
            run(f"DROP TABLE IF EXISTS {table}", {})


def oldest(run: Runner, tiers: Sequence[Tier], errors: bool = False) -> dict[str, int]:
    """The Timestamp (ns) of the oldest call (or, with `errors`, failure) each tier still holds
    (tiers without buckets absent)."""
    if not tiers:
        return {}
    sql = " UNION ALL ".join(
        f"SELECT '{tier.name}', toInt64(toUnixTimestamp64Nano(min(First))), count() "
        f"FROM {tier.errors_table if errors else tier.table}"
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
               max(DurationMax), tuple(mapKeys(sumMap(Sketch)), mapValues(sumMap(Sketch)))
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
            dict(zip(map(int, sketch[0]), map(int, sketch[1]), strict=True)),
        )
        for key, kept, calls, errors, total, low, high, sketch in rows
    ]


def read_errors(run: Runner, tier: Tier, where: str, params: Mapping[str, Any]) -> list[ErrorGroupRow]:
    """The tier's failures matching `where` (over Bucket, SpanName, ServiceName, Environment,
    ErrorType and `BucketNs`), per (error type, function)."""
    rows = run(
        f"""
        SELECT toString(ErrorType) AS kind, toString(SpanName) AS name, sum(Calls), max(Message),
               toInt64(toUnixTimestamp64Nano(max(Last)))
        FROM (SELECT *, toInt64(toUnixTimestamp(Bucket)) * {NS} AS BucketNs FROM {tier.errors_table})
        WHERE {where} GROUP BY kind, name
        """,
        params,
    )
    return [ErrorGroupRow(str(k), str(f), float(n), str(m), int(t)) for k, f, n, m, t in rows]
