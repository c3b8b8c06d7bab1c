"""Exporters by name: `composio`, `local`, `otlp`, `console`, `tinker`, or any installed entry point."""

from __future__ import annotations

import logging
from importlib.metadata import entry_points
from typing import Any

from opentelemetry.sdk._logs.export import LogRecordExporter
from opentelemetry.sdk.metrics.export import MetricExporter
from opentelemetry.sdk.trace.export import SpanExporter

from sdk_telemetry.config import Settings

_logger = logging.getLogger(__name__)


#: Names that export events only: as trace exporters they mean "events go there", no span exporter.
EVENTS_ONLY = frozenset({"tinker"})


class UnknownExporterError(ValueError):
    """An exporter name that is neither built in nor an installed entry point."""


def log_exporter(name: str, settings: Settings) -> LogRecordExporter:
    """A new events (log record) exporter for `name`: `tinker`, `otlp`, `console` or an entry point."""
    if name == "tinker":
        from sdk_telemetry_exporters.tinker import TinkerLogExporter

        return TinkerLogExporter(sdk_version=settings.service_version, settings=settings.http)
    if name in ("otlp", "otlp_proto_http"):
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

        return OTLPLogExporter()
    if name == "console":
        from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter

        return ConsoleLogRecordExporter()
    exporter = _from_entry_point("opentelemetry_logs_exporter", name)
    if not isinstance(exporter, LogRecordExporter):
        raise UnknownExporterError(f"logs exporter {name!r} is not a LogRecordExporter")
    return exporter


def span_exporter(name: str, settings: Settings) -> SpanExporter:
    """A new span exporter for `name`, configured from `settings`."""
    if name == "composio":
        from sdk_telemetry_exporters.composio import ComposioSpanExporter

        return ComposioSpanExporter(project_id=settings.project_id, provider=settings.provider, settings=settings.http)
    if name == "local":
        from sdk_telemetry.store.exporter import LocalSpanExporter

        return LocalSpanExporter(settings.store_path)
    if name in ("otlp", "otlp_proto_http"):
        from sdk_telemetry_exporters.otlp import OTLPSpanExporter  # upstream's, with the direct encoder

        return OTLPSpanExporter()
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    exporter = _from_entry_point("opentelemetry_traces_exporter", name)
    if not isinstance(exporter, SpanExporter):
        raise UnknownExporterError(f"traces exporter {name!r} is not a SpanExporter")
    return exporter


def metric_exporter(name: str) -> MetricExporter:
    """A new metric exporter for `name` (`otlp`, `console`, or an installed entry point)."""
    if name in ("otlp", "otlp_proto_http"):
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter()
    if name == "console":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

        return ConsoleMetricExporter()
    exporter = _from_entry_point("opentelemetry_metrics_exporter", name)
    if not isinstance(exporter, MetricExporter):
        raise UnknownExporterError(f"metrics exporter {name!r} is not a MetricExporter")
    return exporter


def _from_entry_point(group: str, name: str) -> Any:
    for entry_point in entry_points(group=group):
        if entry_point.name == name:
            return entry_point.load()()
    known = sorted(
        {ep.name for ep in entry_points(group=group)} | {"composio", "local", "otlp", "console", "tinker", "none"}
    )
    raise UnknownExporterError(f"unknown exporter {name!r} (known: {', '.join(known)})")
