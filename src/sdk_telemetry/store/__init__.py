"""The embedded store (SQLite, OpenTelemetry Collector ClickHouse schema) and the questions asked of it."""

from sdk_telemetry.store._store import LocalStore
from sdk_telemetry.store.exporter import LocalSpanExporter
from sdk_telemetry.store.queries import (
    ErrorGroup,
    Filters,
    FunctionStats,
    QueryError,
    function_stats,
    get_metrics,
    top_errors,
)
from sdk_telemetry.store.retention import apply_retention

__all__ = [
    "ErrorGroup",
    "Filters",
    "FunctionStats",
    "LocalSpanExporter",
    "LocalStore",
    "QueryError",
    "apply_retention",
    "function_stats",
    "get_metrics",
    "top_errors",
]
