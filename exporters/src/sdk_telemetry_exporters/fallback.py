"""The OTLP fallback: where spans go when a JSON endpoint keeps failing, instead of nowhere."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

_logger = logging.getLogger(__name__)


class CircuitBreaker:
    """Counts consecutive failures; after `threshold` of them, stays open for `cooldown` seconds."""

    def __init__(self, threshold: int = 3, cooldown: float = 30.0) -> None:
        self._threshold = threshold
        self._cooldown = cooldown
        self._failures = 0
        self._open_until = 0.0
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        """True while the primary endpoint should be skipped."""
        with self._lock:
            return time.monotonic() < self._open_until

    def record(self, ok: bool) -> None:
        """Record the outcome of one send to the primary endpoint."""
        with self._lock:
            if ok:
                self._failures = 0
                self._open_until = 0.0
                return
            self._failures += 1
            if self._failures >= self._threshold:
                self._open_until = time.monotonic() + self._cooldown


class OtlpFallback:
    """Sends spans over OTLP/HTTP (the upstream exporter) when the primary endpoint failed."""

    def __init__(self, exporter: SpanExporter | None = None) -> None:
        self._exporter = exporter
        self._lock = threading.Lock()
        self.sent = 0
        self.failed = 0

    @classmethod
    def from_env(cls) -> OtlpFallback:
        """A fallback to the upstream OTLP/HTTP exporter configured by the `OTEL_EXPORTER_OTLP_*` variables."""
        from sdk_telemetry_exporters.otlp import OTLPSpanExporter

        return cls(OTLPSpanExporter())

    def export(self, spans: Sequence[ReadableSpan]) -> bool:
        """Send `spans`; True when the OTLP endpoint took them."""
        if not spans or self._exporter is None:
            return not spans
        try:
            ok = self._exporter.export(spans) is SpanExportResult.SUCCESS
        except Exception:  # an exporter bug must not reach the worker thread
            _logger.exception("sdk-telemetry: OTLP fallback export raised")
            ok = False
        with self._lock:
            if ok:
                self.sent += len(spans)
            else:
                self.failed += len(spans)
        return ok

    def shutdown(self) -> None:
        """Release the OTLP exporter."""
        if self._exporter is not None:
            self._exporter.shutdown()
