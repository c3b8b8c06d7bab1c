"""`configure_telemetry()`: providers, resource, processors and exporters, and the handle it returns."""

from __future__ import annotations

import atexit
import logging
import platform
import socket
import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from sdk_telemetry_exporters import attributes as attr
from typing_extensions import Unpack

from sdk_telemetry import _exporters, _instrument, _state
from sdk_telemetry._batch import BatchSpanProcessor
from sdk_telemetry._processing import prepare
from sdk_telemetry._settings import Settings, SettingsArguments, resolve_settings

_logger = logging.getLogger(__name__)
_lock = threading.RLock()
_current: Telemetry | None = None
_forwarders: dict[int, _Forwarder] = {}
_exit_hook_registered = False


class _Forwarder(SpanProcessor):
    """Added once to a TracerProvider; hands spans to the current setup's processors.

    Reconfiguring swaps the processors behind it, so a provider never holds two of ours.
    """

    def __init__(self) -> None:
        self.processors: tuple[BatchSpanProcessor, ...] = ()
        self.settings = Settings()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing happens at span start."""

    def on_end(self, span: ReadableSpan) -> None:
        """Prepare the finished span (privacy, sampling), then hand it to every current processor."""
        processors = self.processors
        if not processors:
            return
        prepared = prepare(span, self.settings)
        if prepared is None:
            return
        for processor in processors:
            processor.on_end(prepared)

    def shutdown(self) -> None:
        """Shut the current processors down within the configured exit bound."""
        telemetry = _current
        if telemetry is not None:
            telemetry.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush every current processor."""
        return all([processor.force_flush(timeout_millis) for processor in self.processors])


class Telemetry:
    """The handle of one telemetry setup: flush, shut down, and read its counters."""

    def __init__(self, settings: Settings, processors: Sequence[tuple[str, BatchSpanProcessor]] = ()) -> None:
        self.settings = settings
        self._processors = list(processors)
        self._shut_down = False

    @property
    def enabled(self) -> bool:
        """False when telemetry is off (then nothing is recorded or sent)."""
        return self.settings.enabled and not self._shut_down

    @property
    def processors(self) -> tuple[BatchSpanProcessor, ...]:
        """The batching stage of each exporter."""
        return tuple(processor for _, processor in self._processors)

    def flush(self, timeout: float = 5.0) -> bool:
        """Export everything recorded so far; True when all of it was handed over within `timeout` seconds."""
        if not self.enabled:
            return True
        return all([processor.force_flush(int(timeout * 1000)) for processor in self.processors])

    def shutdown(self, timeout: float | None = None) -> None:
        """Flush and stop, bounded by `timeout` seconds (default: the exit timeout)."""
        with _lock:
            if self._shut_down:
                return
            self._shut_down = True
        _shutdown_all(self.processors, self.settings.exit_timeout if timeout is None else timeout)

    def stats(self) -> dict[str, Any]:
        """Counters per exporter (queued, exported, failed, dropped by reason, last error) and totals."""
        result: dict[str, Any] = {
            "enabled": self.settings.enabled,
            "disabled_reason": self.settings.disabled_reason,
            "exporters": {},
        }
        totals = {"queued": 0, "exported": 0, "failed": 0, "dropped": 0}
        for name, processor in self._processors:
            entry = processor.stats()
            exporter_stats = getattr(processor.exporter, "stats", None)
            if callable(exporter_stats):
                entry["exporter"] = exporter_stats()
            result["exporters"][name] = entry
            for key in ("queued", "exported", "failed"):
                totals[key] += entry[key]
            totals["dropped"] += sum(entry["dropped"].values())
        result.update(totals)
        return result


def _shutdown_all(processors: Sequence[BatchSpanProcessor], limit: float) -> None:
    """Shut the processors down side by side, so that together they take at most `limit` seconds."""
    threads = [threading.Thread(target=p.shutdown, args=(limit,), daemon=True) for p in processors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(limit + 0.5)


def configure_telemetry(
    *, metric_readers: Sequence[MetricReader] = (), **settings: Unpack[SettingsArguments]
) -> Telemetry:
    """Set up telemetry for this process and return its handle.

    Settings (see `SettingsArguments` and the README's table): `service_name`,
    `service_version`, `environment`, `exporter`, `endpoint`, `api_key`, `headers`, `timeout`,
    `project_id`, `provider`, `batch_size`, `batch_interval`, `queue_size`, `exit_timeout`,
    `capture_args`, `store_path`, `metrics_exporter`, `enabled`. Each overrides its environment
    variable; with nothing configured, spans go to the local store on disk. `metric_readers`
    receive the invocation metrics.

    Calling it again with the same settings returns the same handle; with other settings, the
    previous setup is flushed and replaced. An exporter named in code that does not exist
    raises `ValueError`; one named in the environment is logged and skipped, since the
    environment belongs to the end user.
    """
    resolved = resolve_settings(**settings)
    named_in_code = settings.get("exporter") is not None
    global _current
    with _lock:
        if _current is not None and _current.enabled and _current.settings == resolved and not metric_readers:
            return _current
        if _current is not None:
            _current.shutdown()
        _state.set_active(resolved)
        if not resolved.enabled:
            _instrument.uninstrument_all()
            _current = Telemetry(resolved)
            _logger.debug("sdk-telemetry: disabled (%s)", resolved.disabled_reason)
            return _current
        _current = _build(resolved, metric_readers, named_in_code)
        _register_exit_hook()
        return _current


def current_telemetry() -> Telemetry | None:
    """The handle of the active setup, if `configure_telemetry()` has been called."""
    return _current


def _build(settings: Settings, metric_readers: Sequence[MetricReader], strict: bool) -> Telemetry:
    resource = _resource(settings)
    tracer_provider = _tracer_provider(resource)
    processors: list[tuple[str, BatchSpanProcessor]] = []
    for name in settings.traces_exporters:
        try:
            span_exporter = _exporters.span_exporter(name, settings)
        except _exporters.UnknownExporterError:
            if strict:
                raise
            _logger.error("sdk-telemetry: OTEL_TRACES_EXPORTER names an unknown exporter %r; skipped", name)
            continue
        processors.append(
            (
                name,
                BatchSpanProcessor(
                    span_exporter,
                    max_queue_size=settings.queue_size,
                    max_export_batch_size=settings.batch_size,
                    schedule_delay=settings.batch_interval,
                    shutdown_timeout=settings.exit_timeout,
                ),
            )
        )
    if tracer_provider is not None:
        forwarder = _forwarders.get(id(tracer_provider))
        if forwarder is None:
            forwarder = _forwarders[id(tracer_provider)] = _Forwarder()
            tracer_provider.add_span_processor(forwarder)
        forwarder.settings = settings
        forwarder.processors = tuple(processor for _, processor in processors)
    _meter_provider(resource, settings, metric_readers, strict)
    return Telemetry(settings, processors)


def _resource(settings: Settings) -> Resource:
    attributes: dict[str, Any] = {
        attr.HOST_NAME: socket.gethostname(),
        attr.OS_TYPE: platform.system().lower(),
    }
    for key, value in (
        (attr.SERVICE_NAME, settings.service_name),
        (attr.SERVICE_VERSION, settings.service_version),
        (attr.DEPLOYMENT_ENVIRONMENT, settings.environment),
        (attr.PROJECT_ID, settings.project_id),
        (attr.PROVIDER, settings.provider),
    ):
        if value:
            attributes[key] = value
    return Resource.create(attributes)


def _tracer_provider(resource: Resource) -> TracerProvider | None:
    """The application's SDK TracerProvider if it has one (we add to it), else a new global one."""
    existing = trace.get_tracer_provider()
    if isinstance(existing, TracerProvider):
        return existing
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    trace.set_tracer_provider(provider)
    if trace.get_tracer_provider() is not provider:
        _logger.warning("sdk-telemetry: a non-SDK TracerProvider is installed; spans will not be exported")
        return None
    return provider


def _meter_provider(
    resource: Resource, settings: Settings, metric_readers: Sequence[MetricReader], strict: bool
) -> None:
    readers = list(metric_readers)
    for name in settings.metrics_exporters:
        try:
            readers.append(PeriodicExportingMetricReader(_exporters.metric_exporter(name)))
        except _exporters.UnknownExporterError:
            if strict:
                raise
            _logger.error("sdk-telemetry: OTEL_METRICS_EXPORTER names an unknown exporter %r; skipped", name)
    if not readers:
        return
    existing = metrics.get_meter_provider()
    if isinstance(existing, MeterProvider):
        _logger.warning("sdk-telemetry: the application's MeterProvider is kept; its readers receive our metrics")
        return
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers, shutdown_on_exit=True))


def _register_exit_hook() -> None:
    global _exit_hook_registered
    if not _exit_hook_registered:
        atexit.register(_shutdown_at_exit)
        _exit_hook_registered = True


def _shutdown_at_exit() -> None:
    telemetry = _current
    if telemetry is not None:
        try:
            telemetry.shutdown()
        except Exception:
            _logger.exception("sdk-telemetry: shutdown at exit failed")
