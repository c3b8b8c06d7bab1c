"""The embedded store (SQLite, OpenTelemetry Collector ClickHouse schema) and the questions asked of it.

`Reader` is the store interface the query layer asks (`SQLiteReader`, and ClickHouse's);
`LocalStore` is the Python API; the rest is what the receiver, the analyses and the CLI build on:
the store file and its connection (`store_path`, `connect`, `open_read_only` for readers, `insert_*`,
`storage_bytes`), the rows of its tables (`trace_row`, `log_row`, `metric_row`), the queries
(`function_stats`, `top_errors`, `get_metrics`, `health`), retention, and the same queries asked of
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
from sdk_telemetry.store.clickhouse_open import (
    MissingExtra,
    chdb_session,
    is_chdb,
    open_clickhouse,
    open_clickhouse_reader,
    shown,
)
from sdk_telemetry.store.clickhouse_reader import ClickHouseReader
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
    Usage,
)
from sdk_telemetry.store.retention import (
    DEFAULT_RETENTION_DAYS,
    STEP_ROWS,
    apply_retention,
    retention_cutoff,
    retention_step,
)
from sdk_telemetry.store.sqlite_reader import SQLiteReader

__all__ = [
    "AGGREGATIONS",
    "DEFAULT_RETENTION_DAYS",
    "STEP_ROWS",
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
    "SQLiteReader",
    "Scope",
    "SessionRow",
    "SpanRow",
    "StoreError",
    "TraceRow",
    "Usage",
    "apply_retention",
    "chdb_session",
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
    "rebuild_durations",
    "retention_cutoff",
    "retention_step",
    "shown",
    "storage_bytes",
    "store_path",
    "to_ns",
    "top_errors",
    "trace_row",
    "unreadable",
]
