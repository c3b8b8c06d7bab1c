"""Wire formats of sdk-telemetry as OpenTelemetry span exporters, and their shared HTTP transport."""

from sdk_telemetry_exporters._env import ExporterSettings
from sdk_telemetry_exporters._transport import HttpTransport, SendResult
from sdk_telemetry_exporters.composio import ComposioSpanExporter, invocation_payload
from sdk_telemetry_exporters.fallback import OtlpFallback

__all__ = [
    "ComposioSpanExporter",
    "ExporterSettings",
    "HttpTransport",
    "OtlpFallback",
    "SendResult",
    "invocation_payload",
]
