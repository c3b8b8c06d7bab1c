"""The embedded store (SQLite, OpenTelemetry Collector ClickHouse schema) and the questions asked of it.

`Reader` is the store interface the query layer asks (`SQLiteReader`, `ClickHouseReader` with its
rollups as materialized views);
`LocalStore` is the Python API; the rest is what the receiver, the analyses and the CLI build on:
the store file and its connection (`store_path`, `connect`, `open_read_only` for readers, `insert_*`,
`storage_bytes`), the rows of its tables (`trace_row`, `log_row`, `metric_row`), the queries
(`function_stats`, `top_errors`, `get_metrics`, `health`), retention, the rollups (hour, day, week
and month buckets with duration sketches, `read_rollups`, `combine`), and the same queries asked of
ClickHouse (`ClickHouseStore`).
"""

from sdk_telemetry.store._rows import LogRow, MetricRow, TraceRow, content_id, dumps, log_row, metric_row, trace_row
from sdk_telemetry.store._sqlite import (
    StoreError,
    connect,
    insert_events,
    insert_metrics,
    insert_spans,
    open_read_only,
    rebuild_durations,
    storage_bytes,
    store_path,
    unreadable,
)
from sdk_telemetry.store._store import LocalStore, health
from sdk_telemetry.store.clickhouse import ClickHouseStore
from sdk_telemetry.store.clickhouse.reader import ClickHouseReader
from sdk_telemetry.store.clickhouse.urls import (
    MissingExtra,
    chdb_session,
    close_chdb,
    is_chdb,
    open_clickhouse,
    open_clickhouse_reader,
    shown,
)
from sdk_telemetry.store.exporter import LocalSpanExporter
from sdk_telemetry.store.queries import (
    AGGREGATIONS,
    ErrorGroup,
    Filters,
    FunctionStats,
    QueryError,
    datetime_ns,
    function_stats,
    get_metrics,
    iso,
    to_ns,
    top_errors,
)
from sdk_telemetry.store.reader import (
    Aggregate,
    Aggregation,
    Buckets,
    CallRow,
    ErrorGroupRow,
    EventRow,
    Origin,
    Reader,
    Scope,
    SessionRow,
    SpanRow,
    TierRow,
    Usage,
)
from sdk_telemetry.store.retention import (
    DEFAULT_RETENTION_DAYS,
    DEFAULT_ROLLUP_DAYS,
    STEP_ROWS,
    apply_retention,
    retention_cutoff,
    retention_step,
    rollup_cutoffs,
)
from sdk_telemetry.store.rollups import TIERS, RollupGroup, Tier, combine, raw_complete_since, read_rollups
from sdk_telemetry.store.sketch import Sketch
from sdk_telemetry.store.sqlite_reader import SQLiteReader

__all__ = [
    "AGGREGATIONS",
    "DEFAULT_RETENTION_DAYS",
    "DEFAULT_ROLLUP_DAYS",
    "STEP_ROWS",
    "TIERS",
    "Aggregate",
    "Aggregation",
    "Buckets",
    "CallRow",
    "ClickHouseReader",
    "ClickHouseStore",
    "ErrorGroup",
    "ErrorGroupRow",
    "EventRow",
    "Filters",
    "FunctionStats",
    "LocalSpanExporter",
    "LocalStore",
    "LogRow",
    "MetricRow",
    "MissingExtra",
    "Origin",
    "QueryError",
    "Reader",
    "RollupGroup",
    "SQLiteReader",
    "Scope",
    "SessionRow",
    "Sketch",
    "SpanRow",
    "StoreError",
    "Tier",
    "TierRow",
    "TraceRow",
    "Usage",
    "apply_retention",
    "chdb_session",
    "close_chdb",
    "combine",
    "connect",
    "content_id",
    "datetime_ns",
    "dumps",
    "function_stats",
    "get_metrics",
    "health",
    "insert_events",
    "insert_metrics",
    "insert_spans",
    "is_chdb",
    "iso",
    "log_row",
    "metric_row",
    "open_clickhouse",
    "open_clickhouse_reader",
    "open_read_only",
    "raw_complete_since",
    "read_rollups",
    "rebuild_durations",
    "retention_cutoff",
    "retention_step",
    "rollup_cutoffs",
    "shown",
    "storage_bytes",
    "store_path",
    "to_ns",
    "top_errors",
    "trace_row",
    "unreadable",
]
