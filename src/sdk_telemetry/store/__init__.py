"""The embedded store (SQLite, `otel_traces` schema) and the questions asked of it."""

from sdk_telemetry.store.exporter import LocalSpanExporter
from sdk_telemetry.store.queries import FunctionStats, function_stats

__all__ = ["FunctionStats", "LocalSpanExporter", "function_stats"]
