"""The store interface (`Reader`) over the embedded SQLite store.

Maps are JSON text (`json_extract(ResourceAttributes, '$."session.id"')`); derived columns
(`SessionId`, `SampleRate`, `Environment`) are used when the file has them. SQLite has no
percentile or funnel function: rows are read once, ordered, and ranked or walked here.
"""

from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, Literal

import orjson
from sdk_telemetry_exporters.attributes import DEPLOYMENT_ENVIRONMENT, ERROR_PROPAGATED, ERROR_TYPE, INVOCATION_SCOPE

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
from sdk_telemetry.store.rollups import TIERS, combine, raw_complete_since, read_rollups

HOUR_NS = 3600 * 1_000_000_000
#: Resource attributes that name the actor an analysis counts.
ENTITY_ATTRIBUTES = {"session": "session.id", "user": "enduser.id", "service": "service.name"}
SAMPLE_RATE_ATTRIBUTE = "sdk_telemetry.sample_rate"
#: Ranges covering less than this share of the stored period read through the Timestamp index.
NARROW_SHARE = 0.25
PERCENTILES = (50, 95, 99)

_CALL_COLUMNS = (
    "rowid, Timestamp, SpanName, Duration, StatusCode, StatusMessage, TraceId, SpanId, ParentSpanId, "
    "ServiceName, {environment}, {session}, {user}, "
    f"json_extract(SpanAttributes, '$.\"{ERROR_TYPE}\"'), {{rate}}"
)


def _json(text: str | None) -> Any:
    try:
        return orjson.loads(text or "{}")
    except orjson.JSONDecodeError:
        return {}


def nearest_ranks(durations: list[int]) -> tuple[int, int, int]:
    """p50, p95 and p99 of sorted `durations` by nearest rank (the ceil(n p)-th smallest)."""
    n = len(durations)
    p50, p95, p99 = (durations[max(1, -(-n * p // 100)) - 1] for p in PERCENTILES)
    return p50, p95, p99


def window_funnel_level(events: list[tuple[int, str]], steps: Sequence[str], window: int) -> int:
    """How many steps one actor completed in order within `window` ns (ClickHouse's windowFunnel)."""
    starts: list[int | None] = [None] * len(steps)
    best = 0
    for timestamp, name in events:
        # Walk the steps backwards so that one event never advances two levels at once.
        for index in range(len(steps) - 1, -1, -1):
            if steps[index] != name:
                continue
            if index == 0:
                starts[0] = timestamp
            else:
                start = starts[index - 1]
                if start is not None and timestamp - start <= window:
                    starts[index] = start
            if starts[index] is not None:
                best = max(best, index + 1)
    return best


def _bucket_index(buckets: Buckets) -> str:
    """SQL for the index of the bucket holding `Timestamp`, rounded down before the origin too
    (SQLite's integer division rounds toward zero)."""
    offset, step = f"(Timestamp - {int(buckets.origin)})", int(buckets.step)
    return f"({offset} / {step} - ({offset} % {step} < 0))"


def _order(key: Any) -> Any:
    """Group keys in key order (None, the overall group's key, alone)."""
    return (0, "") if key is None else (1, key)


def _figures(key: Any, durations: list[int], counts: list[float]) -> Aggregate:
    """The aggregate of one group's durations and scaled (calls, errors); sorts `durations`."""
    durations.sort()
    p50, p95, p99 = nearest_ranks(durations)
    return Aggregate(
        key, len(durations), counts[0], counts[1], float(sum(durations)), durations[0], durations[-1], p50, p95, p99
    )


class SQLiteReader:
    """`Reader` over an open connection to the embedded store."""

    engine = "sqlite"

    def __init__(self, connection: sqlite3.Connection, path: Path | None = None) -> None:
        self.connection = connection
        self.path = path
        self.location = str(path) if path else ":memory:"
        self.trace_columns = frozenset(row[1] for row in connection.execute("PRAGMA table_info(otel_traces)"))
        logs = connection.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'otel_logs'").fetchone()
        log_columns = {row[1] for row in connection.execute("PRAGMA table_info(otel_logs)")} if logs else set()
        self._has_logs = bool(logs) and {"EventName", "Timestamp"} <= log_columns
        self._log_session = "SessionId" in log_columns
        self._rollups = bool(
            connection.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'otel_traces_complete_since'"
            ).fetchone()
        )
        self._summary = bool(
            connection.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'otel_traces_summary'"
            ).fetchone()
        )

    # SQL pieces.
    def _environment(self, alias: str = "", table: str = "otel_traces") -> str:
        if table == "otel_traces" and "Environment" in self.trace_columns:
            return f"{alias}Environment"
        return f"COALESCE(json_extract({alias}ResourceAttributes, '$.\"{DEPLOYMENT_ENVIRONMENT}\"'), '')"

    def _session(self, alias: str = "", table: str = "otel_traces") -> str:
        if (table == "otel_traces" and "SessionId" in self.trace_columns) or (
            table == "otel_logs" and self._log_session
        ):
            return f"{alias}SessionId"
        return f"COALESCE(json_extract({alias}ResourceAttributes, '$.\"session.id\"'), '')"

    def _weight(self, alias: str = "") -> str:
        """The SQL weight of one stored span: 1 / its sample rate (1 when it was not sampled)."""
        if "SampleRate" in self.trace_columns:
            rate = f"{alias}SampleRate"
        else:
            rate = f"json_extract({alias}SpanAttributes, '$.\"{SAMPLE_RATE_ATTRIBUTE}\"')"
        return f"(1.0 / COALESCE(NULLIF({rate}, 0), 1.0))"

    def _entity(self, by: str, table: str = "otel_traces", alias: str = "") -> tuple[str, list[str]]:
        """The SQL expression (and parameters) for the actor `by` names (see `Reader`)."""
        key = ENTITY_ATTRIBUTES.get(by, by)
        if key == "session.id":
            return f"NULLIF({self._session(alias, table)}, '')", []
        if key == "service.name":
            return f"NULLIF({alias}ServiceName, '')", []
        if by == "user":  # the call's or event's own user (`sdk_telemetry.user(...)`), else the process's
            own = "LogAttributes" if table == "otel_logs" else "SpanAttributes"
            path = f'$."{key}"'
            return f"COALESCE(json_extract({alias}{own}, ?), json_extract({alias}ResourceAttributes, ?))", [path, path]
        return f"json_extract({alias}ResourceAttributes, ?)", [f'$."{key}"']

    def _time(self, scope: Scope, column: str) -> tuple[list[str], list[Any]]:
        parts, params = [], []
        if scope.start is not None:
            parts.append(f"{column} >= ?")
            params.append(scope.start)
        if scope.end is not None:
            parts.append(f"{column} < ?")
            params.append(scope.end)
        return parts, params

    def _narrow(self, scope: Scope) -> bool:
        """Whether `scope`'s range covers a small part of the stored period (then the Timestamp index
        is faster than a scan)."""
        if scope.start is None and scope.end is None:
            return False
        low, high = self.edge(Scope()), self.edge(Scope(), last=True)
        if low is None or high is None or high <= low:
            return False
        start = max(low, scope.start if scope.start is not None else low)
        end = min(high, scope.end if scope.end is not None else high)
        return (end - start) < NARROW_SHARE * (high - low)

    def _calls(self, scope: Scope, alias: str = "", hint: bool = True) -> tuple[str, list[Any]]:
        """The SQL condition (and parameters) for the calls in `scope`.

        A range covering a small part of the stored data reads through the Timestamp index; a
        wider one scans the table, which is faster than an index lookup per row. Names are
        written `+SpanName` so that SQLite does not pick the name index (a lookup per row).
        """
        column = f"{alias}Timestamp" if not hint or self._narrow(scope) else f"+{alias}Timestamp"
        parts, params = self._time(scope, column)
        parts.insert(0, f"+{alias}ScopeName = ?")
        params.insert(0, INVOCATION_SCOPE)
        if scope.service is not None:
            parts.append(f"{alias}ServiceName = ?")
            params.append(scope.service)
        if scope.environment is not None:
            parts.append(f"{self._environment(alias)} = ?")
            params.append(scope.environment)
        if scope.function is not None:
            parts.append(f"+{alias}SpanName = ?")
            params.append(scope.function)
        if scope.functions is not None:
            parts.append(f"+{alias}SpanName IN ({', '.join('?' * len(scope.functions))})")
            params.extend(scope.functions)
        if scope.session is not None:
            parts.append(f"{self._session(alias)} = ?")
            params.append(scope.session)
        if scope.errors_only or scope.error_type is not None:
            parts.append(f"{alias}StatusCode = 'Error'")
        if scope.error_type is not None:
            parts.append(f"COALESCE(json_extract({alias}SpanAttributes, '$.\"{ERROR_TYPE}\"'), 'Error') = ?")
            params.append(scope.error_type)
        return " AND ".join(parts), params

    def _events_where(self, scope: Scope, alias: str = "") -> tuple[str, list[Any]]:
        parts, params = self._time(scope, f"{alias}Timestamp")
        if scope.service is not None:
            parts.append(f"{alias}ServiceName = ?")
            params.append(scope.service)
        if scope.environment is not None:
            parts.append(f"{self._environment(alias, 'otel_logs')} = ?")
            params.append(scope.environment)
        if scope.session is not None:
            parts.append(f"{self._session(alias, 'otel_logs')} = ?")
            params.append(scope.session)
        return " AND ".join(parts) or "1", params

    # What is stored.
    def snapshot(self) -> AbstractContextManager[None]:
        """Nothing to share: what is stored is a cheap question on SQLite."""
        return nullcontext()

    def has_events(self) -> bool:
        """Whether the store keeps events (`otel_logs`)."""
        return self._has_logs

    def recorded_functions(self) -> list[str]:
        """Every function with a stored call, ever, sorted."""
        table = (
            "otel_traces_summary WHERE ScopeName = ? AND Kept > 0"
            if self._summary
            else "otel_traces WHERE ScopeName = ?"
        )
        rows = self.connection.execute(f"SELECT DISTINCT SpanName FROM {table}", [INVOCATION_SCOPE])
        return sorted(row[0] for row in rows)

    def recorded_events(self) -> list[str]:
        """Every stored event name, sorted."""
        if not self._has_logs:
            return []
        found = self.connection.execute("SELECT DISTINCT EventName FROM otel_logs WHERE EventName != ''")
        return sorted(row[0] for row in found)

    def dimensions(self) -> dict[str, list[str]]:
        """Every service and deployment environment with stored calls, sorted."""
        if self._summary:
            table, environment = "otel_traces_summary WHERE ScopeName = ? AND Kept > 0", "Environment"
        else:
            table, environment = "otel_traces WHERE ScopeName = ?", self._environment()
        pairs = self.connection.execute(
            f"SELECT DISTINCT ServiceName, {environment} FROM {table}", [INVOCATION_SCOPE]
        ).fetchall()
        return {
            "services": sorted({service for service, _ in pairs if service}),
            "environments": sorted({env for _, env in pairs if env}),
        }

    def stored_spans(self, calls_only: bool = False) -> int:
        """How many spans (or calls) are stored."""
        where = " WHERE ScopeName = ?" if calls_only else ""
        (count,) = self.connection.execute(
            f"SELECT COUNT(*) FROM otel_traces{where}", [INVOCATION_SCOPE] if calls_only else []
        ).fetchone()
        return int(count)

    def edge(self, scope: Scope, last: bool = False) -> int | None:
        """The first (or last) call's Timestamp in `scope`, through the Timestamp index."""
        condition, params = self._calls(scope, hint=False)
        direction = "DESC" if last else "ASC"
        row = self.connection.execute(
            f"SELECT Timestamp FROM otel_traces WHERE {condition} ORDER BY Timestamp {direction} LIMIT 1", params
        ).fetchone()
        return None if row is None else int(row[0])

    # Figures.
    def aggregate(self, scope: Scope, group: Literal["function"] | Buckets | None = None) -> Aggregation:
        """Figures per function, per bucket or overall: from raw rows where they hold every call, and
        from the rollups before that (see `_rollup_cut`)."""
        cut = self._rollup_cut(scope, group)
        if cut is None:
            groups = self._raw_groups(scope, group)
            rows = [_figures(key, *groups[key]) for key in sorted(groups, key=_order)]
            total = None
            if isinstance(group, Buckets) and groups:
                everything = [duration for durations, _ in groups.values() for duration in durations]
                counts = [sum(t[0] for _, t in groups.values()), sum(t[1] for _, t in groups.values())]
                total = _figures(None, everything, counts)
            return Aggregation(rows, total=total)
        rolled, origins = read_rollups(self.connection, scope, group, cut)
        raw_scope = scope.narrowed(start=cut) if scope.end is None or cut < scope.end else None
        groups = self._raw_groups(raw_scope, group) if raw_scope is not None else {}
        # The exact figures copy their durations: `_figures` sorts them, `combine` may ask for them again.
        raw = [_figures(key, list(durations), counts) for key, (durations, counts) in groups.items()]
        rows = combine(rolled, sorted(raw, key=lambda row: _order(row.key)), lambda key: groups[key][0])
        used: list[Origin] = [*origins, "raw"] if groups or not origins else origins
        total = None
        if isinstance(group, Buckets) and rows:  # the overall figures from the same raw rows and the rollups
            everything = [duration for durations, _ in groups.values() for duration in durations]
            counts = [sum(t[0] for _, t in groups.values()), sum(t[1] for _, t in groups.values())]
            whole = [_figures(None, list(everything), counts)] if everything else []
            overall, more = read_rollups(self.connection, scope, None, cut)
            total = next(iter(combine(overall, whole, lambda key: everything)), None)
            used += [origin for origin in more if origin not in used]
        return Aggregation(rows, used, total)

    def _rollup_cut(self, scope: Scope, group: Literal["function"] | Buckets | None) -> int | None:
        """Where raw rows take over from rollups for `scope` (None: raw rows answer it all): the hour
        from which retention left every raw row (`read_rollups` plans its tiers so that no rollup
        bucket reaches past it). Sessions and errors are not in rollups: raw rows only, and so are
        time buckets finer than an hour."""
        if scope.session is not None or scope.errors_only or scope.error_type is not None or not self._rollups:
            return None
        if isinstance(group, Buckets) and group.step % HOUR_NS:
            return None
        since = raw_complete_since(self.connection)
        if since is None or (scope.start is not None and scope.start >= since):
            return None
        return since

    def _raw_groups(
        self, scope: Scope, group: Literal["function"] | Buckets | None
    ) -> dict[Any, tuple[list[int], list[float]]]:
        """Per group key: the stored durations and the scaled (calls, errors), from one read."""
        if group is None:
            key = "NULL"
        elif group == "function":
            key = "SpanName"
        else:
            key = _bucket_index(group)
        condition, params = self._calls(scope)
        groups: dict[Any, tuple[list[int], list[float]]] = {}
        cursor = self.connection.execute(
            f"SELECT {key}, Duration, StatusCode = 'Error', {self._weight()} FROM otel_traces WHERE {condition}",
            params,
        )
        for bucket, duration, failed, weight in cursor:
            found = groups.get(bucket)
            if found is None:
                found = groups[bucket] = ([], [0.0, 0.0])
            found[0].append(duration)
            totals = found[1]
            totals[0] += weight
            if failed:
                totals[1] += weight
        return groups

    def rollup_tiers(self) -> list[TierRow]:
        """What each rollup tier holds, finest first."""
        if not self._rollups:
            return []
        found = {
            tier: TierRow(tier, int(rows), first, last, int(kept or 0), float(calls or 0.0))
            for tier, rows, first, last, kept, calls in self.connection.execute(
                "SELECT Tier, COUNT(*), MIN(BucketStart), MAX(BucketStart), SUM(Kept), SUM(Calls) "
                "FROM otel_traces_rollups GROUP BY Tier"
            )
        }
        return [found.get(tier, TierRow(tier, 0, None, None, 0, 0.0)) for tier in TIERS]

    def raw_complete_since(self) -> int | None:
        """From when (ns) raw rows hold every stored call (retention's last trim)."""
        return raw_complete_since(self.connection) if self._rollups else None

    def error_groups(self, scope: Scope, limit: int) -> list[ErrorGroupRow]:
        """Failed calls by (error type, function), the most frequent first."""
        condition, params = self._calls(scope)
        rows = self.connection.execute(
            f"""
            SELECT COALESCE(json_extract(SpanAttributes, '$."{ERROR_TYPE}"'), 'Error') AS type, SpanName,
                   SUM({self._weight()}), MAX(StatusMessage), MAX(Timestamp)
            FROM otel_traces WHERE {condition} AND StatusCode = 'Error'
            GROUP BY type, SpanName ORDER BY 3 DESC, type, SpanName LIMIT ?
            """,
            [*params, row_limit(limit)],
        ).fetchall()
        return [
            ErrorGroupRow(kind, name, float(count), message, int(last)) for kind, name, count, message, last in rows
        ]

    def active_actors(self, scope: Scope, by: str) -> int:
        """Distinct actors with calls in `scope`."""
        condition, params = self._calls(scope)
        actor, actor_params = self._entity(by)
        (count,) = self.connection.execute(
            f"SELECT COUNT(DISTINCT {actor}) FROM otel_traces WHERE {condition}", [*actor_params, *params]
        ).fetchone()
        return int(count)

    # Who did what.
    def funnel(self, scope: Scope, steps: Sequence[str], window: int, by: str) -> list[int]:
        """Actors reaching each step, walked here over the occurrences in actor and time order."""
        names = sorted(set(steps))
        marks = ", ".join("?" * len(names))
        condition, params = self._calls(scope)
        actor, actor_params = self._entity(by)
        queries = [
            f"SELECT {actor} AS actor, Timestamp, SpanName FROM otel_traces "
            f"WHERE +SpanName IN ({marks}) AND {condition} AND actor IS NOT NULL"
        ]
        values: list[Any] = [*actor_params, *names, *params]
        if self._has_logs:
            log_condition, log_params = self._events_where(scope)
            log_actor, log_actor_params = self._entity(by, table="otel_logs")
            queries.append(
                f"SELECT {log_actor} AS actor, Timestamp, EventName FROM otel_logs "
                f"WHERE EventName IN ({marks}) AND {log_condition} AND actor IS NOT NULL"
            )
            values += [*log_actor_params, *names, *log_params]
        sql = " UNION ALL ".join(queries) + " ORDER BY actor, Timestamp"
        reached = [0] * len(steps)
        current: Any = object()
        events: list[tuple[int, str]] = []

        def close() -> None:
            for index in range(window_funnel_level(events, steps, window)):
                reached[index] += 1

        for who, timestamp, name in self.connection.execute(sql, values):
            if who != current:
                if events:
                    close()
                current, events = who, []
            events.append((timestamp, name))
        if events:
            close()
        return reached

    def paths(
        self, scope: Scope, by: str, top_level: bool, max_steps: int | None = None
    ) -> list[tuple[tuple[str, ...], int]]:
        """Each distinct folded path (cut at `max_steps`) and how many actors took it."""
        whole = self._actor_paths(scope, by, top_level)
        return sorted(Counter(tuple(path[:max_steps]) for path in whole).items())

    def path_summary(self, scope: Scope, by: str, top_level: bool, max_steps: int, limit: int) -> PathSummary:
        """What `journeys` counts of the actors' paths (see `PathSummary`)."""
        whole = Counter(tuple(path) for path in self._actor_paths(scope, by, top_level))
        return PathSummary.of(whole.items(), max_steps, limit)

    def _actor_paths(self, scope: Scope, by: str, top_level: bool) -> Iterable[list[str]]:
        """Each actor's calls (with `top_level`, those whose parent is not a stored call) in
        (Timestamp, SpanId) order, consecutive repeats of a function folded into one step."""
        condition, params = self._calls(scope, alias="t.")
        actor, actor_params = self._entity(by, alias="t.")
        outer = (
            "LEFT JOIN otel_traces p ON p.TraceId = t.TraceId AND p.SpanId = t.ParentSpanId "
            "AND p.ScopeName = t.ScopeName"
            if top_level
            else ""
        )
        rows = self.connection.execute(
            f"""
            SELECT {actor} AS actor, t.SpanName FROM otel_traces t {outer}
            WHERE {condition} AND actor IS NOT NULL {"AND p.SpanId IS NULL" if top_level else ""}
            ORDER BY actor, t.Timestamp, t.SpanId
            """,
            [*actor_params, *params],
        )
        paths: dict[Any, list[str]] = {}
        for who, name in rows:
            path = paths.setdefault(who, [])
            if not path or path[-1] != name:
                path.append(name)
        return paths.values()

    def cohorts(self, scope: Scope, by: str, period: Buckets, periods: int) -> dict[int, list[int]]:
        """Per cohort, actors active 0 .. `periods` - 1 periods after it."""
        condition, params = self._calls(scope)
        actor, actor_params = self._entity(by)
        # Distinct (actor, period) pairs in SQL; cohorts in one pass here (SQLite joins a CTE slowly).
        pairs = self.connection.execute(
            f"""
            SELECT DISTINCT {actor} AS actor, {_bucket_index(period)} AS period
            FROM otel_traces WHERE {condition} AND actor IS NOT NULL
            ORDER BY actor, period
            """,
            [*actor_params, *params],
        )
        table: dict[int, list[int]] = defaultdict(lambda: [0] * periods)
        current: Any = object()
        cohort = 0
        for who, index in pairs:
            if who != current:  # the first period of an actor is its cohort
                current, cohort = who, index
            age = index - cohort
            if age < periods:
                table[cohort][age] += 1
        return dict(table)

    def usage(self, scope: Scope, by: str, period: Buckets) -> Usage:
        """Distinct actors per period and per function, from the distinct (function, period, actor) triples."""
        condition, params = self._calls(scope)
        actor, actor_params = self._entity(by)
        triples = self.connection.execute(
            f"SELECT DISTINCT SpanName, {_bucket_index(period)}, {actor} AS actor "
            f"FROM otel_traces WHERE {condition} AND actor IS NOT NULL",
            [*actor_params, *params],
        )
        active: dict[int, set[Any]] = defaultdict(set)
        everyone: set[Any] = set()
        using: dict[str, dict[int, set[Any]]] = defaultdict(lambda: defaultdict(set))
        users: dict[str, set[Any]] = defaultdict(set)
        for name, index, who in triples:
            active[index].add(who)
            everyone.add(who)
            using[name][index].add(who)
            users[name].add(who)
        return Usage(
            active={index: len(members) for index, members in active.items()},
            everyone=len(everyone),
            using={name: {index: len(members) for index, members in per.items()} for name, per in using.items()},
            users={name: len(members) for name, members in users.items()},
        )

    # Rows.
    def _call_columns(self) -> str:
        return _CALL_COLUMNS.format(
            environment=self._environment(), session=self._session(), user=self._user(), rate=f"1.0 / {self._weight()}"
        )

    @staticmethod
    def _user() -> str:
        """A call's user: its own `enduser.id`, else its process's."""
        return (
            "COALESCE(json_extract(SpanAttributes, '$.\"enduser.id\"'), "
            "json_extract(ResourceAttributes, '$.\"enduser.id\"'))"
        )

    def calls(
        self,
        scope: Scope,
        order: Literal["newest", "oldest", "stored"] = "newest",
        limit: int | None = None,
        after: int | None = None,
        with_events: bool = False,
    ) -> Iterator[CallRow]:
        """Calls in `scope`, in the order asked for."""
        condition, params = self._calls(scope)
        columns = self._call_columns()
        if with_events:
            columns += f", Events, json_extract(SpanAttributes, '$.\"{ERROR_PROPAGATED}\"')"
        limited = " LIMIT ?" if limit is not None else ""
        tail = [row_limit(limit)] if limit is not None else []
        if order == "stored":
            if after is None:
                sql = f"SELECT {columns} FROM otel_traces WHERE {condition} ORDER BY rowid DESC{limited}"
                rows: Any = self.connection.execute(sql, [*params, *tail]).fetchall()[::-1]
            else:
                sql = f"SELECT {columns} FROM otel_traces WHERE rowid > ? AND {condition} ORDER BY rowid{limited}"
                rows = self.connection.execute(sql, [after, *params, *tail])
        else:
            direction = "DESC" if order == "newest" else "ASC"
            sql = f"SELECT {columns} FROM otel_traces WHERE {condition} ORDER BY Timestamp {direction}, SpanId{limited}"
            rows = self.connection.execute(sql, [*params, *tail])
        for row in rows:
            events: list[dict[str, Any]] = []
            propagated = False
            if with_events:
                found = _json(row[15])
                events = [event for event in found if isinstance(event, dict)] if isinstance(found, list) else []
                propagated = bool(row[16])
            yield CallRow(
                int(row[0]),
                int(row[1]),
                row[2],
                int(row[3]),
                row[4],
                row[5],
                row[6],
                row[7],
                row[8],
                row[9],
                row[10] or "",
                row[11] or "",
                None if row[12] is None else str(row[12]),
                None if row[13] is None else str(row[13]),
                float(row[14]),
                events,
                propagated,
            )

    def last_cursor(self) -> int:
        """The rowid of the last span stored (0 when none)."""
        (top,) = self.connection.execute("SELECT COALESCE(MAX(rowid), 0) FROM otel_traces").fetchone()
        return int(top)

    def trace_ids(self, prefix: str, limit: int = 2) -> list[str]:
        """Trace ids starting with `prefix`, through the (TraceId, SpanId) index."""
        rows = self.connection.execute(
            "SELECT DISTINCT TraceId FROM otel_traces WHERE TraceId >= ? AND TraceId < ? LIMIT ?",
            [prefix, prefix + "g", row_limit(limit)],
        )
        return [str(row[0]) for row in rows]

    def trace_spans(self, trace_id: str) -> list[SpanRow]:
        """Every stored span of one trace, in start order."""
        rows = self.connection.execute(
            f"SELECT Timestamp, SpanId, ParentSpanId, SpanName, SpanKind, ScopeName, ServiceName, Duration, "
            f"StatusCode, StatusMessage, SpanAttributes, Events, {self._session()}, ResourceAttributes "
            "FROM otel_traces WHERE TraceId = ? ORDER BY Timestamp, SpanId",
            [trace_id],
        )
        spans = []
        for (
            timestamp,
            span,
            parent,
            name,
            kind,
            scope,
            service,
            duration,
            status,
            message,
            attrs,
            events,
            sid,
            res,
        ) in rows:
            found = _json(events)
            spans.append(
                SpanRow(
                    int(timestamp),
                    span,
                    parent,
                    name,
                    kind,
                    scope,
                    service,
                    int(duration),
                    status,
                    message,
                    _json(attrs),
                    [event for event in found if isinstance(event, dict)] if isinstance(found, list) else [],
                    sid or "",
                    _json(res),
                )
            )
        return spans

    def sessions(self, scope: Scope, limit: int) -> list[SessionRow]:
        """Sessions with calls in `scope`, the latest ending first."""
        condition, params = self._calls(scope)
        session, user = self._session(), self._user()
        rows = self.connection.execute(
            f"""SELECT {session}, MIN(Timestamp), MAX(Timestamp + Duration), COUNT(*),
                       SUM(StatusCode = 'Error'), MAX({user}),
                       MAX(ServiceName), MAX({self._environment()})
                FROM otel_traces WHERE {condition} AND {session} != ''
                GROUP BY 1 ORDER BY 3 DESC, 1 LIMIT ?""",
            [*params, row_limit(limit)],
        )
        return [
            SessionRow(
                sid,
                int(first),
                int(last),
                int(calls),
                int(errors),
                None if user is None else str(user),
                service or "",
                env or "",
            )
            for sid, first, last, calls, errors, user, service, env in rows
        ]

    def event_counts(self, session_ids: Sequence[str]) -> dict[str, int]:
        """Stored events per session id."""
        if not self._has_logs or not session_ids:
            return {}
        marks = ", ".join("?" * len(session_ids))
        session = self._session(table="otel_logs")
        rows = self.connection.execute(
            f"SELECT {session}, COUNT(*) FROM otel_logs WHERE {session} IN ({marks}) GROUP BY 1", list(session_ids)
        )
        return {str(sid): int(count) for sid, count in rows}

    def events(self, scope: Scope, limit: int | None = None) -> Iterator[EventRow]:
        """Events in `scope`, oldest first."""
        if not self._has_logs:
            return
        condition, params = self._events_where(scope)
        limited = " LIMIT ?" if limit is not None else ""
        rows = self.connection.execute(
            f"SELECT Timestamp, EventId, EventName, ServiceName, {self._session(table='otel_logs')}, SeverityText, "
            f"Body, LogAttributes, TraceId FROM otel_logs WHERE {condition} ORDER BY Timestamp, EventId{limited}",
            [*params, *([row_limit(limit)] if limit is not None else [])],
        )
        for timestamp, event_id, name, service, sid, severity, body, attributes, trace_id in rows:
            yield EventRow(
                int(timestamp), event_id, name, service, sid or "", severity, body, _json(attributes), trace_id
            )
