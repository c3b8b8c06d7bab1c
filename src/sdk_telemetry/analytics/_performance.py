"""Performance over time: latency percentiles, error rate and throughput per time bucket.

Percentiles are exact, by nearest rank over the stored calls of a bucket (the smallest duration
with at least p % of the calls at or below it); on ClickHouse the same figures are
`quantileExactLow`. Counts, error rates and throughput scale
each stored call by 1 / its sample rate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sdk_telemetry.analytics._range import NS, Grid, TimeRange, nice_step
from sdk_telemetry.analytics._source import Source
from sdk_telemetry.store import iso

NS_PER_MS = 1_000_000
PERCENTILES = (50, 95, 99)


@dataclass(frozen=True)
class Bucket:
    """One time bucket of one function (durations in milliseconds; counts scaled by sampling).

    An empty bucket is present too: no calls, no errors, and no error rate or percentiles (None).
    Throughput is over the part of the bucket inside the range (the first and last may be partial).
    """

    start: str
    calls: float
    errors: float
    error_rate: float | None
    throughput_per_s: float
    throughput_per_min: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    stored_calls: int


@dataclass(frozen=True)
class Performance:
    """Latency, errors and throughput of a function (or of all functions) over a time range."""

    function: str | None
    time_range: dict[str, str | None]
    step_seconds: float
    summary: dict[str, Any]
    buckets: list[Bucket] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def _filters(
    source: Source, function: str | None, time_range: TimeRange, service: str | None, session: str | None
) -> tuple[str, list[Any]]:
    condition, params = source.calls(time_range)
    parts, values = [condition], list(params)
    if function:
        parts.append("+SpanName = ?")
        values.append(function)
    if service:
        parts.append("ServiceName = ?")
        values.append(service)
    if session:
        expression, extra = source.entity("session")
        parts.append(f"{expression} = ?")
        values.extend([*extra, session])
    return " AND ".join(parts), values


Groups = dict[Any, tuple[list[int], list[float]]]


def _groups(source: Source, bucket_expression: str, where: str, params: list[Any]) -> Groups:
    """Durations and scaled (calls, errors) per bucket, from one read of the matching rows."""
    groups: Groups = {}
    cursor = source.connection.execute(
        f"SELECT {bucket_expression}, Duration, StatusCode = 'Error', {source.weight()} FROM otel_traces WHERE {where}",
        params,
    )
    for bucket, duration, failed, weight in cursor:
        group = groups.get(bucket)
        if group is None:
            group = groups[bucket] = ([], [0.0, 0.0])
        group[0].append(duration)
        totals = group[1]
        totals[0] += weight
        if failed:
            totals[1] += weight
    return groups


def _rank(bucket: Any, durations: list[int], calls: float, errors: float) -> tuple[Any, ...]:
    """(bucket, calls, errors, stored, p50, p95, p99, mean, max) of one group; sorts `durations`."""
    durations.sort()
    n = len(durations)
    ranks = [durations[max(1, -(-n * p // 100)) - 1] for p in PERCENTILES]  # nearest rank: ceil(n p / 100)
    return (bucket, calls, errors, n, *ranks, sum(durations) / n, durations[-1])


def _stats(source: Source, bucket_expression: str, where: str, params: list[Any]) -> list[tuple[Any, ...]]:
    """Per bucket, in bucket order: (bucket, scaled calls, scaled errors, stored calls, p50, p95, p99, mean, max).

    The rows are read once and ranked here: SQLite has no percentile function and its window
    functions sort far slower than Python does. On ClickHouse this is one GROUP BY with
    `quantilesExactLow(0.5, 0.95, 0.99)(Duration)`.
    """
    groups = _groups(source, bucket_expression, where, params)
    return [_rank(bucket, *groups[bucket][0:1], *groups[bucket][1]) for bucket in sorted(groups)]


def _ms(value: float | None) -> float | None:
    return None if value is None else float(value) / NS_PER_MS


def performance(
    source: Source,
    function: str | None = None,
    time_range: TimeRange | None = None,
    step_seconds: float | None = None,
    service: str | None = None,
    session: str | None = None,
) -> Performance:
    """p50/p95/p99, error rate and throughput per time bucket for `function` (every function when None).

    Open ends of `time_range` close on the stored data; `step_seconds` defaults to a round width
    giving about 60 buckets. Buckets are aligned to the step in UTC (see `Grid`) and every one
    of them is present, empty or not, so that the series is evenly spaced in time.
    """
    if function is not None:
        source.require_recorded([function])
    bounded = source.bounds(time_range or TimeRange())
    assert bounded.start is not None and bounded.end is not None
    step = int(step_seconds * NS) if step_seconds else nice_step(bounded.end - bounded.start)
    grid = Grid.cover(bounded.start, bounded.end, step)
    where, params = _filters(source, function, bounded, service, session)
    groups = _groups(source, grid.sql_index(), where, params)
    everything: list[int] = [duration for bucket in sorted(groups) for duration in groups[bucket][0]]
    calls_total = sum(g[1][0] for g in groups.values())
    overall = _rank(0, everything, calls_total, sum(g[1][1] for g in groups.values())) if everything else None
    ranked = {row[0]: row for row in (_rank(bucket, *groups[bucket][0:1], *groups[bucket][1]) for bucket in groups)}
    buckets = []
    for index in grid.indexes():
        begin = grid.start(index)
        covered = (min(begin + step, bounded.end) - max(begin, bounded.start)) / NS
        row = ranked.get(index)
        if row is None:
            buckets.append(Bucket(iso(begin), 0.0, 0.0, None, 0.0, 0.0, None, None, None, 0))
            continue
        _, calls, errors, stored, p50, p95, p99, _mean, _max = row
        rate = calls / covered if covered > 0 else 0.0
        buckets.append(
            Bucket(
                start=iso(begin),
                calls=round(calls, 6),
                errors=round(errors, 6),
                error_rate=errors / calls if calls else 0.0,
                throughput_per_s=rate,
                throughput_per_min=rate * 60,
                p50_ms=_ms(p50),
                p95_ms=_ms(p95),
                p99_ms=_ms(p99),
                stored_calls=stored,
            )
        )
    seconds = (bounded.end - bounded.start) / NS
    if overall:
        _, calls, errors, stored, p50, p95, p99, mean, maximum = overall
        summary = {
            "calls": round(calls, 6),
            "errors": round(errors, 6),
            "error_rate": errors / calls if calls else 0.0,
            "throughput_per_s": calls / seconds,
            "throughput_per_min": calls / seconds * 60,
            "mean_ms": _ms(mean),
            "p50_ms": _ms(p50),
            "p95_ms": _ms(p95),
            "p99_ms": _ms(p99),
            "max_ms": _ms(maximum),
            "stored_calls": stored,
        }
    else:
        summary = {
            "calls": 0,
            "errors": 0,
            "error_rate": 0.0,
            "throughput_per_s": 0.0,
            "throughput_per_min": 0.0,
            "stored_calls": 0,
        }
        summary.update(dict.fromkeys(("mean_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms")))
    return Performance(function, bounded.as_dict(), step / NS, summary, buckets)


def summary(source: Source, function: str | None, time_range: TimeRange, service: str | None = None) -> dict[str, Any]:
    """The figures of `performance()` for the whole range, without buckets."""
    where, params = _filters(source, function, time_range, service, None)
    row = next(iter(_stats(source, "0", where, params)), None)
    if not row:
        return {
            "calls": 0.0,
            "errors": 0.0,
            "error_rate": 0.0,
            "p50_ms": None,
            "p95_ms": None,
            "p99_ms": None,
            "mean_ms": None,
            "max_ms": None,
            "stored_calls": 0,
        }
    return _figures(row)


def _figures(row: tuple[Any, ...]) -> dict[str, Any]:
    """Calls, errors, error rate, p50/p95/p99, mean and max (ms) and stored calls of one `_stats` row."""
    _, calls, errors, stored, p50, p95, p99, mean, maximum = row
    return {
        "calls": calls,
        "errors": errors,
        "error_rate": errors / calls if calls else 0.0,
        "p50_ms": _ms(p50),
        "p95_ms": _ms(p95),
        "p99_ms": _ms(p99),
        "mean_ms": _ms(mean),
        "max_ms": _ms(maximum),
        "stored_calls": stored,
    }


def functions(source: Source, time_range: TimeRange | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Per function over the range: scaled calls, errors, error rate, p50/p95/p99, mean and max, busiest first."""
    where, params = _filters(source, None, time_range or TimeRange(), None, None)
    table = [{"function": row[0], **_figures(row)} for row in _stats(source, "SpanName", where, params)]
    table.sort(key=lambda row: (-row["stored_calls"], row["function"]))
    return table[:limit]


def top_errors(source: Source, time_range: TimeRange | None = None, limit: int = 10) -> list[dict[str, Any]]:
    """Errors grouped by type and function, most frequent first, with a sample message and the last time seen."""
    where, params = _filters(source, None, time_range or TimeRange(), None, None)
    rows = source.connection.execute(
        f"""
        SELECT COALESCE(json_extract(SpanAttributes, '$."error.type"'), 'Error') AS type, SpanName,
               SUM({source.weight()}), MAX(StatusMessage), MAX(Timestamp)
        FROM otel_traces WHERE {where} AND StatusCode = 'Error'
        GROUP BY type, SpanName ORDER BY 3 DESC, type, SpanName LIMIT ?
        """,
        [*params, limit],
    ).fetchall()
    return [
        {"type": kind, "function": name, "count": count, "sample_message": message, "last_seen": iso(last)}
        for kind, name, count, message, last in rows
    ]
