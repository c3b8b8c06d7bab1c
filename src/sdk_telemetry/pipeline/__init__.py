"""The export pipeline: the one processor sdk-telemetry adds to a TracerProvider (`forwarder`), the
privacy preparation of each finished span (`prepare`), the span and event batchers
(`span_batcher`, `event_batcher`) on their shared core (`batching`), exporters by name
(`exporters`), queue metrics (`queue_metrics`), the end user on events (`enduser`) and the health
of each exporter (`health`)."""

from sdk_telemetry.pipeline.enduser import EndUserStamp
from sdk_telemetry.pipeline.event_batcher import EventQueue, accepted, begin_offer
from sdk_telemetry.pipeline.exporters import (
    EVENTS_ONLY,
    UnknownExporterError,
    log_exporter,
    metric_exporter,
    span_exporter,
)
from sdk_telemetry.pipeline.forwarder import Forwarder
from sdk_telemetry.pipeline.health import ExporterHealth, exporters_health, health_summary, undelivered
from sdk_telemetry.pipeline.prepare import stats as privacy_stats
from sdk_telemetry.pipeline.queue_metrics import EXPORTER as QUEUE_EXPORTER
from sdk_telemetry.pipeline.queue_metrics import SESSION as QUEUE_SESSION
from sdk_telemetry.pipeline.queue_metrics import SIGNAL as QUEUE_SIGNAL
from sdk_telemetry.pipeline.queue_metrics import register as register_queue_metrics
from sdk_telemetry.pipeline.span_batcher import BatchSpanProcessor

__all__ = [
    "EVENTS_ONLY",
    "QUEUE_EXPORTER",
    "QUEUE_SESSION",
    "QUEUE_SIGNAL",
    "BatchSpanProcessor",
    "EndUserStamp",
    "EventQueue",
    "ExporterHealth",
    "Forwarder",
    "UnknownExporterError",
    "accepted",
    "begin_offer",
    "exporters_health",
    "health_summary",
    "log_exporter",
    "metric_exporter",
    "privacy_stats",
    "register_queue_metrics",
    "span_exporter",
    "undelivered",
]
