"""The same questions asked of ClickHouse: per-function stats, top errors and metrics from the
Collector's tables (`otel_traces`, `otel_metrics_gauge`), answered as the SQLite store answers them
(nearest-rank percentiles, counts scaled by the sampling rate)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sdk_telemetry_exporters.attributes import INVOCATION_SCOPE

import sdk_telemetry.store.clickhouse.schema as schema
import sdk_telemetry.store.clickhouse.writer as writer
from sdk_telemetry.store.clickhouse.connection import Runner, chdb_runner, client_runner
from sdk_telemetry.store.queries import (
    PERCENTILES,
    ErrorGroup,
    Filters,
    FunctionStats,
    TimeBound,
    aggregation_name,
    iso,
    time_bounds,
)

_RATE = (
    "multiIf(toFloat64OrZero(SpanAttributes['sdk_telemetry.sample_rate']) > 0 "
    "AND toFloat64OrZero(SpanAttributes['sdk_telemetry.sample_rate']) <= 1, "
    "toFloat64OrZero(SpanAttributes['sdk_telemetry.sample_rate']), 1.0)"
)
_ERROR = "StatusCode IN ('Error', 'STATUS_CODE_ERROR')"
_ENVIRONMENT = "ResourceAttributes['deployment.environment.name']"
_SESSION = "if(SpanAttributes['session.id'] != '', SpanAttributes['session.id'], ResourceAttributes['session.id'])"


def _rank(count: str, fraction: float) -> str:
    return f"toUInt64(greatest(1, ceil(round({count} * {fraction}, 9))))"


def _where(filters: Filters) -> tuple[str, dict[str, Any]]:
    clauses, params = "", dict[str, Any](scope=INVOCATION_SCOPE)
    for name, expression, value in (
        ("service", "ServiceName", filters.service),
        ("environment", _ENVIRONMENT, filters.environment),
        ("session", _SESSION, filters.session),
    ):
        if value is not None:
            clauses += f" AND {expression} = {{{name}:String}}"
            params[name] = value
    start, end = time_bounds(filters.start, filters.end)
    if start is not None:
        clauses += " AND Timestamp >= fromUnixTimestamp64Nano({start:Int64})"
        params["start"] = start
    if end is not None:
        clauses += " AND Timestamp <= fromUnixTimestamp64Nano({end:Int64})"
        params["end"] = end
    return clauses, params


class ClickHouseStore:
    """Per-function stats, top errors and metrics from ClickHouse, via a `run(sql, params)` function
    that returns the result rows; `insert_spans`/`insert_metrics` write the same tables."""

    def __init__(self, run: Runner) -> None:
        self.run = run

    def create_tables(self) -> None:
        """Create the Collector exporter's tables (`schema.TABLES`) that do not exist yet."""
        schema.create_tables(self.run)

    def insert_spans(self, rows: Sequence[Sequence[Any]]) -> None:
        """Insert store rows (`_rows.trace_row`) into `otel_traces` (synchronously, deduplicated)."""
        writer.insert_spans(self.run, rows)

    def insert_events(self, rows: Sequence[Sequence[Any]]) -> None:
        """Insert store rows (`_rows.log_row`) into `otel_logs` (synchronously, deduplicated)."""
        writer.insert_events(self.run, rows)

    def insert_metrics(self, rows: Sequence[Sequence[Any]]) -> None:
        """Insert store rows (`_rows.metric_row`) into `otel_metrics_gauge` (synchronously, deduplicated)."""
        writer.insert_metrics(self.run, rows)

    @classmethod
    def from_client(cls, client: Any) -> ClickHouseStore:
        """Over a `clickhouse_connect` client (`clickhouse_connect.get_client(...)`)."""
        return cls(client_runner(client))

    @classmethod
    def from_chdb(cls, session: Any) -> ClickHouseStore:
        """Over a chDB session (`chdb.session.Session(path)`)."""
        return cls(chdb_runner(session))

    def function_stats(self, filters: Filters | None = None) -> list[FunctionStats]:
        """Per-function figures, as `queries.function_stats` answers them from SQLite."""
        where, params = _where(filters or Filters())
        rows = self.run(
            f"""
            SELECT SpanName, count() AS kept, sum(1 / {_RATE}) AS calls, sumIf(1 / {_RATE}, {_ERROR}) AS errors,
                   avg(Duration), min(Duration), max(Duration),
                   arraySort(groupArray(Duration)) AS sorted,
                   sorted[{_rank("kept", 0.50)}], sorted[{_rank("kept", 0.95)}], sorted[{_rank("kept", 0.99)}]
            FROM otel_traces WHERE ScopeName = {{scope:String}}{where}
            GROUP BY SpanName
            """.replace("sorted,", "sorted_durations,").replace("sorted[", "sorted_durations["),
            params,
        )
        result = []
        for name, kept, calls, errors, mean, minimum, maximum, _, p50, p95, p99 in rows:
            figures = (mean, p50, p95, p99, minimum, maximum)
            result.append(FunctionStats.of(name, float(calls), float(errors), int(kept), figures))
        result.sort(key=lambda row: (-row.calls, row.function))
        return result

    def top_errors(self, filters: Filters | None = None, limit: int = 10) -> list[ErrorGroup]:
        """The most frequent error types, as `queries.top_errors` answers them."""
        where, params = _where(filters or Filters())
        params["limit"] = int(limit)
        rows = self.run(
            f"""
            SELECT ErrorType, sum(Weight) AS n, count(), uniqExact(Name), argMax(Name, At),
                   argMax(Message, At), toUnixTimestamp64Nano(max(At))
            FROM (
                SELECT argMax(if(SpanAttributes['error.type'] = '', 'Error', SpanAttributes['error.type']), Timestamp)
                           AS ErrorType,
                       argMax(1 / {_RATE}, Timestamp) AS Weight, argMax(SpanName, Timestamp) AS Name,
                       argMax(StatusMessage, Timestamp) AS Message, max(Timestamp) AS At
                FROM otel_traces
                WHERE {_ERROR} AND ScopeName = {{scope:String}}{where}
                  AND SpanAttributes['sdk_telemetry.error.propagated'] NOT IN ('true', '1')
                GROUP BY if(SpanAttributes['sdk_telemetry.error.id'] = '', concat(TraceId, SpanId),
                            SpanAttributes['sdk_telemetry.error.id'])
            )
            GROUP BY ErrorType ORDER BY n DESC, ErrorType LIMIT {{limit:UInt32}}
            """,
            params,
        )
        return [
            ErrorGroup(
                error_type=str(error_type),
                count=round(float(count)),
                kept=int(kept),
                functions=int(functions),
                sample_function=function,
                sample_message=message,
                last_seen=iso(int(last)),
            )
            for error_type, count, kept, functions, function, message, last in rows
        ]

    def get_metrics(
        self,
        names: Sequence[str] | None = None,
        time_range: tuple[TimeBound, TimeBound] | None = None,
        aggregation: str = "MEAN",
    ) -> dict[str, Any]:
        """Aggregated gauge values per metric name, as `queries.get_metrics` answers them."""
        aggregation = aggregation_name(aggregation)
        start, end = time_bounds(*time_range) if time_range else (None, None)
        if names is not None and not names:
            return {"status": "success", "metrics": {}}
        where, params = "", dict[str, Any]()
        if names is not None:
            # One parameter per name: an Array parameter is not passed the same way by every client.
            where += f" AND MetricName IN ({', '.join(f'{{n{i}:String}}' for i in range(len(names)))})"
            params.update({f"n{i}": name for i, name in enumerate(names)})
        if start is not None:
            where += " AND TimeUnix >= fromUnixTimestamp64Nano({start:Int64})"
            params["start"] = start
        if end is not None:
            where += " AND TimeUnix <= fromUnixTimestamp64Nano({end:Int64})"
            params["end"] = end
        value = {
            "MEAN": "avg(Value)",
            "SUM": "sum(Value)",
            "MIN": "min(Value)",
            "MAX": "max(Value)",
            "COUNT": "count()",
        }.get(aggregation) or f"arraySort(groupArray(Value))[{_rank('count()', PERCENTILES.get(aggregation, 0.5))}]"
        rows = self.run(
            f"""
            SELECT MetricName, count(), {value},
                   toUnixTimestamp64Nano(min(TimeUnix)), toUnixTimestamp64Nano(max(TimeUnix))
            FROM otel_metrics_gauge WHERE 1{where} GROUP BY MetricName ORDER BY MetricName
            """,
            params,
        )
        metrics = {}
        for name, count, result, first, last in rows:
            metrics[name] = {
                "value": int(result) if aggregation == "COUNT" else float(result),
                "aggregation": aggregation,
                "sample_count": int(count),
                "time_range": {
                    "start": iso(start if start is not None else int(first)),
                    "end": iso(end if end is not None else int(last)),
                },
            }
        return {"status": "success", "metrics": metrics}
