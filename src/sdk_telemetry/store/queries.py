"""Questions asked of the embedded store: per-function performance, top errors, recorded metrics.

Counts (calls, errors) are scaled by 1 / `sdk_telemetry.sample_rate` of each kept span;
durations and percentiles are over the kept spans. Percentiles are exact, by nearest rank: the
smallest value with at least p % of the values at or below it.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, overload

from sdk_telemetry_exporters.attributes import INVOCATION_SCOPE

from sdk_telemetry.store._percentiles import Durations

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
AGGREGATIONS = ("MEAN", "SUM", "MIN", "MAX", "COUNT", "P50", "P95", "P99")
PERCENTILES = {"P50": 0.50, "P95": 0.95, "P99": 0.99}


class QueryError(ValueError):
    """A question the store cannot answer as asked; `code` names the problem (e.g. INVALID_AGGREGATION)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


TimeBound = datetime | float | int | str | None
#: Times are signed 64-bit nanoseconds in the store: from 1677-09-21 to 2262-04-11.
MAX_NS = 2**63 - 1
_OUT_OF_RANGE = "is outside the times the store can hold (1678 to 2261)"


def to_ns(value: TimeBound) -> int | None:
    """Nanoseconds since the epoch from a datetime (naive means UTC), epoch seconds (a number or
    its text), or ISO-8601 text; raises `QueryError` (INVALID_TIME_RANGE) for anything else."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            return to_ns(float(text))  # epoch seconds as text (a query string)
        except ValueError:
            pass
        try:
            value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        except ValueError:
            raise QueryError("INVALID_TIME_RANGE", f"not an ISO-8601 time: {text!r}") from None
    if isinstance(value, datetime):
        ns = datetime_ns(value)
    elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise QueryError("INVALID_TIME_RANGE", f"not a time: {value!r}")
    elif abs(value) > MAX_NS / NS_PER_S:
        raise QueryError("INVALID_TIME_RANGE", f"{value!r} {_OUT_OF_RANGE}")
    else:
        ns = int(value * NS_PER_S)
    if not -MAX_NS <= ns <= MAX_NS:
        raise QueryError("INVALID_TIME_RANGE", f"{value!r} {_OUT_OF_RANGE}")
    return ns


def time_bounds(start: TimeBound, end: TimeBound) -> tuple[int | None, int | None]:
    """`start` and `end` in nanoseconds (see `to_ns`); raises `QueryError` (INVALID_TIME_RANGE) when
    the range starts after it ends."""
    first, last = to_ns(start), to_ns(end)
    if first is not None and last is not None and first > last:
        raise QueryError("INVALID_TIME_RANGE", "the time range starts after it ends")
    return first, last


def aggregation_name(value: str) -> str:
    """`value` as one of `AGGREGATIONS` (any case); raises `QueryError` (INVALID_AGGREGATION) otherwise."""
    aggregation = str(value).upper()
    if aggregation not in AGGREGATIONS:
        raise QueryError(
            "INVALID_AGGREGATION", f"unsupported aggregation {aggregation!r}; use one of {', '.join(AGGREGATIONS)}"
        )
    return aggregation


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def datetime_ns(value: datetime) -> int:
    """Nanoseconds since the epoch, exactly (naive means UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return (value - _EPOCH) // timedelta(microseconds=1) * 1000


@overload
def iso(ns: int) -> str: ...
@overload
def iso(ns: None) -> None: ...
@overload
def iso(ns: int | None) -> str | None: ...
def iso(ns: int | None) -> str | None:
    """ISO-8601 UTC text ending in Z, to the millisecond, for nanoseconds since the epoch (None stays None)."""
    if ns is None:
        return None
    moment = datetime.fromtimestamp(ns / NS_PER_S, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Filters:
    """Which invocations a question is about; None means any. Times: see `to_ns`."""

    service: str | None = None
    environment: str | None = None
    session: str | None = None
    start: TimeBound = None
    end: TimeBound = None

    def sql(self) -> tuple[str, list[Any]]:
        """` AND ...` conditions on otel_traces (SQLite columns) and their parameters."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("ServiceName", self.service),
            ("Environment", self.environment),
            ("SessionId", self.session),
        ):
            if value is not None:
                clauses.append(f" AND {column} = ?")
                params.append(value)
        start, end = time_bounds(self.start, self.end)
        if start is not None:
            clauses.append(" AND Timestamp >= ?")
            params.append(start)
        if end is not None:
            clauses.append(" AND Timestamp <= ?")
            params.append(end)
        return "".join(clauses), params


@dataclass(frozen=True)
class FunctionStats:
    """Calls, errors and latency of one instrumented function (durations in milliseconds).

    `calls` and `errors` are scaled by the sampling rate; `kept` is the number of spans stored.
    """

    function: str
    calls: int
    errors: int
    error_rate: float
    mean_ms: float
    p50_ms: float
    p95_ms: float
    max_ms: float
    p99_ms: float = 0.0
    min_ms: float = 0.0
    kept: int = 0

    @classmethod
    def of(
        cls,
        function: str,
        calls: float,
        errors: float,
        kept: int,
        durations_ns: tuple[float, float, float, float, float, float],
    ) -> FunctionStats:
        """From scaled counts, the stored count and durations in nanoseconds: (mean, p50, p95, p99, min, max)."""
        mean, p50, p95, p99, low, high = (float(value) / NS_PER_MS for value in durations_ns)
        return cls(
            function=function,
            calls=round(calls),
            errors=round(errors),
            error_rate=errors / calls if calls else 0.0,
            mean_ms=mean,
            p50_ms=p50,
            p95_ms=p95,
            p99_ms=p99,
            min_ms=low,
            max_ms=high,
            kept=int(kept),
        )

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def function_stats(connection: sqlite3.Connection, filters: Filters | None = None) -> list[FunctionStats]:
    """Per-function figures over the stored invocations that match `filters`, busiest function first.

    Unfiltered (or by service and environment only), counts come from the summary table and
    percentiles from walking the sorted durations from their nearer end (`_percentiles`), in one
    read snapshot; other filters scan the matching rows once.
    """
    filters = filters or Filters()
    if filters.session is None and filters.start is None and filters.end is None:
        with _snapshot(connection):
            result = _stats_from_summary(connection, filters)
    else:
        result = _stats_by_scan(connection, filters)
    result.sort(key=lambda row: (-row.calls, row.function))
    return result


def _stats_from_summary(connection: sqlite3.Connection, filters: Filters) -> list[FunctionStats]:
    where, params = "", []
    for column, value in (("ServiceName", filters.service), ("Environment", filters.environment)):
        if value is not None:
            where += f" AND {column} = ?"
            params.append(value)
    rows = connection.execute(
        f"""
        SELECT SpanName, SUM(Kept), SUM(Calls), SUM(Errors), TOTAL(DurationSum)
        FROM otel_traces_summary WHERE ScopeName = ?{where} GROUP BY SpanName HAVING SUM(Kept) > 0
        """,
        [INVOCATION_SCOPE, *params],
    ).fetchall()
    durations = Durations(connection, INVOCATION_SCOPE, where, params)
    result = []
    for name, kept, calls, errors, total in rows:
        p50, p95, p99, low = (durations.ranked(name, kept, nearest_rank(kept, p)) for p in (0.50, 0.95, 0.99, 0.0))
        high = durations.ranked(name, kept, kept)
        result.append(FunctionStats.of(name, calls, errors, kept, (total / kept, p50, p95, p99, low, high)))
    return result


@contextlib.contextmanager
def _snapshot(connection: sqlite3.Connection) -> Iterator[None]:
    """One read transaction around several statements (unless one is open already)."""
    if connection.in_transaction:
        yield
        return
    connection.execute("BEGIN")
    try:
        yield
    finally:
        connection.rollback()


def _stats_by_scan(connection: sqlite3.Connection, filters: Filters) -> list[FunctionStats]:
    where, params = filters.sql()
    groups: dict[str, tuple[list[int], list[float]]] = {}
    for name, duration, weight, failed in connection.execute(
        "SELECT SpanName, Duration, 1.0 / SampleRate, StatusCode = 'Error' FROM otel_traces"
        f" WHERE ScopeName = ?{where}",
        [INVOCATION_SCOPE, *params],
    ):
        durations, sums = groups.setdefault(name, ([], [0.0, 0.0]))
        durations.append(duration)
        sums[0] += weight
        if failed:
            sums[1] += weight
    result = []
    for name, (durations, (calls, errors)) in groups.items():
        durations.sort()
        kept = len(durations)
        p50, p95, p99 = (durations[nearest_rank(kept, p) - 1] for p in (0.50, 0.95, 0.99))
        figures = (sum(durations) / kept, p50, p95, p99, durations[0], durations[-1])
        result.append(FunctionStats.of(name, calls, errors, kept, figures))
    return result


def nearest_rank(count: int, fraction: float) -> int:
    """The 1-based rank of the p-th percentile among `count` sorted values."""
    return max(1, math.ceil(round(fraction * count, 9)))


@dataclass(frozen=True)
class ErrorGroup:
    """Errors of one type: how many (scaled by sampling), in how many functions, and the latest message."""

    error_type: str
    count: int
    kept: int
    functions: int
    sample_function: str
    sample_message: str
    last_seen: str | None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def top_errors(connection: sqlite3.Connection, filters: Filters | None = None, limit: int = 10) -> list[ErrorGroup]:
    """The most frequent error types, each once per error, with the latest message as a sample.

    An exception re-raised through outer instrumented calls counts once: spans marked
    `sdk_telemetry.error.propagated` (OTLP) are left out, and spans that share an error id
    (`sdk_telemetry.error.id`: Composio payloads, whose every layer carries the same `errorId`)
    count once, as their innermost layer (the one that started last).
    """
    where, params = (filters or Filters()).sql()
    rows = connection.execute(
        f"""
        WITH occurrences AS (
            SELECT COALESCE(json_extract(SpanAttributes, '$."error.type"'), 'Error') AS ErrorType,
                   1.0 / SampleRate AS Weight, SpanName, StatusMessage, MAX(Timestamp) AS Timestamp
            FROM otel_traces
            WHERE StatusCode = 'Error' AND ScopeName = ?{where}
              AND COALESCE(json_extract(SpanAttributes, '$."sdk_telemetry.error.propagated"'), 0) = 0
            GROUP BY COALESCE(json_extract(SpanAttributes, '$."sdk_telemetry.error.id"'), rowid)
        )
        SELECT ErrorType, SUM(Weight), COUNT(*), COUNT(DISTINCT SpanName), SpanName, StatusMessage, MAX(Timestamp)
        FROM occurrences GROUP BY ErrorType ORDER BY 2 DESC, ErrorType LIMIT ?
        """,
        [INVOCATION_SCOPE, *params, limit],
    ).fetchall()
    return [
        ErrorGroup(
            error_type=str(error_type),
            count=round(count),
            kept=kept,
            functions=functions,
            sample_function=function,
            sample_message=message,
            last_seen=iso(last),
        )
        for error_type, count, kept, functions, function, message, last in rows
    ]


def get_metrics(
    connection: sqlite3.Connection,
    names: Sequence[str] | None = None,
    time_range: tuple[TimeBound, TimeBound] | None = None,
    aggregation: str = "MEAN",
) -> dict[str, Any]:
    """Recorded metric values aggregated per name, in the Dream.OS shape:
    `{"status": "success", "metrics": {name: {value, aggregation, sample_count, time_range}}}`;
    `value` is None for a sum beyond the float range (values near 1e308), never infinite.

    Raises `QueryError` (INVALID_AGGREGATION, INVALID_TIME_RANGE) for a question it cannot answer.
    """
    aggregation = aggregation_name(aggregation)
    start, end = time_bounds(*time_range) if time_range else (None, None)
    where, params = "", list[Any]()
    if names is not None:
        where += f" AND MetricName IN ({', '.join('?' * len(names))})"
        params += list(names)
    if start is not None:
        where += " AND TimeUnix >= ?"
        params.append(start)
    if end is not None:
        where += " AND TimeUnix <= ?"
        params.append(end)
    rows = connection.execute(
        f"""
        SELECT MetricName, COUNT(*), AVG(Value), SUM(Value), MIN(Value), MAX(Value), MIN(TimeUnix), MAX(TimeUnix)
        FROM otel_metrics_gauge WHERE 1{where} GROUP BY MetricName ORDER BY MetricName
        """,
        params,
    ).fetchall()
    metrics: dict[str, Any] = {}
    for name, count, mean, total, minimum, maximum, first, last in rows:
        simple = {"MEAN": mean, "SUM": total, "MIN": minimum, "MAX": maximum, "COUNT": count}
        if aggregation in simple:
            value = simple[aggregation]
        else:
            rank = nearest_rank(count, PERCENTILES[aggregation])
            (value,) = connection.execute(
                f"SELECT Value FROM otel_metrics_gauge WHERE MetricName = ?{where} ORDER BY Value LIMIT 1 OFFSET ?",
                [name, *params, rank - 1],
            ).fetchone()
        if isinstance(value, float) and not math.isfinite(value):
            value = _beyond_float_range(connection, aggregation, name, count, where, params)
        metrics[name] = {
            "value": value,
            "aggregation": aggregation,
            "sample_count": count,
            "time_range": {
                "start": iso(start if start is not None else first),
                "end": iso(end if end is not None else last),
            },
        }
    return {"status": "success", "metrics": metrics}


def _beyond_float_range(
    connection: sqlite3.Connection, aggregation: str, name: str, count: int, where: str, params: list[Any]
) -> float | None:
    """MEAN or SUM of values whose running sum left the float range (values near 1e308): the mean,
    summed as value / count, is finite; a sum beyond the range has no float and answers None."""
    if aggregation != "MEAN":
        return None
    (mean,) = connection.execute(
        f"SELECT TOTAL(Value / ?) FROM otel_metrics_gauge WHERE MetricName = ?{where}", [count, name, *params]
    ).fetchone()
    return float(mean) if math.isfinite(mean) else None


def counts(connection: sqlite3.Connection) -> dict[str, int]:
    """Rows stored: invocations and other spans, events, metric values."""
    (spans,) = connection.execute("SELECT COUNT(*) FROM otel_traces").fetchone()
    (events,) = connection.execute("SELECT COUNT(*) FROM otel_logs").fetchone()
    (metrics,) = connection.execute("SELECT COUNT(*) FROM otel_metrics_gauge").fetchone()
    return {"spans": spans, "events": events, "metrics": metrics}
