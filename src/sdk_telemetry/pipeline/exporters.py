"""Exporters by name: `composio`, `local`, `otlp`, `console`, `tinker`, or any installed entry point."""

from __future__ import annotations

import logging
from importlib.metadata import entry_points
from typing import Any, TypeVar

from opentelemetry.sdk._logs.export import LogRecordExporter
from opentelemetry.sdk.metrics.export import MetricExporter
from opentelemetry.sdk.trace.export import SpanExporter

from sdk_telemetry.config import Settings
from sdk_telemetry.instrument import resolve

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
    return _standard("opentelemetry_logs_exporter", "logs", name, LogRecordExporter)  # type: ignore[type-abstract]


def span_exporter(name: str, settings: Settings) -> SpanExporter:
    """A new span exporter for `name`, configured from `settings`."""
    if name == "composio":
        from sdk_telemetry_exporters.composio import ComposioSpanExporter

        return ComposioSpanExporter(project_id=settings.project_id, provider=settings.provider, settings=settings.http)
    if name == "local":
        from sdk_telemetry.store import LocalSpanExporter

        return LocalSpanExporter(settings.store_path)
    return _standard("opentelemetry_traces_exporter", "traces", name, SpanExporter)


def metric_exporter(name: str) -> MetricExporter:
    """A new metric exporter for `name` (`otlp`, `console`, or an installed entry point)."""
    return _standard("opentelemetry_metrics_exporter", "metrics", name, MetricExporter)  # type: ignore[type-abstract]


#: The exporters built in for every signal, by import path (imported only when chosen).
_STANDARD = {
    "logs": {
        "otlp": "opentelemetry.exporter.otlp.proto.http._log_exporter:OTLPLogExporter",
        "console": "opentelemetry.sdk._logs.export:ConsoleLogRecordExporter",
    },
    "traces": {
        "otlp": "sdk_telemetry_exporters.otlp:OTLPSpanExporter",  # upstream's, with the direct encoder
        "console": "opentelemetry.sdk.trace.export:ConsoleSpanExporter",
    },
    "metrics": {
        "otlp": "opentelemetry.exporter.otlp.proto.http.metric_exporter:OTLPMetricExporter",
        "console": "opentelemetry.sdk.metrics.export:ConsoleMetricExporter",
    },
}
_T = TypeVar("_T")


def _standard(group: str, signal: str, name: str, kind: type[_T]) -> _T:
    """`otlp` (alias `otlp_proto_http`), `console`, or the entry point `name` of `group`, made with no arguments."""
    path = _STANDARD[signal].get("otlp" if name == "otlp_proto_http" else name)
    exporter = resolve(path)() if path is not None else _from_entry_point(group, name)
    if not isinstance(exporter, kind):
        raise UnknownExporterError(f"{signal} exporter {name!r} is not a {kind.__name__}")
    return exporter


def _from_entry_point(group: str, name: str) -> Any:
    for entry_point in entry_points(group=group):
        if entry_point.name == name:
            return entry_point.load()()
    known = sorted(
        {ep.name for ep in entry_points(group=group)} | {"composio", "local", "otlp", "console", "tinker", "none"}
    )
    raise UnknownExporterError(f"unknown exporter {name!r} (known: {', '.join(known)})")
