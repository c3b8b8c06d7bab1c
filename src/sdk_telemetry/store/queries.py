"""Questions asked of the embedded store: per-function performance."""

from __future__ import annotations

import math
import sqlite3
from dataclasses import asdict, dataclass
from typing import Any

from sdk_telemetry_exporters.attributes import INVOCATION_SCOPE

NS_PER_MS = 1_000_000


@dataclass(frozen=True)
class FunctionStats:
    """Calls, errors and latency of one instrumented function (durations in milliseconds)."""

    function: str
    calls: int
    errors: int
    error_rate: float
    mean_ms: float
    p50_ms: float
    p95_ms: float
    max_ms: float

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def function_stats(connection: sqlite3.Connection) -> list[FunctionStats]:
    """Per-function figures over every stored invocation, busiest function first.

    Percentiles are exact, by nearest rank: the smallest duration with at least p % of the
    calls at or below it.
    """
    rows = connection.execute(
        """
        SELECT SpanName, COUNT(*), SUM(StatusCode = 'Error'), AVG(Duration), MAX(Duration)
        FROM otel_traces WHERE ScopeName = ? GROUP BY SpanName ORDER BY COUNT(*) DESC, SpanName
        """,
        (INVOCATION_SCOPE,),
    ).fetchall()
    result = []
    for name, calls, errors, mean, maximum in rows:
        result.append(
            FunctionStats(
                function=name,
                calls=calls,
                errors=errors,
                error_rate=errors / calls,
                mean_ms=mean / NS_PER_MS,
                p50_ms=_percentile(connection, name, calls, 0.50),
                p95_ms=_percentile(connection, name, calls, 0.95),
                max_ms=maximum / NS_PER_MS,
            )
        )
    return result


def _percentile(connection: sqlite3.Connection, name: str, count: int, fraction: float) -> float:
    rank = max(1, math.ceil(fraction * count))
    (duration,) = connection.execute(
        "SELECT Duration FROM otel_traces WHERE ScopeName = ? AND SpanName = ? ORDER BY Duration LIMIT 1 OFFSET ?",
        (INVOCATION_SCOPE, name, rank - 1),
    ).fetchone()
    return float(duration) / NS_PER_MS
