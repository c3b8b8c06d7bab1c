"""Performance over time: latency percentiles, error rate and throughput per time bucket.

Percentiles are by nearest rank over the stored calls of a bucket (the smallest duration with at
least p % of the calls at or below it): exact from raw rows, within 1 % from the rollups beyond
them (`summary["read_from"]` says which). Counts, error rates and throughput scale each stored
call by 1 / its sample rate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sdk_telemetry.analytics._range import NS, Grid, TimeRange, nice_step
from sdk_telemetry.analytics._source import Source
from sdk_telemetry.store import Aggregate, Origin, Scope, iso

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


def _scope(
    source: Source, function: str | None, time_range: TimeRange, service: str | None, session: str | None
) -> Scope:
    return source.scope(time_range, function=function or None, service=service or None, session=session or None)


def _row(row: Aggregate) -> tuple[Any, ...]:
    """(key, calls, errors, stored, p50, p95, p99, mean, max) of one aggregate."""
    return (row.key, row.calls, row.errors, row.kept, row.p50, row.p95, row.p99, row.mean, row.duration_max)


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
    scope = _scope(source, function, bounded, service, session)
    series = source.reader.aggregate(scope, grid.buckets())
    ranked = {row.key: _row(row) for row in series.rows}
    total = series if series.total is not None or not series.rows else source.reader.aggregate(scope)
    whole = series.total if series.total is not None else next(iter(total.rows), None)
    overall = _row(whole) if whole is not None else None
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
    summary["read_from"] = _origins(series.origins, total.origins)
    return Performance(function, bounded.as_dict(), step / NS, summary, buckets)


def _origins(*lists: list[Origin]) -> list[str]:
    """What the figures were read from (`raw`, rollup tiers), in the order first used."""
    return list(dict.fromkeys(origin for origins in lists for origin in origins))


def summary(source: Source, function: str | None, time_range: TimeRange, service: str | None = None) -> dict[str, Any]:
    """The figures of `performance()` for the whole range, without buckets."""
    answer = source.reader.aggregate(_scope(source, function, time_range, service, None))
    if not answer.rows:
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
            "read_from": answer.origins,
        }
    return {**_figures(_row(answer.rows[0])), "read_from": answer.origins}


def _figures(row: tuple[Any, ...]) -> dict[str, Any]:
    """Calls, errors, error rate, p50/p95/p99, mean and max (ms) and stored calls of one `_row` tuple."""
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
    answer = source.reader.aggregate(source.scope(time_range), "function")
    table = [{"function": row.key, **_figures(_row(row))} for row in answer.rows]
    table.sort(key=lambda row: (-row["stored_calls"], row["function"]))
    return table[:limit]


def top_errors(source: Source, time_range: TimeRange | None = None, limit: int = 10) -> list[dict[str, Any]]:
    """Errors grouped by type and function, most frequent first, with a sample message and the last time seen."""
    rows = source.reader.error_groups(source.scope(time_range), limit)
    return [
        {
            "type": row.error_type,
            "function": row.function,
            "count": row.count,
            "sample_message": row.sample_message,
            "last_seen": iso(row.last_seen),
        }
        for row in rows
    ]
