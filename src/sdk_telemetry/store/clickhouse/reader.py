"""`ClickHouseReader`: the `Reader` interface answered by ClickHouse over the tables the
OpenTelemetry Collector's ClickHouse exporter writes (`otel_traces`, `otel_logs`), in the engine's
own SQL: `windowFunnel` for funnels, sorted `groupArray`s folded for paths, `uniqExact` for actors,
exact nearest-rank percentiles by `quantilesExact`, and the rollup tables of `rollups`
for the part of a range older than the raw rows kept.

Attributes are `Map(String, String)`; the session is the span's `session.id`, else the resource's;
the environment `deployment.environment.name` (or the older `deployment.environment`); a call's
cursor is its Timestamp (ns), ClickHouse keeping no insertion order.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Literal

from sdk_telemetry_exporters.attributes import ERROR_PROPAGATED, ERROR_TYPE, EVENT_ID, SESSION_ID

from sdk_telemetry.store.clickhouse import ClickHouseStore, Runner, columns, rollups
from sdk_telemetry.store.clickhouse.columns import Columns
from sdk_telemetry.store.clickhouse.connection import answers_rows
from sdk_telemetry.store.clickhouse.expressions import (
    CALLS,
    ENDUSER_ID,
    ENVIRONMENT,
    FAILED,
    NANOS,
    RATE,
    SKETCH_KEY,
    STATUS,
    floor_index,
    has_user,
    session,
    user,
)
from sdk_telemetry.store.queries import QueryError
from sdk_telemetry.store.reader import (
    Aggregate,
    Aggregation,
    Buckets,
    CallRow,
    ErrorGroupRow,
    EventRow,
    Origin,
    PathSummary,
    Scope,
    SessionRow,
    SpanRow,
    TierRow,
    Usage,
    row_limit,
)
from sdk_telemetry.store.sketch import Sketch

PERCENTS = (50, 95, 99)
#: Log attributes that carry an event's id, in the order the receiver reads them.
EVENT_ID_KEYS = (EVENT_ID, "event.id", "event_id", "log.record.uid")


@dataclass(frozen=True)
class _Actor:
    """SQL for an actor: its value, and the condition that a row has one."""

    value: str
    present: str


#: A snapshot's answers, by (statement, parameters).
_Answers = dict[tuple[str, tuple[tuple[str, str], ...]], list[Sequence[Any]]]


class _Params(dict[str, Any]):
    """Query parameters, each under a fresh name."""

    def add(self, value: Any, kind: str) -> str:
        name = f"p{len(self)}"
        self[name] = value
        return f"{{{name}:{kind}}}"


#: Nearest rank with the engine's selection (`quantilesExact` picks the floor(level n)-th smallest,
#: from 0): at level p - 1e-12 that is the ceil(n p)-th from 1 (at least the first) for any
#: n below 10^9, since n p is a whole number or at least 0.01 above one.
_PERCENTILES = f"quantilesExact({', '.join(f'{percent / 100} - 1e-12' for percent in PERCENTS)})(Duration)"


def _figures(weight: str) -> str:
    """A group's figures (`_aggregate` reads them), each call weighing `weight`."""
    return (
        f"count() AS kept, sum({weight}), sumIf({weight}, {FAILED}), sum(Duration), min(Duration), max(Duration), "
        f"{_PERCENTILES} AS ranked, ranked[1], ranked[2], ranked[3]"
    )


#: A function's key in a path (64 bits: two of a store's names colliding is out of reach).
_NAME_KEY = "cityHash64(SpanName)"


def _named(keys: str) -> str:
    """SQL for the names of the array of `_NAME_KEY`s `keys`, through the `WITH` item `dictionary`
    (a key it lacks, which a row stored between the two reads could bring, shows as itself)."""
    return f"arrayMap(name_key -> transform(name_key, dictionary.1, dictionary.2, toString(name_key)), {keys})"


#: Ranges of two days or more read rollups where whole buckets answer (`ClickHouseReader.long_range`).
LONG_RANGE = 2 * 86400 * rollups.NS


def _staircase(
    tiers: Sequence[rollups.Tier], whole_from: Mapping[str, int], low: int | None, high: int | None
) -> tuple[list[tuple[rollups.Tier, int | None, int | None]], list[tuple[int | None, int | None]]]:
    """[`low`, `high`) (None: open) cut into whole buckets of `tiers` (coarsest first; each tier's
    buckets only from `whole_from[tier]`) and what is left for raw rows: the coarsest tier's whole
    buckets in the middle, finer tiers' towards the ends."""
    if low is not None and high is not None and low >= high:
        return [], []
    if not tiers:
        return [], [(low, high)]
    tier, finer = tiers[0], tiers[1:]
    first = whole_from.get(tier.name)
    start = None if first is None else tier.ceil(first if low is None else max(first, low))
    end = None if high is None else tier.floor(high)
    if start is None or (end is not None and start >= end):
        return _staircase(finer, whole_from, low, high)
    before, raw_before = _staircase(finer, whole_from, low, start)
    after, raw_after = _staircase(finer, whole_from, end, high) if end is not None else ([], [])
    return [*before, (tier, start, end), *after], [*raw_before, *raw_after]


class ClickHouseReader:
    """A ClickHouse store read through `run(sql, params)` (chDB or `clickhouse-connect`, see
    `ClickHouseStore.from_chdb` / `from_client`); `location` names it for display."""

    engine = "clickhouse"

    def __init__(self, run: Runner, location: str, long_range: int | None = LONG_RANGE) -> None:
        self._runner = run
        self._snapshots = threading.local()  # each thread's answers within `snapshot()`
        self.location = location
        #: Ranges at least this long (ns) read the whole buckets of rollups also where raw rows
        #: exist (None: only before the oldest raw call).
        self.long_range = long_range
        self._analysis_columns: Columns | None = None  # the analysis columns there are, once asked

    @classmethod
    def from_chdb(cls, session: Any, location: str = "chdb") -> ClickHouseReader:
        """Over a chDB session."""
        return cls(ClickHouseStore.from_chdb(session).run, location)

    @classmethod
    def from_client(cls, client: Any, location: str = "clickhouse") -> ClickHouseReader:
        """Over a `clickhouse_connect` client."""
        return cls(ClickHouseStore.from_client(client).run, location)

    def run(self, sql: str, params: Mapping[str, Any]) -> list[Sequence[Any]]:
        """The rows of `sql` with `params` (within `snapshot()`, a query asked again is answered as
        the first time, until a statement that changes the store)."""
        answers: _Answers | None = getattr(self._snapshots, "answers", None)
        if answers is None:
            return self._runner(sql, params)
        if not answers_rows(sql):  # a change: what was learnt may no longer hold
            answers.clear()
            return self._runner(sql, params)
        key = (sql, tuple(sorted((name, repr(value)) for name, value in params.items())))
        found = answers.get(key)
        if found is None:
            found = answers[key] = self._runner(sql, params)
        return found

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Within it (in this thread), the same query is run once: a page's analyses ask what is
        stored, where the first and last calls are and which rollups exist many times over.
        Different queries still see what is stored when they run."""
        if getattr(self._snapshots, "answers", None) is not None:  # within an outer snapshot
            yield
            return
        self._snapshots.answers = {}
        try:
            yield
        finally:
            self._snapshots.answers = None

    # Rollups.
    def create_rollups(self, retention_days: Mapping[str, int] | None = None) -> dict[str, int]:
        """Create what is absent of the rollup and error rollup tables with their materialized views
        (see `rollups`) and of the analysis columns (see `columns`); returns, for each made now
        (`hour` ... `month`, `hour errors` ... `month errors`, `analysis columns`), the stored
        calls it covers."""
        created = rollups.create_rollups(self.run, retention_days)
        if columns.add_columns(self.run):
            created["analysis columns"] = self.stored_spans(calls_only=True)
        self._analysis_columns = columns.MATERIALIZED
        return created

    def _columns(self) -> Columns:
        """The analysis columns of `otel_traces` it has, the rest the same from the maps (asked once
        per reader: a reader is opened per request or command)."""
        if self._analysis_columns is None:
            self._analysis_columns = columns.available(self.run)
        return self._analysis_columns

    # SQL pieces.
    def _calls_where(self, scope: Scope, params: _Params, events: bool = False) -> str:
        """The condition for `otel_traces` calls (or, with `events`, `otel_logs` records) in `scope`."""
        figures = self._columns() if not events else None
        parts = [] if figures is None else [figures.call]
        if scope.start is not None:
            parts.append(f"Timestamp >= fromUnixTimestamp64Nano({params.add(int(scope.start), 'Int64')})")
        if scope.end is not None:
            parts.append(f"Timestamp < fromUnixTimestamp64Nano({params.add(int(scope.end), 'Int64')})")
        if scope.service is not None:
            parts.append(f"ServiceName = {params.add(scope.service, 'String')}")
        if scope.environment is not None:
            environment = ENVIRONMENT if figures is None else figures.environment
            parts.append(f"{environment} = {params.add(scope.environment, 'String')}")
        if scope.session is not None:
            sid = session("LogAttributes") if figures is None else figures.session
            parts.append(f"{sid} = {params.add(scope.session, 'String')}")
        if figures is not None:
            names = self._names(scope)
            if names is not None:
                parts.append(self._in("SpanName", names, params))
            if scope.errors_only or scope.error_type is not None:
                parts.append(FAILED)
            if scope.error_type is not None:
                parts.append(f"{figures.error_kind} = {params.add(scope.error_type, 'String')}")
        return " AND ".join(parts) or "1"

    @staticmethod
    def _names(scope: Scope) -> list[str] | None:
        if scope.function is not None and scope.functions is not None:
            return [name for name in scope.functions if name == scope.function]
        if scope.function is not None:
            return [scope.function]
        return None if scope.functions is None else list(scope.functions)

    @staticmethod
    def _in(column: str, values: Sequence[str], params: _Params) -> str:
        # One parameter per value: an Array parameter is not passed the same way by every client.
        if not values:
            return "0"
        return f"{column} IN ({', '.join(params.add(value, 'String') for value in values)})"

    def _actor(self, by: str, params: _Params, events: bool = False) -> _Actor:
        if not by:
            raise QueryError("INVALID_ACTOR", "by: expected 'session', 'user', 'service' or a resource attribute key")
        if by in ("session", SESSION_ID):
            value = session("LogAttributes") if events else self._columns().session
            return _Actor(value, f"{value} != ''")
        if by in ("service", "service.name"):
            return _Actor("toString(ServiceName)", "ServiceName != ''")
        if by == "user":  # the call's (or event's) own user, else the process's
            if events:
                return _Actor(user("LogAttributes"), has_user("LogAttributes"))
            figures = self._columns()
            return _Actor(figures.user, figures.has_user)
        key = params.add(by, "String")
        return _Actor(f"ResourceAttributes[{key}]", f"mapContains(ResourceAttributes, {key})")

    # What is stored.
    def _tables(self) -> set[str]:
        rows = self.run("SELECT name FROM system.tables WHERE database = currentDatabase()", {})
        return {str(row[0]) for row in rows}

    def has_events(self) -> bool:
        """Whether the store keeps events (`otel_logs`)."""
        return "otel_logs" in self._tables()

    def _event_name(self) -> str:
        columns = self.run(
            "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = 'otel_logs'", {}
        )
        attribute = "LogAttributes['event.name']"
        if "EventName" in {str(row[0]) for row in columns}:  # the Collector's newer schema
            return f"if(EventName != '', EventName, {attribute})"
        return attribute

    def recorded_functions(self) -> list[str]:
        """Every function with a stored call, ever, sorted (from the month rollup, which every stored
        call reaches, when there is one: it is far smaller)."""
        source = self._month_calls() or f"otel_traces WHERE {CALLS}"
        return [str(row[0]) for row in self.run(f"SELECT DISTINCT toString(SpanName) FROM {source} ORDER BY 1", {})]

    def _month_calls(self) -> str | None:
        """`FROM` text for the month rollup's groups with calls, None when that tier does not exist."""
        month = rollups.TIERS[-1]
        return f"{month.table} WHERE Kept > 0" if month.name in rollups.existing(self.run) else None

    def recorded_events(self) -> list[str]:
        """Every stored event name, sorted."""
        if not self.has_events():
            return []
        name = self._event_name()
        rows = self.run(f"SELECT DISTINCT {name} AS n FROM otel_logs WHERE n != '' ORDER BY n", {})
        return [str(row[0]) for row in rows]

    def dimensions(self) -> dict[str, list[str]]:
        """`{"services": [...], "environments": [...]}` with stored calls, sorted (from the month
        rollup, which every stored call reaches, when there is one: it is far smaller)."""
        month = self._month_calls()
        if month is not None:
            source, environment = month, "toString(Environment)"
        else:
            source, environment = f"otel_traces WHERE {CALLS}", ENVIRONMENT
        ((services, environments),) = self.run(
            f"SELECT arraySort(groupUniqArrayIf(toString(ServiceName), ServiceName != '')), "
            f"arraySort(groupUniqArrayIf({environment}, {environment} != '')) FROM {source}",
            {},
        )
        return {"services": [str(s) for s in services], "environments": [str(e) for e in environments]}

    def stored_spans(self, calls_only: bool = False) -> int:
        """How many spans (or, with `calls_only`, calls) are stored."""
        ((count,),) = self.run(f"SELECT count() FROM otel_traces WHERE {CALLS if calls_only else '1'}", {})
        return int(count)

    def edge(self, scope: Scope, last: bool = False) -> int | None:
        """The first (or last) call's Timestamp in `scope`; None without calls."""
        # The Collector partitions by day (`toDate(Timestamp)`) and system.parts knows each part's
        # oldest and newest Timestamp: with that end of `scope` open, the stored first (or last)
        # day answers when it holds a call in `scope`, and only the whole table otherwise.
        day = self._stored_day(last) if (scope.end if last else scope.start) is None else None
        if day is not None:
            start, end = day * rollups.NS, (day + 86400) * rollups.NS
            if scope.start is not None:
                start = max(start, int(scope.start))
            if scope.end is not None:
                end = min(end, int(scope.end))
            found = self._edge(scope.narrowed(start=start, end=end), last) if start < end else None
            if found is not None:
                return found
        return self._edge(scope, last)

    def _stored_day(self, last: bool) -> int | None:
        """The start (s, UTC) of the first (or last) day any active part of `otel_traces` holds, as
        system.parts tells; None when its parts do not say (a table not partitioned by time)."""
        low, high = ("min_date", "min_time") if not last else ("max_date", "max_time")
        ((moment,),) = self.run(
            f"SELECT toInt64({'max' if last else 'min'}(toUnixTimestamp(if({low} > '1970-01-01', "
            f"toDateTime({low}, 'UTC'), {high})))) FROM system.parts WHERE database = currentDatabase() "
            f"AND table = 'otel_traces' AND active AND ({low} > '1970-01-01' OR {high} > '1970-01-01 00:00:00')",
            {},
        )
        return None if int(moment) <= 0 else int(moment) - int(moment) % 86400

    def _edge(self, scope: Scope, last: bool) -> int | None:
        params = _Params()
        where = self._calls_where(scope, params)
        ((count, value),) = self.run(
            f"SELECT count(), toInt64({'max' if last else 'min'}({NANOS})) FROM otel_traces WHERE {where}", params
        )
        return int(value) if int(count) else None

    # Figures.
    def aggregate(self, scope: Scope, group: Literal["function"] | Buckets | None = None) -> Aggregation:
        """Calls, errors, durations and percentiles per function, per time bucket (with the overall
        figures as `total`), or overall, in key order (`origins` says what answered).

        Raw rows answer a short range, and every range when there are no rollups. Rollups answer the
        part of a range older than the oldest raw call (from the finest fitting tier covering the
        most of it) and, for a range of `long_range` or more, the whole buckets of the part raw rows
        hold too (the coarsest fitting tier for the middle, finer ones towards the ends, raw rows
        for what is left of the first and last hour): the same counts, percentiles within the
        sketch's 1 %, from far fewer rows."""
        whole = isinstance(group, Buckets)
        tiers = self._fitting_tiers(scope, group)
        since = self.raw_complete_since() if tiers else None
        oldest = rollups.oldest(self.run, tiers)
        rolled: list[tuple[int | None, rollups.Tier, list[rollups.RollupRow]]] = []
        raw_from = scope.start
        plan = self._rollup_plan(scope, tiers, oldest, since)
        if plan is not None:
            tier, raw_from = plan
            rolled.append((scope.start, tier, self._rollup_rows(tier, scope, group, raw_from)))
            if raw_from is not None and scope.start is not None:
                raw_from = max(raw_from, scope.start)
        spans: list[tuple[int | None, int | None]] = []
        if since is not None and (scope.end is None or raw_from is None or raw_from < scope.end):
            spans = [(raw_from, scope.end)]
        if spans and tiers and self._is_long(scope):
            # Each tier's whole buckets from after its oldest one, which its retention may be removing row by row.
            whole_from: dict[str, int] = {t.name: t.ceil(oldest[t.name] + 1) for t in tiers if t.name in oldest}
            parts, spans = _staircase(list(reversed(tiers)), whole_from, raw_from, scope.end)
            rolled += [(low, tier, self._rollup_rows(tier, replace(scope, start=low, end=high), group, None))
                       for tier, low, high in parts]  # fmt: skip
        rolled = [part for part in rolled if part[2]]
        if not rolled:
            exact, overall = self._raw_aggregates(scope, group, whole)
            return Aggregation([row for row, _ in exact], ["raw"], None if overall is None else overall[0])
        by_key: dict[Any, tuple[list[rollups.RollupRow], list[tuple[Aggregate, dict[int, int]]]]] = {}
        for _, _, buckets in rolled:
            for bucket in buckets:
                by_key.setdefault(_typed_key(group, bucket.key), ([], []))[0].append(bucket)
        answered: list[tuple[int | None, Origin]] = [(low, tier.name) for low, tier, _ in rolled]
        for low, high in spans:
            found, _ = self._raw_aggregates(replace(scope, start=low, end=high), group, False, sketches=True)
            for figures, sketch in found:
                by_key.setdefault(figures.key, ([], []))[1].append((figures, sketch))
            if found:
                answered.append((low, "raw"))
        origins: list[Origin] = []
        for _, name in sorted(answered, key=lambda part: -(2**63) if part[0] is None else part[0]):
            if name not in origins:
                origins.append(name)
        keys = sorted(by_key, key=lambda k: (k is None, k))
        merged = [_merged(key, *by_key[key]) for key in keys]
        everything = (
            [part for key in keys for part in by_key[key][0]],
            [part for key in keys for part in by_key[key][1]],
        )
        total = _merged(None, *everything) if whole and keys else None
        return Aggregation(merged, origins, total)

    def _fitting_tiers(self, scope: Scope, group: Literal["function"] | Buckets | None) -> list[rollups.Tier]:
        """The rollup tiers that can answer `scope` grouped by `group`, finest first: none for a
        session or errors-only scope (rollups do not break those down)."""
        if scope.session is not None or scope.errors_only or scope.error_type is not None:
            return []
        present = rollups.existing(self.run)
        return [
            tier
            for tier in rollups.TIERS
            if tier.name in present and (not isinstance(group, Buckets) or tier.fits(group.origin, group.step))
        ]

    def _is_long(self, scope: Scope) -> bool:
        if self.long_range is None:
            return False
        return scope.start is None or scope.end is None or scope.end - scope.start >= self.long_range

    def _key(self, group: Literal["function"] | Buckets | None, nanos: str = NANOS) -> str:
        if group is None:
            return "toUInt8(0)"
        if group == "function":
            return "toString(SpanName)"
        if isinstance(group, Buckets):
            if group.step <= 0:
                raise QueryError("INVALID_BUCKETS", f"buckets: the step must be positive, got {group.step}")
            return floor_index(nanos, group.origin, group.step)
        raise QueryError("INVALID_GROUP", f"group: expected 'function', Buckets or None, got {group!r}")

    def _raw_aggregates(
        self, scope: Scope, group: Literal["function"] | Buckets | None, whole: bool, sketches: bool = False
    ) -> tuple[list[tuple[Aggregate, dict[int, int]]], tuple[Aggregate, dict[int, int]] | None]:
        """Per group (and, with `whole`, overall: the same read grouped twice) the figures of the raw
        rows, with their duration sketch when `sketches`."""
        params = _Params()
        where = self._calls_where(scope, params)
        weight = self._columns().weight
        sketch = f"sumMap(map({SKETCH_KEY}, toUInt64(1)))" if sketches else "map()"
        grouping = "GROUPING SETS ((key), ())" if whole else "key"
        found = self.run(
            f"SELECT {self._key(group)} AS key, {_figures(weight)}, tuple(mapKeys({sketch}), mapValues({sketch})), "
            f"{'grouping(key)' if whole else '0'} AS whole "
            f"FROM otel_traces WHERE {where} GROUP BY {grouping} ORDER BY whole, key",
            params,
        )
        rows, total = [], None
        for row in found:
            figures = (
                self._aggregate(None if int(row[12]) else group, row),
                dict(zip(map(int, row[11][0]), map(int, row[11][1]), strict=True)),
            )
            if int(row[12]):
                total = figures
            else:
                rows.append(figures)
        return rows, total

    @staticmethod
    def _aggregate(group: Any, row: Sequence[Any]) -> Aggregate:
        key, kept, calls, errors, total, low, high, _ranked, p50, p95, p99 = row[:11]
        return Aggregate(
            key=None if group is None else (str(key) if group == "function" else int(key)),
            kept=int(kept),
            calls=float(calls),
            errors=float(errors),
            duration_sum=float(total),
            duration_min=int(low),
            duration_max=int(high),
            p50=int(p50),
            p95=int(p95),
            p99=int(p99),
        )

    def rollup_tiers(self) -> list[TierRow]:
        """What each rollup table holds, finest first (the tiers whose table exists)."""
        present = rollups.existing(self.run)
        found = []
        for tier in rollups.TIERS:
            if tier.name not in present:
                continue
            ((rows, first, last, kept, calls),) = self.run(
                f"SELECT count(), toInt64(toUnixTimestamp(min(Bucket))), toInt64(toUnixTimestamp(max(Bucket))), "
                f"sum(Kept), sum(Calls) FROM {tier.table} FINAL",
                {},
            )
            empty = int(rows) == 0
            found.append(
                TierRow(
                    tier.name,
                    int(rows),
                    None if empty else int(first) * 1_000_000_000,
                    None if empty else int(last) * 1_000_000_000,
                    int(kept or 0),
                    float(calls or 0.0),
                )
            )
        return found

    def raw_complete_since(self) -> int | None:
        """The oldest stored call's Timestamp: raw rows are complete from there on (None without calls)."""
        return self.edge(Scope())

    @staticmethod
    def _rollup_plan(
        scope: Scope, tiers: Sequence[rollups.Tier], oldest: Mapping[str, int], since: int | None
    ) -> tuple[rollups.Tier, int | None] | None:
        """The tier (of `tiers`, whose oldest calls are `oldest`) to read the part of `scope` before
        the raw rows (complete since `since`) from, and the moment (ns) raw rows take over; None
        when there is no such part."""
        if not tiers or (since is not None and scope.start is not None and scope.start >= since):
            return None
        candidates = [tier for tier in tiers if tier.name in oldest and (since is None or oldest[tier.name] < since)]
        if not candidates:
            return None

        # The tier covering the most of the range: its buckets count from the first one starting
        # in the range, and its retention may have dropped older ones; the finest among equals.
        def covered_from(tier: rollups.Tier) -> int:
            return oldest[tier.name] if scope.start is None else max(oldest[tier.name], tier.ceil(scope.start))

        tier = min(candidates, key=covered_from)  # `min` keeps the first (finest) of equals
        return tier, None if since is None else tier.ceil(since)

    def _rollup_rows(
        self, tier: rollups.Tier, scope: Scope, group: Literal["function"] | Buckets | None, raw_from: int | None
    ) -> list[rollups.RollupRow]:
        where, params = self._rollup_where(scope, raw_from)
        return rollups.read(self.run, tier, self._key(group, "BucketNs"), where, params)

    def _rollup_where(self, scope: Scope, raw_from: int | None = None) -> tuple[str, _Params]:
        """The condition for a rollup table's buckets in `scope` (starting before `raw_from` too)."""
        params = _Params()
        parts = []
        if scope.start is not None:
            parts.append(f"BucketNs >= {params.add(int(scope.start), 'Int64')}")
        ends = [end for end in (scope.end, raw_from) if end is not None]
        if ends:
            parts.append(f"BucketNs < {params.add(min(ends), 'Int64')}")
        if scope.service is not None:
            parts.append(f"ServiceName = {params.add(scope.service, 'String')}")
        if scope.environment is not None:
            parts.append(f"Environment = {params.add(scope.environment, 'String')}")
        names = self._names(scope)
        if names is not None:
            parts.append(self._in("SpanName", names, params))
        if scope.error_type is not None:  # only error tables have the column (no calls scope has an error type)
            parts.append(f"ErrorType = {params.add(scope.error_type, 'String')}")
        return " AND ".join(parts) or "1", params

    def error_groups(self, scope: Scope, limit: int) -> list[ErrorGroupRow]:
        """Failed calls grouped by (error type, function), the most frequent (by weight) first.

        A range of `long_range` or more reads the error rollups' whole buckets where raw rows hold
        every call (as `aggregate` does: coarsest tier in the middle, finer ones towards the ends)
        and raw rows for the rest: the same groups and figures as raw rows alone."""
        parts, raw = self._error_plan(scope)
        if not parts:
            return self._raw_error_groups(scope, limit)
        found = [row for tier, low, high in parts for row in rollups.read_errors(
            self.run, tier, *self._rollup_where(replace(scope, start=low, end=high)))]  # fmt: skip
        found += [row for low, high in raw for row in self._raw_error_groups(replace(scope, start=low, end=high))]
        groups: dict[tuple[str, str], ErrorGroupRow] = {}
        for row in found:
            seen = groups.get((row.error_type, row.function))
            groups[(row.error_type, row.function)] = row if seen is None else replace(
                seen,
                count=seen.count + row.count,
                sample_message=max(seen.sample_message, row.sample_message),
                last_seen=max(seen.last_seen, row.last_seen),
            )  # fmt: skip
        return sorted(groups.values(), key=lambda row: (-row.count, row.error_type, row.function))[: row_limit(limit)]

    def _error_plan(
        self, scope: Scope
    ) -> tuple[list[tuple[rollups.Tier, int | None, int | None]], list[tuple[int | None, int | None]]]:
        """Which error rollup buckets (and which raw parts) answer `scope`'s error groups."""
        everything: list[tuple[int | None, int | None]] = [(scope.start, scope.end)]
        if scope.session is not None or not self._is_long(scope):
            return [], everything
        present = rollups.existing(self.run, errors=True)
        tiers = [tier for tier in rollups.TIERS if tier.name in present]
        since = self.raw_complete_since() if tiers else None
        if since is None:
            return [], everything
        oldest = rollups.oldest(self.run, tiers, errors=True)
        # Whole buckets where raw rows hold every call, each tier's oldest bucket left out (its TTL may be removing it).
        whole_from: dict[str, int] = {
            tier.name: tier.ceil(max(oldest[tier.name] + 1, since)) for tier in tiers if tier.name in oldest
        }
        return _staircase(list(reversed(tiers)), whole_from, scope.start, scope.end)

    def _raw_error_groups(self, scope: Scope, limit: int | None = None) -> list[ErrorGroupRow]:
        params = _Params()
        where = self._calls_where(scope, params)
        figures = self._columns()
        limit_sql = "" if limit is None else f" LIMIT {params.add(row_limit(limit), 'UInt64')}"
        rows = self.run(
            f"""
            SELECT {figures.error_kind} AS kind, toString(SpanName) AS name, sum({figures.weight}) AS n,
                   max(StatusMessage), toInt64(max({NANOS}))
            FROM otel_traces WHERE {where} AND {FAILED}
            GROUP BY kind, name ORDER BY n DESC, kind, name{limit_sql}
            """,
            params,
        )
        return [ErrorGroupRow(str(k), str(f), float(n), str(m), int(t)) for k, f, n, m, t in rows]

    def active_actors(self, scope: Scope, by: str) -> int:
        """Distinct actors with calls in `scope`."""
        params = _Params()
        actor = self._actor(by, params)
        where = self._calls_where(scope, params)
        ((count,),) = self.run(
            f"SELECT uniqExact({actor.value}) FROM otel_traces WHERE {where} AND {actor.present}", params
        )
        return int(count)

    # Who did what.
    def funnel(self, scope: Scope, steps: Sequence[str], window: int, by: str) -> list[int]:
        """Actors reaching each step, by `windowFunnel(window)` over calls and events named as steps."""
        if not steps:
            return []
        if int(window) < 0:
            raise QueryError("INVALID_WINDOW", f"window: must not be negative, got {window}")
        params = _Params()
        names = sorted(set(steps))
        call = self._actor(by, params)
        where = self._calls_where(scope, params)
        sources = [
            f"SELECT {call.value} AS actor, toUInt64({NANOS}) AS at, toString(SpanName) AS name FROM otel_traces "
            f"WHERE {where} AND {call.present} AND {self._in('SpanName', names, params)}"
        ]
        if self.has_events():
            event = self._actor(by, params, events=True)
            log_where = self._calls_where(scope, params, events=True)
            name = self._event_name()
            sources.append(
                f"SELECT {event.value} AS actor, toUInt64({NANOS}) AS at, {name} AS name FROM otel_logs "
                f"WHERE {log_where} AND {event.present} AND {self._in(name, names, params)}"
            )
        conditions = ", ".join(f"name = {params.add(step, 'String')}" for step in steps)
        rows = self.run(
            f"""
            SELECT level, count() FROM (
                SELECT actor, windowFunnel({int(window)})(at, {conditions}) AS level
                FROM ({" UNION ALL ".join(sources)}) GROUP BY actor
            ) WHERE level > 0 GROUP BY level
            """,
            params,
        )
        levels = {int(level): int(count) for level, count in rows}
        return [sum(count for level, count in levels.items() if level > index) for index in range(len(steps))]

    def paths(
        self, scope: Scope, by: str, top_level: bool, max_steps: int | None = None
    ) -> list[tuple[tuple[str, ...], int]]:
        """Each distinct path (cut at `max_steps`) and how many actors took it, in path order."""
        params = _Params()
        each, dictionary = self._actor_paths(scope, by, top_level, params)
        cut = "path" if max_steps is None else f"arraySlice(path, 1, {int(max_steps)})"
        rows = self.run(
            f"WITH {dictionary} SELECT {_named('cut')}, n "
            f"FROM (SELECT {cut} AS cut, count() AS n FROM ({each}) GROUP BY cut)",
            params,
        )
        return sorted((tuple(map(str, path)), int(count)) for path, count in rows)

    def path_summary(self, scope: Scope, by: str, top_level: bool, max_steps: int, limit: int) -> PathSummary:
        """What `journeys` counts of the actors' paths (see `PathSummary`), counted by the engine:
        only the `limit` commonest cut paths are sent back, not every whole path."""
        params = _Params()
        each, dictionary = self._actor_paths(scope, by, top_level, params)
        rows = self.run(
            f"""
            WITH {dictionary}
            SELECT kind, key, n FROM (
                SELECT kind, {_named("keys")} AS key, n,
                       row_number() OVER (PARTITION BY kind ORDER BY n DESC, key) AS rank
                FROM (
                    SELECT item.1 AS kind, item.2 AS keys, sum(c) AS n
                    FROM (SELECT path, count() AS c FROM ({each}) GROUP BY path)
                    ARRAY JOIN arrayConcat(
                        [('actors', []), ('path', arraySlice(path, 1, {int(max_steps)})), ('exit', [path[-1]])],
                        arrayMap((a, b) -> ('step', [a, b]), arrayPopBack(path), arrayPopFront(path))
                    ) AS item
                    GROUP BY kind, keys
                )
            ) WHERE kind != 'path' OR rank <= {row_limit(limit)}
            """,
            params,
        )
        found: dict[str, list[tuple[tuple[str, ...], int]]] = {"actors": [], "path": [], "exit": [], "step": []}
        for kind, key, count in rows:
            found[str(kind)].append((tuple(map(str, key)), int(count)))
        return PathSummary(
            actors=sum(count for _, count in found["actors"]),
            paths=sorted(found["path"], key=lambda item: (-item[1], item[0])),
            steps=sorted(((a, b, n) for (a, b), n in found["step"]), key=lambda item: (-item[2], item[:2])),
            exits=sorted(((name, n) for (name,), n in found["exit"]), key=lambda item: (-item[1], item[0])),
        )

    def _actor_paths(self, scope: Scope, by: str, top_level: bool, params: _Params) -> tuple[str, str]:
        """SQL for each actor's `path`: its calls (with `top_level`, those not made inside another
        stored call) in (Timestamp, SpanId) order, consecutive repeats of a function folded; and a
        `WITH` item naming `dictionary` for `_named`. A path holds each function's `_NAME_KEY`:
        arrays of integers sort, fold and group about twice as fast as arrays of names."""
        actor = self._actor(by, params)
        where = self._calls_where(scope, params)
        figures = self._columns()
        outer = ""
        if top_level:
            # A call made inside another stored call (of any scope) is not a step of its own. Its
            # parent started before it and was still running: no earlier than the range's start
            # minus the longest call, which keeps the parents' search to the range's partitions.
            inner_where = self._calls_where(scope, params)
            since = ""
            if scope.start is not None:
                since = (
                    f" AND Timestamp >= fromUnixTimestamp64Nano({params.add(int(scope.start), 'Int64')}) - "
                    f"toIntervalNanosecond(({self._longest_call()}))"
                )
            if scope.end is not None:
                since += f" AND Timestamp < fromUnixTimestamp64Nano({params.add(int(scope.end), 'Int64')})"
            parent, span = figures.parent_key, figures.span_key
            outer = f"""AND NOT if({parent} = 0, 0, {parent} IN (
                SELECT {span} FROM otel_traces WHERE {figures.call}{since} AND {span} IN (
                    SELECT {parent} FROM otel_traces WHERE {inner_where} AND {parent} != 0)))"""
        each = f"""
            SELECT arraySort((name, at, span) -> (at, span),
                             groupArray({_NAME_KEY}), groupArray({NANOS}), groupArray(SpanId)) AS names,
                   arrayFilter((name, i) -> i = 1 OR name != names[i - 1], names, arrayEnumerate(names)) AS path
            FROM otel_traces WHERE {where} AND {actor.present} {outer}
            GROUP BY {actor.value}
            """
        dictionary = (
            f"(SELECT (groupArray(function_key), groupArray(function)) FROM (SELECT DISTINCT "
            f"{_NAME_KEY} AS function_key, toString(SpanName) AS function FROM otel_traces WHERE {where})) "
            "AS dictionary"
        )
        return each, dictionary

    def _longest_call(self) -> str:
        """SQL for the longest stored call's Duration, or more (the month rollup's longest, which
        every stored call reaches: far cheaper than reading every Duration)."""
        month = self._month_calls()
        if month is not None:
            return f"SELECT max(DurationMax) FROM {month}"
        return f"SELECT max(Duration) FROM otel_traces WHERE {CALLS}"

    def cohorts(self, scope: Scope, by: str, period: Buckets, periods: int) -> dict[int, list[int]]:
        """Per cohort (the period of an actor's first call in `scope`): actors active 0 .. `periods` - 1
        periods after it."""
        if periods < 1:
            return {}
        params = _Params()
        actor = self._actor(by, params)
        where = self._calls_where(scope, params)
        rows = self.run(
            f"""
            SELECT cohort, age, count() FROM (
                SELECT groupUniqArray({self._key(period)}) AS active, arrayMin(active) AS cohort
                FROM otel_traces WHERE {where} AND {actor.present} GROUP BY {actor.value}
            ) ARRAY JOIN arrayMap(p -> p - cohort, active) AS age
            WHERE age < {int(periods)} GROUP BY cohort, age
            """,
            params,
        )
        table: dict[int, list[int]] = {}
        for cohort, age, count in rows:
            table.setdefault(int(cohort), [0] * periods)[int(age)] = int(count)
        return dict(sorted(table.items()))

    def usage(self, scope: Scope, by: str, period: Buckets) -> Usage:
        """Distinct actors per period and per function (see `Usage`)."""
        params = _Params()
        actor = self._actor(by, params)
        where = self._calls_where(scope, params)
        # Each call joins one set of actors (per function and period); the others are their unions.
        # Sets of 64-bit hashes merge twice as fast as uniqExact's own (128-bit) hashes of strings;
        # two of ten million actors collide with odds of about 3 in a million.
        rows = self.run(
            f"""
            SELECT grouping(name, period) AS level, name, period, uniqExactMerge(actors) FROM (
                SELECT toString(SpanName) AS name, {self._key(period)} AS period,
                       uniqExactState(cityHash64({actor.value})) AS actors
                FROM otel_traces WHERE {where} AND {actor.present} GROUP BY name, period
            ) GROUP BY GROUPING SETS ((name, period), (name), (period), ())
            """,
            params,
        )
        active: dict[int, int] = {}
        using: dict[str, dict[int, int]] = {}
        users: dict[str, int] = {}
        everyone = 0
        for level, name, index, count in rows:
            # grouping(): bit 1 set when `name` is aggregated away, bit 0 when `period` is.
            level, count = int(level), int(count)
            if level == 0:
                using.setdefault(str(name), {})[int(index)] = count
            elif level == 1:
                users[str(name)] = count
            elif level == 2:
                active[int(index)] = count
            else:
                everyone = count
        return Usage(
            dict(sorted(active.items())),
            everyone,
            {name: dict(sorted(per.items())) for name, per in sorted(using.items())},
            dict(sorted(users.items())),
        )

    # Rows.
    def calls(
        self,
        scope: Scope,
        order: Literal["newest", "oldest", "stored"] = "newest",
        limit: int | None = None,
        after: int | None = None,
        with_events: bool = False,
    ) -> Iterator[CallRow]:
        """Calls in `scope`: newest first, oldest first, or in stored (Timestamp) order after the
        cursor `after` (a Timestamp; with `order="stored"` and no `after`: the last `limit`)."""
        params = _Params()
        where = self._calls_where(scope, params)
        reverse = False
        if order == "newest":
            sort = f"{NANOS} DESC, SpanId"
        elif order == "oldest":
            sort = f"{NANOS}, SpanId"
        elif order == "stored":
            if after is None:
                sort, reverse = f"{NANOS} DESC, SpanId DESC", True
            else:
                where += f" AND Timestamp > fromUnixTimestamp64Nano({params.add(int(after), 'Int64')})"
                sort = f"{NANOS}, SpanId"
        else:
            raise QueryError("INVALID_ORDER", f"order: expected 'newest', 'oldest' or 'stored', got {order!r}")
        limit_sql = "" if limit is None else f" LIMIT {params.add(row_limit(limit), 'UInt64')}"
        events = (
            "arrayMap(t -> toInt64(toUnixTimestamp64Nano(t)), Events.Timestamp), Events.Name, Events.Attributes"
            if with_events
            else "[], [], []"
        )
        rows = self.run(
            f"""
            SELECT toInt64({NANOS}), toString(SpanName), Duration, {STATUS}, StatusMessage, TraceId, SpanId,
                   ParentSpanId, toString(ServiceName), {ENVIRONMENT}, {session()},
                   if(mapContains(SpanAttributes, '{ENDUSER_ID}'), SpanAttributes['{ENDUSER_ID}'],
                      if(mapContains(ResourceAttributes, '{ENDUSER_ID}'), ResourceAttributes['{ENDUSER_ID}'], NULL)),
                   if(mapContains(SpanAttributes, '{ERROR_TYPE}'), SpanAttributes['{ERROR_TYPE}'], NULL),
                   {RATE}, SpanAttributes['{ERROR_PROPAGATED}'] IN ('true', 'True', '1'), {events}
            FROM otel_traces WHERE {where} ORDER BY {sort}{limit_sql}
            """,
            params,
        )
        if reverse:
            rows = rows[::-1]
        for row in rows:
            at, name, duration, status, message, trace, span, parent, service, env, sid, user, kind, rate = row[:14]
            yield CallRow(
                cursor=int(at),
                timestamp=int(at),
                function=str(name),
                duration=int(duration),
                status=str(status),
                message=str(message),
                trace_id=str(trace),
                span_id=str(span),
                parent_span_id=str(parent),
                service=str(service),
                environment=str(env),
                session_id=str(sid),
                user_id=None if user is None else str(user),
                error_type=None if kind is None else str(kind),
                sample_rate=float(rate),
                events=_events(*row[15:18]) if with_events else [],
                propagated=bool(row[14]),
            )

    def last_cursor(self) -> int:
        """The Timestamp (ns) of the latest call stored (0 when none)."""
        return self.edge(Scope(), last=True) or 0

    def trace_ids(self, prefix: str, limit: int = 2) -> list[str]:
        """Trace ids starting with `prefix` (lower-case hex), at most `limit`."""
        params = _Params()
        wanted = params.add(prefix.lower(), "String")
        rows = self.run(
            f"SELECT DISTINCT TraceId FROM otel_traces WHERE startsWith(TraceId, {wanted}) ORDER BY TraceId "
            f"LIMIT {params.add(row_limit(limit), 'UInt64')}",
            params,
        )
        return [str(row[0]) for row in rows]

    def trace_spans(self, trace_id: str) -> list[SpanRow]:
        """Every stored span of one trace, in (Timestamp, SpanId) order."""
        params = _Params()
        rows = self.run(
            f"""
            SELECT toInt64({NANOS}), SpanId, ParentSpanId, toString(SpanName), toString(SpanKind), ScopeName,
                   toString(ServiceName), Duration, {STATUS}, StatusMessage, SpanAttributes,
                   arrayMap(t -> toInt64(toUnixTimestamp64Nano(t)), Events.Timestamp), Events.Name, Events.Attributes,
                   {session()}, ResourceAttributes
            FROM otel_traces WHERE TraceId = {params.add(trace_id, "String")} ORDER BY {NANOS}, SpanId
            """,
            params,
        )
        return [
            SpanRow(
                timestamp=int(at),
                span_id=str(span),
                parent_span_id=str(parent),
                name=str(name),
                kind=str(kind),
                scope=str(scope_name),
                service=str(service),
                duration=int(duration),
                status=str(status),
                status_message=str(message),
                attributes=dict(attributes),
                events=_events(times, event_names, event_attributes),
                session_id=str(sid),
                resource=dict(resource),
            )
            for (
                at,
                span,
                parent,
                name,
                kind,
                scope_name,
                service,
                duration,
                status,
                message,
                attributes,
                times,
                event_names,
                event_attributes,
                sid,
                resource,
            ) in rows
        ]

    def sessions(self, scope: Scope, limit: int) -> list[SessionRow]:
        """Sessions with calls in `scope`, the latest ending first (then by id)."""
        params = _Params()
        where = self._calls_where(scope, params)
        user = self._actor("user", params)  # each call's own user, else its process's
        figures = self._columns()
        limited = params.add(row_limit(limit), "UInt64")
        # Which sessions end last first (one figure per session), then every figure of those only.
        latest = (
            f"SELECT sid FROM (SELECT {figures.session} AS sid, max({NANOS} + Duration) AS last FROM otel_traces "
            f"WHERE {where} AND sid != '' GROUP BY sid ORDER BY last DESC, sid LIMIT {limited})"
        )
        rows = self.run(
            f"""
            SELECT {figures.session} AS sid, toInt64(min({NANOS})), toInt64(max({NANOS} + Duration)) AS last, count(),
                   countIf({FAILED}), maxIf({user.value}, {user.present}), countIf({user.present}),
                   max(toString(ServiceName)), max({figures.environment})
            FROM otel_traces WHERE {where} AND sid IN ({latest})
            GROUP BY sid ORDER BY last DESC, sid LIMIT {limited}
            """,
            params,
        )
        return [
            SessionRow(
                str(sid), int(first), int(last), int(n), int(errors), str(u) if int(has) else None, str(s), str(e)
            )
            for sid, first, last, n, errors, u, has, s, e in rows
        ]

    def event_counts(self, session_ids: Sequence[str]) -> dict[str, int]:
        """Stored events per session id (ids without events absent)."""
        if not session_ids or not self.has_events():
            return {}
        params = _Params()
        sid = session("LogAttributes")
        wanted = self._in(sid, list(session_ids), params)
        rows = self.run(f"SELECT {sid} AS sid, count() FROM otel_logs WHERE {wanted} GROUP BY sid", params)
        return {str(s): int(n) for s, n in rows}

    def events(self, scope: Scope, limit: int | None = None) -> Iterator[EventRow]:
        """Events in `scope` (time, service, environment and session filters), oldest first (then by id)."""
        if not self.has_events():
            return
        params = _Params()
        where = self._calls_where(scope, params, events=True)
        event_id = "multiIf(" + ", ".join(f"LogAttributes['{k}'] != '', LogAttributes['{k}']" for k in EVENT_ID_KEYS)
        event_id += ", lower(hex(cityHash64(Timestamp, TraceId, SpanId, Body, LogAttributes))))"
        limit_sql = "" if limit is None else f" LIMIT {params.add(row_limit(limit), 'UInt64')}"
        rows = self.run(
            f"""
            SELECT toInt64({NANOS}), {event_id} AS id, {self._event_name()}, toString(ServiceName),
                   {session("LogAttributes")}, toString(SeverityText), Body, LogAttributes, TraceId
            FROM otel_logs WHERE {where} ORDER BY {NANOS}, id{limit_sql}
            """,
            params,
        )
        for at, eid, name, service, sid, severity, body, attributes, trace in rows:
            yield EventRow(
                int(at),
                str(eid),
                str(name),
                str(service),
                str(sid),
                str(severity),
                str(body),
                dict(attributes),
                str(trace),
            )


def _events(times: Sequence[Any], names: Sequence[Any], attributes: Sequence[Any]) -> list[dict[str, Any]]:
    return [
        {"Name": str(name), "Timestamp": int(at), "Attributes": dict(attrs)}
        for at, name, attrs in zip(times, names, attributes, strict=True)
    ]


def _typed_key(group: Literal["function"] | Buckets | None, key: Any) -> Any:
    return None if group is None else (str(key) if group == "function" else int(key))


def _merged(
    key: Any, rolled: Sequence[rollups.RollupRow], raw: Sequence[tuple[Aggregate, dict[int, int]]]
) -> Aggregate:
    """The figures of rollup rows and raw rows together; percentiles from their merged sketches when
    rollups take part, exact (as read) otherwise."""
    if not rolled and len(raw) == 1:
        return replace(raw[0][0], key=key)
    sketch = Sketch()
    kept, calls, errors, total = 0, 0.0, 0.0, 0.0
    low, high = None, None
    parts = [
        (r.kept, r.calls, r.errors, float(r.duration_sum), r.duration_min, r.duration_max, r.sketch) for r in rolled
    ]
    parts += [(a.kept, a.calls, a.errors, a.duration_sum, a.duration_min, a.duration_max, counts) for a, counts in raw]
    for part_kept, part_calls, part_errors, part_total, part_low, part_high, counts in parts:
        kept, calls, errors, total = kept + part_kept, calls + part_calls, errors + part_errors, total + part_total
        low = part_low if low is None else min(low, part_low)
        high = part_high if high is None else max(high, part_high)
        sketch.merge(Sketch(counts))
    low, high = low or 0, high or 0
    p50, p95, p99 = (sketch.quantile(percent, low, high) for percent in PERCENTS)
    return Aggregate(key, kept, calls, errors, total, low, high, p50, p95, p99)
