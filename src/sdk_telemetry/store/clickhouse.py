"""The same questions asked of ClickHouse: tables written by the OpenTelemetry Collector's
ClickHouse exporter (`otel_traces`, `otel_metrics_gauge`), or by `ClickHouseStore.insert_spans`.

The SQL runs on a ClickHouse server through `clickhouse-connect` (extra `clickhouse`) or on the
embedded engine chDB (extra `chdb`); answers match the SQLite store's exactly (nearest-rank
percentiles, counts scaled by the sampling rate).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
from sdk_telemetry_exporters.attributes import INVOCATION_SCOPE

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

Runner = Callable[[str, Mapping[str, Any]], list[Sequence[Any]]]

#: The Collector's ClickHouse exporter table for spans (its DDL, without TTL and codecs).
OTEL_TRACES_DDL = """
CREATE TABLE IF NOT EXISTS otel_traces (
    Timestamp DateTime64(9),
    TraceId String,
    SpanId String,
    ParentSpanId String,
    TraceState String,
    SpanName LowCardinality(String),
    SpanKind LowCardinality(String),
    ServiceName LowCardinality(String),
    ResourceAttributes Map(LowCardinality(String), String),
    ScopeName String,
    ScopeVersion String,
    SpanAttributes Map(LowCardinality(String), String),
    Duration UInt64,
    StatusCode LowCardinality(String),
    StatusMessage String,
    Events Nested (
        Timestamp DateTime64(9), Name LowCardinality(String), Attributes Map(LowCardinality(String), String)
    ),
    Links Nested (TraceId String, SpanId String, TraceState String, Attributes Map(LowCardinality(String), String))
) ENGINE = MergeTree
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, SpanName, toDateTime(Timestamp))
"""

#: The Collector's gauge table, the columns the queries read.
OTEL_METRICS_GAUGE_DDL = """
CREATE TABLE IF NOT EXISTS otel_metrics_gauge (
    ResourceAttributes Map(LowCardinality(String), String),
    ServiceName LowCardinality(String),
    MetricName String,
    MetricUnit String,
    Attributes Map(LowCardinality(String), String),
    TimeUnix DateTime64(9),
    Value Float64
) ENGINE = MergeTree
PARTITION BY toDate(TimeUnix)
ORDER BY (ServiceName, MetricName, toUnixTimestamp64Nano(TimeUnix))
"""

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
        """Create `otel_traces` and `otel_metrics_gauge` as the Collector's exporter does, if absent."""
        self.run(OTEL_TRACES_DDL, {})
        self.run(OTEL_METRICS_GAUGE_DDL, {})

    def insert_spans(self, rows: Sequence[Sequence[Any]]) -> None:
        """Insert store rows (`_rows.trace_row`) into `otel_traces` (synchronously)."""
        if rows:
            self.run(
                "INSERT INTO otel_traces SETTINGS async_insert = 0 FORMAT JSONEachRow\n"
                + trace_rows_as_json_each_row(rows).decode(),
                {},
            )

    def insert_metrics(self, rows: Sequence[Sequence[Any]]) -> None:
        """Insert store rows (`_rows.metric_row`) into `otel_metrics_gauge` (synchronously)."""
        if rows:
            self.run(
                "INSERT INTO otel_metrics_gauge SETTINGS async_insert = 0 FORMAT JSONEachRow\n"
                + metric_rows_as_json_each_row(rows).decode(),
                {},
            )

    @classmethod
    def from_client(cls, client: Any) -> ClickHouseStore:
        """Over a `clickhouse_connect` client (`clickhouse_connect.get_client(...)`)."""

        def run(sql: str, params: Mapping[str, Any]) -> list[Sequence[Any]]:
            if not sql.lstrip().upper().startswith("SELECT"):
                client.command(sql, parameters=dict(params) or None)
                return []
            return list(client.query(sql, parameters=dict(params)).result_rows)

        return cls(run)

    @classmethod
    def from_chdb(cls, session: Any) -> ClickHouseStore:
        """Over a chDB session (`chdb.session.Session(path)`)."""

        def run(sql: str, params: Mapping[str, Any]) -> list[Sequence[Any]]:
            result = session.query(sql, "JSONCompact", params=dict(params))
            text = result.bytes() if hasattr(result, "bytes") else bytes(result)
            return list(orjson.loads(text)["data"]) if text.strip() else []

        return cls(run)

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


def _datetime64(ns: int) -> str:
    # Epoch seconds as decimal text: exact to the nanosecond and free of the server's time zone
    # (a JSON integer would be read as seconds, a date-time text in the server's zone).
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def _string_map(text: str) -> dict[str, str]:
    return {
        key: value if isinstance(value, str) else orjson.dumps(value).decode()
        for key, value in orjson.loads(text).items()
    }


def trace_rows_as_json_each_row(rows: Sequence[Sequence[Any]]) -> bytes:
    """Store rows (`_rows.trace_row`) as ClickHouse JSONEachRow lines for `otel_traces`
    (attribute values as strings, as the Collector writes them; times as UTC DateTime64 text)."""
    lines = []
    for row in rows:
        events = orjson.loads(row[15])
        links = orjson.loads(row[16])
        lines.append(
            orjson.dumps(
                {
                    "Timestamp": _datetime64(row[0]),
                    "TraceId": row[1],
                    "SpanId": row[2],
                    "ParentSpanId": row[3],
                    "TraceState": row[4],
                    "SpanName": row[5],
                    "SpanKind": row[6],
                    "ServiceName": row[7],
                    "ResourceAttributes": _string_map(row[8]),
                    "ScopeName": row[9],
                    "ScopeVersion": row[10],
                    "SpanAttributes": _string_map(row[11]),
                    "Duration": row[12],
                    "StatusCode": row[13],
                    "StatusMessage": row[14],
                    "Events.Timestamp": [_datetime64(int(event.get("Timestamp") or row[0])) for event in events],
                    "Events.Name": [event.get("Name", "") for event in events],
                    "Events.Attributes": [
                        _string_map(orjson.dumps(event.get("Attributes", {})).decode()) for event in events
                    ],
                    "Links.TraceId": [link.get("TraceId", "") for link in links],
                    "Links.SpanId": [link.get("SpanId", "") for link in links],
                    "Links.TraceState": ["" for _ in links],
                    "Links.Attributes": [
                        _string_map(orjson.dumps(link.get("Attributes", {})).decode()) for link in links
                    ],
                }
            )
        )
    return b"\n".join(lines)


def metric_rows_as_json_each_row(rows: Sequence[Sequence[Any]]) -> bytes:
    """Store rows (`_rows.metric_row`) as JSONEachRow lines for `otel_metrics_gauge`."""
    return b"\n".join(
        orjson.dumps(
            {
                "TimeUnix": _datetime64(row[0]),
                "ServiceName": row[2],
                "MetricName": row[3],
                "MetricUnit": row[4],
                "Attributes": _string_map(row[5]),
                "ResourceAttributes": _string_map(row[6]),
                "Value": row[7],
            }
        )
        for row in rows
    )
