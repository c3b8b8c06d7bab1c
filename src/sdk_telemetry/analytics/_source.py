"""Where analyses read from: the embedded store, and the SQL expressions for who did what.

Maps are JSON text in SQLite (`json_extract(ResourceAttributes, '$."session.id"')`); ClickHouse
reads the same keys as `ResourceAttributes['session.id']`. When the store keeps a derived column
(`SessionId`, `SampleRate`), it is used instead of parsing JSON on every row.
"""

from __future__ import annotations

import difflib
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sdk_telemetry_exporters.attributes import DEPLOYMENT_ENVIRONMENT, INVOCATION_SCOPE

from sdk_telemetry.analytics._range import AnalyticsError, TimeRange
from sdk_telemetry.store import open_read_only, store_path

#: Resource attributes that name the actor an analysis counts.
ENTITY_ATTRIBUTES = {"session": "session.id", "user": "enduser.id", "service": "service.name"}
SAMPLE_RATE_ATTRIBUTE = "sdk_telemetry.sample_rate"
#: Ranges covering less than this share of the stored period read through the Timestamp index.
NARROW_SHARE = 0.25


@dataclass(frozen=True)
class Source:
    """An open store and what its schema offers; with `service` or `environment`, every analysis
    reads only that service's (or deployment environment's) calls and events."""

    connection: sqlite3.Connection
    trace_columns: frozenset[str]
    has_logs: bool
    path: Path | None = None
    service: str | None = None
    environment: str | None = None

    def filtered(self, service: str | None = None, environment: str | None = None) -> Source:
        """This store, narrowed to one service and/or environment (None or empty: every one)."""
        return replace(self, service=service or None, environment=environment or None)

    def scope(self, table: str = "otel_traces", alias: str = "") -> tuple[str, list[Any]]:
        """The SQL condition (`1` without filters) and parameters of the service and environment filters."""
        parts: list[str] = []
        params: list[Any] = []
        if self.service is not None:
            parts.append(f"{alias}ServiceName = ?")
            params.append(self.service)
        if self.environment is not None:
            if table == "otel_traces" and "Environment" in self.trace_columns:
                parts.append(f"{alias}Environment = ?")
            else:
                parts.append(f"json_extract({alias}ResourceAttributes, '$.\"{DEPLOYMENT_ENVIRONMENT}\"') = ?")
            params.append(self.environment)
        return " AND ".join(parts) or "1", params

    def dimensions(self) -> dict[str, list[str]]:
        """Every service and deployment environment with stored calls (whatever the filters), sorted."""
        summary = self.connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'otel_traces_summary'"
        ).fetchone()
        table = "otel_traces_summary WHERE ScopeName = ? AND Kept > 0" if summary else "otel_traces WHERE ScopeName = ?"
        environment = "Environment" if summary or "Environment" in self.trace_columns else "''"
        pairs = self.connection.execute(
            f"SELECT DISTINCT ServiceName, {environment} FROM {table}", [INVOCATION_SCOPE]
        ).fetchall()
        return {
            "services": sorted({service for service, _ in pairs if service}),
            "environments": sorted({env for _, env in pairs if env}),
        }

    def recorded_functions(self) -> list[str]:
        """Every function with a stored call, ever (whatever the filters and range), sorted."""
        summary = self.connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'otel_traces_summary'"
        ).fetchone()
        table = "otel_traces_summary WHERE ScopeName = ? AND Kept > 0" if summary else "otel_traces WHERE ScopeName = ?"
        return sorted(
            row[0] for row in self.connection.execute(f"SELECT DISTINCT SpanName FROM {table}", [INVOCATION_SCOPE])
        )

    def recorded_events(self) -> list[str]:
        """Every stored event name, sorted."""
        if not self.has_logs:
            return []
        found = self.connection.execute("SELECT DISTINCT EventName FROM otel_logs WHERE EventName != ''")
        return sorted(row[0] for row in found)

    def require_recorded(self, names: Sequence[str], events: bool = False) -> None:
        """Raise `AnalyticsError` naming the first of `names` never recorded as a function (or, with
        `events`, as an event either), with the closest recorded names."""
        known = self.recorded_functions() + (self.recorded_events() if events else [])
        for name in names:
            if name not in known:
                what = "function or event" if events else "function"
                raise AnalyticsError(f"no {what} {name!r} was ever recorded{did_you_mean(name, known)}")

    def events(self, time_range: TimeRange, alias: str = "") -> tuple[str, list[Any]]:
        """The SQL condition (and parameters) for `otel_logs` rows in `time_range`, within the filters."""
        condition, params = time_range.sql(f"{alias}Timestamp")
        scope, scope_params = self.scope("otel_logs", alias)
        return f"{condition} AND {scope}", [*params, *scope_params]

    @classmethod
    def of(cls, connection: sqlite3.Connection, path: Path | None = None) -> Source:
        """Inspect the schema of an open store."""
        columns = frozenset(row[1] for row in connection.execute("PRAGMA table_info(otel_traces)"))
        if not columns:
            raise AnalyticsError("the store has no otel_traces table")
        logs = connection.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'otel_logs'").fetchone()
        log_columns = {row[1] for row in connection.execute("PRAGMA table_info(otel_logs)")} if logs else set()
        return cls(connection, columns, bool(logs) and {"EventName", "Timestamp"} <= log_columns, path)

    def entity(self, by: str, table: str = "otel_traces", alias: str = "") -> tuple[str, list[str]]:
        """The SQL expression (and parameters) for the actor `by` names: `session`, `user`, `service` or
        any resource attribute key; `alias` qualifies the columns (`t.`). `user` is the span's or log
        record's `enduser.id` when it has one, else the resource's."""
        if not by or '"' in by or "\\" in by:
            raise AnalyticsError(f"by: expected 'session', 'user', 'service' or a resource attribute key, got {by!r}")
        key = ENTITY_ATTRIBUTES.get(by, by)
        if key == "session.id" and (table == "otel_logs" or "SessionId" in self.trace_columns):
            return f"NULLIF({alias}SessionId, '')", []
        if key == "service.name":
            return f"NULLIF({alias}ServiceName, '')", []
        if by == "user":  # the call's or event's own user (`sdk_telemetry.user(...)`), else the process's
            own = "LogAttributes" if table == "otel_logs" else "SpanAttributes"
            path = f'$."{key}"'
            return f"COALESCE(json_extract({alias}{own}, ?), json_extract({alias}ResourceAttributes, ?))", [path, path]
        return f"json_extract({alias}ResourceAttributes, ?)", [f'$."{key}"']

    def weight(self) -> str:
        """The SQL weight of one stored span: 1 / its sample rate (1 when it was not sampled)."""
        if "SampleRate" in self.trace_columns:
            rate = "SampleRate"
        else:
            rate = f"json_extract(SpanAttributes, '$.\"{SAMPLE_RATE_ATTRIBUTE}\"')"
        return f"(1.0 / COALESCE(NULLIF({rate}, 0), 1.0))"

    def edge(self, time_range: TimeRange, order: str) -> int | None:
        """The first (`ASC`) or last (`DESC`) invocation's Timestamp in `time_range`, through the Timestamp index."""
        condition, params = time_range.sql()
        scope, scope_params = self.scope()
        row = self.connection.execute(
            f"SELECT Timestamp FROM otel_traces WHERE +ScopeName = ? AND {condition} AND {scope} "
            f"ORDER BY Timestamp {'DESC' if order == 'DESC' else 'ASC'} LIMIT 1",
            [INVOCATION_SCOPE, *params, *scope_params],
        ).fetchone()
        return None if row is None else int(row[0])

    def bounds(self, time_range: TimeRange) -> TimeRange:
        """`time_range` with open ends closed on the first and last stored invocation."""
        if time_range.start is not None and time_range.end is not None:
            return time_range
        low = self.edge(time_range, "ASC") if time_range.start is None else time_range.start
        high = self.edge(time_range, "DESC") if time_range.end is None else time_range.end - 1
        start = time_range.start if time_range.start is not None else (low if low is not None else 0)
        end = time_range.end if time_range.end is not None else (high + 1 if high is not None else start + 1)
        return TimeRange(start, max(end, start + 1))

    def calls(self, time_range: TimeRange, alias: str = "") -> tuple[str, list[Any]]:
        """The SQL condition (and parameters) for invocation spans in `time_range`, with a plan hint.

        A range covering a small part of the stored data reads through the Timestamp index; a
        wider one scans the table, which is faster than an index lookup per row. Name filters
        are written `+SpanName` by callers so that SQLite does not pick the name index (a lookup
        per row) for either.
        """
        condition, params = time_range.sql(f"{alias}Timestamp")
        narrow = False
        if time_range.start is not None or time_range.end is not None:
            low, high = self.edge(TimeRange(), "ASC"), self.edge(TimeRange(), "DESC")
            if low is not None and high is not None and high > low:
                start = max(low, time_range.start if time_range.start is not None else low)
                end = min(high, time_range.end if time_range.end is not None else high)
                narrow = (end - start) < NARROW_SHARE * (high - low)
        if not narrow:  # a unary + keeps SQLite off the Timestamp index
            condition = condition.replace(f"{alias}Timestamp", f"+{alias}Timestamp")
        scope, scope_params = self.scope(alias=alias)
        return f"+{alias}ScopeName = ? AND {condition} AND {scope}", [INVOCATION_SCOPE, *params, *scope_params]


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`; did you mean A, B?` with the names of `known` closest to `name`, or `` when none is close."""
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    return f"; did you mean {', '.join(close)}?" if close else ""


@contextmanager
def open_source(
    path: str | os.PathLike[str] | None = None, service: str | None = None, environment: str | None = None
) -> Iterator[Source]:
    """The store at `path` (default: the configured one), opened read-only, narrowed to `service` and
    `environment` when given; raises `FileNotFoundError` when there is none, `StoreError` when the
    file is not a readable store."""
    resolved = store_path(path)
    connection = open_read_only(resolved)
    try:
        yield Source.of(connection, resolved).filtered(service, environment)
    finally:
        connection.close()
