"""Wire formats of sdk-telemetry as OpenTelemetry exporters, and their shared HTTP transport.

The public modules: `composio`, `tinker`, `otlp` (the exporters), `fallback`, `spool`,
`config` (settings and the parsing of their values), `attributes` (attribute names and event
types shared with `sdk_telemetry`) and `fork`. Modules whose names start with `_` are private.
`OTLPSpanExporter` and `encode_spans` are imported on first use (upstream's OTLP exporter is
not loaded until then).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sdk_telemetry_exporters._delivery import span_event_id
from sdk_telemetry_exporters._transport import HttpTransport, SendResult
from sdk_telemetry_exporters.composio import ComposioSpanExporter, invocation_payload
from sdk_telemetry_exporters.config import ExporterSettings, parse_bool, parse_list, parse_seconds
from sdk_telemetry_exporters.fallback import CircuitBreaker, OtlpFallback
from sdk_telemetry_exporters.fork import reinit_after_fork
from sdk_telemetry_exporters.spool import Claim, Spool, WireBatch
from sdk_telemetry_exporters.tinker import TinkerLogExporter

if TYPE_CHECKING:
    from sdk_telemetry_exporters.otlp import OTLPSpanExporter, encode_spans

__all__ = [
    "CircuitBreaker",
    "Claim",
    "ComposioSpanExporter",
    "ExporterSettings",
    "HttpTransport",
    "OTLPSpanExporter",
    "OtlpFallback",
    "SendResult",
    "Spool",
    "TinkerLogExporter",
    "WireBatch",
    "encode_spans",
    "invocation_payload",
    "parse_bool",
    "parse_list",
    "parse_seconds",
    "reinit_after_fork",
    "span_event_id",
]

_LAZY = {"OTLPSpanExporter": "sdk_telemetry_exporters.otlp", "encode_spans": "sdk_telemetry_exporters.otlp"}


def __getattr__(name: str) -> Any:
    """The names of `_LAZY`, imported when first asked for."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
