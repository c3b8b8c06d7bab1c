"""`configure_telemetry()` and `create_telemetry()`: providers, resource, processors, exporters,
the session, and the handle they return.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import logging
import platform
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from opentelemetry import metrics, trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from sdk_telemetry_exporters import attributes as attr
from sdk_telemetry_exporters.notices import warn
from typing_extensions import Unpack

from sdk_telemetry import pipeline
from sdk_telemetry.config import ENDUSER_ID, Settings, SettingsArguments, activate, resolve_settings
from sdk_telemetry.http import instrument_http
from sdk_telemetry.instrument import PrivateIdGenerator, refresh_tracer, uninstrument_all
from sdk_telemetry.pipeline import (
    BatchSpanProcessor,
    EventQueue,
    Forwarder,
    exporters_health,
    health_summary,
    undelivered,
)
from sdk_telemetry.session import (
    CaptureExceptions,
    EventRecord,
    Session,
    exception_details,
    listening,
    notify,
    severity_name,
    validate_event,
)
from sdk_telemetry.session import create_task as _create_task

_logger = logging.getLogger(__name__)
_lock = threading.RLock()
_current: Telemetry | None = None
_forwarders: dict[int, Forwarder] = {}
_handles: set[Telemetry] = set()  # handles made by create_telemetry(), until they are shut down
_exit_hook_registered = False
T = TypeVar("T")


class Telemetry:
    """The handle of one telemetry setup: its session and events, flush, shut down, read its counters."""

    def __init__(
        self,
        settings: Settings,
        processors: Sequence[tuple[str, BatchSpanProcessor]] = (),
        session: Session | None = None,
        logger_provider: LoggerProvider | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.settings = settings
        self._processors = list(processors)
        self.session = session or Session(settings.session.session_id, enabled=False, privacy=settings.privacy)
        self.logger_provider = logger_provider
        self.tracer_provider = tracer_provider
        self._shut_down = False
        self._lost_at_flush = 0  # items lost up to the last `flush()`: a flush answers for what came after
        self._on_shutdown: list[Callable[[], None]] = []

    @property
    def enabled(self) -> bool:
        """False when telemetry is off (then nothing is recorded or sent)."""
        return self.settings.enabled and not self._shut_down

    @property
    def session_id(self) -> str:
        """The id of this handle's session (on the resource and on every event)."""
        return self.session.id

    @property
    def processors(self) -> tuple[BatchSpanProcessor, ...]:
        """The batching stage of each exporter."""
        return tuple(processor for _, processor in self._processors)

    @property
    def echo_events(self) -> bool:
        """Whether every event is also written to the `sdk_telemetry.events` Python logger."""
        return self.session.echo

    @echo_events.setter
    def echo_events(self, value: bool) -> None:
        self.session.echo = bool(value)

    # --- events ----------------------------------------------------------------------------

    def log(self, name: str, data: Mapping[str, Any] | None = None, severity: str | int = "INFO") -> bool:
        """Record a `GENERIC_EVENT`; False when it was dropped or telemetry is off.

        `severity`: DEBUG, INFO, WARNING, ERROR or CRITICAL in any case, or a `logging` level;
        anything else raises `ValueError`. `data` is scrubbed like call arguments.
        """
        if listening():
            level = validate_event(name, data, severity)
            notify(
                EventRecord(
                    attr.GENERIC_EVENT, name, level, self.settings.privacy.scrubber.structure(dict(data or {}), (), 0)
                )
            )
        return self.session.log(name, data, severity) if self.enabled else _validated(name, data, severity)

    def log_exception(self, exc: BaseException, severity: str | int = "ERROR") -> bool:
        """Record an `UNHANDLED_EXCEPTION` (type, redacted message, traceback), sent at once in the background."""
        level = severity_name(severity)
        if listening() and isinstance(exc, BaseException):
            details = exception_details(exc, self.settings.privacy.scrubber)
            notify(EventRecord(attr.UNHANDLED_EXCEPTION, type(exc).__name__, level, details))
        return self.session.log_exception(exc, severity) if self.enabled else False

    def log_fatal_exception(self, exc: BaseException, severity: str | int = "CRITICAL") -> bool:
        """Record the exception, end the session, and wait until everything is sent (at most the fatal timeout).

        Returns True when it was all sent in time. Logs the session id.
        """
        severity_name(severity)
        if not self.enabled:
            return False
        deadline = time.monotonic() + self.settings.session.fatal_timeout
        drained = self.session.log_fatal_exception(exc, severity)
        remaining = max(0.0, deadline - time.monotonic())
        return all([processor.force_flush(int(remaining * 1000)) for processor in self.processors]) and drained

    def capture_exceptions(self, fatal: bool = False, severity: str | int = "ERROR") -> CaptureExceptions:
        """A context manager (`with`, `async with`) and decorator (sync and async functions) that
        records an escaping exception and re-raises it unchanged; a no-op when telemetry is off."""
        return CaptureExceptions(self, fatal=fatal, severity=severity)

    def create_task(
        self,
        coroutine: Coroutine[Any, Any, T],
        *,
        name: str | None = None,
        fatal: bool = False,
        severity: str | int = "ERROR",
    ) -> asyncio.Task[T]:
        """`asyncio.create_task(coroutine)` whose exception, if it raises one, is recorded too."""
        return _create_task(self, coroutine, name=name, fatal=fatal, severity=severity)

    # --- delivery --------------------------------------------------------------------------

    def flush(self, timeout: float = 5.0, wait: bool = True) -> bool:
        """Export the spans and events recorded so far.

        With `wait` (the default): True when all of it was delivered within `timeout` seconds;
        False when some of it is still queued, waits in the disk spool (spooled is not delivered:
        it is resent later), or was lost since the previous flush (see `health()` for why).
        Without: ask for it to be sent now and return True at once.
        """
        if not self.enabled:
            return True
        if not wait:
            for processor in self.processors:
                processor.force_flush(0)  # wakes the worker, waits for nothing
            self.session.request_flush()
            return True
        deadline = time.monotonic() + timeout
        spans_ok = all([processor.force_flush(int(timeout * 1000)) for processor in self.processors])
        events_ok = all(
            [queue.force_flush(int(max(0.0, deadline - time.monotonic()) * 1000)) for _, queue in self.session.queues]
        )
        lost, pending = undelivered(self.stats())
        newly_lost, self._lost_at_flush = lost - self._lost_at_flush, lost
        return spans_ok and events_ok and newly_lost <= 0 and pending == 0

    def wait_until_drained(self, timeout: float = 5.0) -> bool:
        """True once every event pushed so far has been sent (the flush counter reached the push
        counter, as in Tinker) and the spans are flushed; False when `timeout` seconds passed first."""
        if not self.enabled:
            return True
        deadline = time.monotonic() + timeout
        events_ok = self.session.wait_until_drained(timeout)
        remaining = max(0.0, deadline - time.monotonic())
        spans_ok = all([processor.force_flush(int(remaining * 1000)) for processor in self.processors])
        return events_ok and spans_ok

    def shutdown(self, timeout: float | None = None) -> None:
        """End the session (`SESSION_END`, once), flush and stop within `timeout` s (default: the exit timeout)."""
        with _lock:
            if self._shut_down:
                return
            self._shut_down = True
            _handles.discard(self)
        self.session.end()
        limit = self.settings.exit_timeout if timeout is None else timeout
        stoppers = [p.shutdown for p in self.processors] + [q.shutdown for _, q in self.session.queues]
        _shutdown_all(stoppers, limit)
        for hook in self._on_shutdown:
            try:
                hook()
            except Exception:
                _logger.debug("sdk-telemetry: a shutdown step failed", exc_info=True)

    def stats(self) -> dict[str, Any]:
        """Counters per exporter (queued, exported, failed, dropped by reason, last error), totals, and the session."""
        result: dict[str, Any] = {
            "enabled": self.settings.enabled,
            "disabled_reason": self.settings.disabled_reason,
            "exporters": {},
        }
        totals = dict.fromkeys(("pushed", "queued", "exported", "failed", "dropped"), 0)
        totals.update(retried=0, spooled=0, resent=0, lost=0)
        for name, processor in self._processors:
            entry = processor.stats()
            exporter_stats = getattr(processor.exporter, "stats", None)
            if callable(exporter_stats):
                entry["exporter"] = exporter_stats()
            result["exporters"][name] = entry
            for key in ("pushed", "queued", "exported", "failed"):
                totals[key] += entry.get(key, 0)
            totals["dropped"] += sum(entry["dropped"].values())
            exporter = entry.get("exporter") or {}
            # lost: dropped here, plus what the exporter dropped (refused by the server, spool full or expired)
            totals["lost"] += sum(entry["dropped"].values()) + sum((exporter.get("dropped") or {}).values())
            # The exporter's spool counts what it spooled itself and what the processor handed it at exit.
            totals["spooled"] += exporter.get("spooled", entry.get("spooled", 0))
            for key in ("retried", "resent"):
                totals[key] += exporter.get(key, 0)
        result.update(totals)
        session = self.session.stats()
        for name, queue in self.session.queues:
            exporter_stats = getattr(queue.exporter, "stats", None)
            if callable(exporter_stats):
                session["exporters"][name]["exporter"] = exporter_stats()
        result["session"] = session
        result["privacy"] = pipeline.privacy_stats()
        return result

    def health(self) -> str:
        """One line of status (`ok`, `degraded`, `failing` or `disabled`) summarising `stats()`: per
        exporter what was sent and lost and, when it is not ok, what is wrong and since when."""
        return health_summary(self.stats())

    def health_details(self) -> dict[str, dict[str, Any]]:
        """Per exporter (events exporters as `<name> events`): `level`, `problem`, `since` (a Unix
        time, or None), `exported`, `lost` and `pending_batches`; the fields behind `health()`."""
        if not self.settings.enabled:
            return {}
        return {
            state.name: {
                "level": state.level,
                "problem": state.problem,
                "since": state.since,
                "exported": state.exported,
                "lost": state.lost,
                "pending_batches": state.pending_batches,
            }
            for state in exporters_health(self.stats())
        }

    def _queues(self) -> Iterable[tuple[dict[str, str], Callable[[], dict[str, Any]]]]:
        """Every queue of this handle, for the queue metrics."""
        base = {pipeline.QUEUE_SESSION: self.session.id}
        for name, processor in self._processors:
            yield {**base, pipeline.QUEUE_EXPORTER: name, pipeline.QUEUE_SIGNAL: "spans"}, processor.stats
        for name, queue in self.session.queues:
            yield {**base, pipeline.QUEUE_EXPORTER: name, pipeline.QUEUE_SIGNAL: "events"}, queue.stats


def _validated(name: str, data: Mapping[str, Any] | None, severity: str | int) -> bool:
    """Check `log()`'s arguments when telemetry is off (bad input fails the same way either way)."""
    validate_event(name, data, severity)
    return False


def _shutdown_all(stoppers: Sequence[Callable[[float], None]], limit: float) -> None:
    """Run the shutdowns side by side, so that together they take at most `limit` seconds."""
    threads = [threading.Thread(target=stop, args=(limit,), daemon=True) for stop in stoppers]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + limit + 0.5
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


def configure_telemetry(
    *, metric_readers: Sequence[MetricReader] = (), **settings: Unpack[SettingsArguments]
) -> Telemetry:
    """Set up telemetry for this process and return its handle.

    Settings (see `SettingsArguments` and the README's table): `service_name`,
    `service_version`, `environment`, `exporter`, `endpoint`, `api_key`, `headers`, `timeout`,
    `project_id`, `provider`, `user_id`, `batch_size`, `batch_interval`, `queue_size`, `exit_timeout`,
    `capture_args`, `store_path`, `metrics_exporter`, `enabled`, `enable_variable`, and the
    session's `session_id`, `events_exporter`, `echo_events`, `fatal_timeout`, `http_spans`,
    `http_propagation`.
    Each overrides its environment variable; with nothing configured, spans go to the local
    store on disk. `metric_readers` receive the invocation and queue metrics.

    Calling it again with the same settings returns the same handle; with other settings, the
    previous setup is flushed and replaced (its session ends). An exporter named in code that
    does not exist raises `ValueError`; one named in the environment is logged and skipped,
    since the environment belongs to the end user. For a second, independent handle (a second
    SDK client with its own session) use `create_telemetry()`.
    """
    resolved = resolve_settings(**settings)
    named_in_code = settings.get("exporter") is not None or settings.get("events_exporter") is not None
    global _current
    with _lock:
        if _current is not None and _current.enabled and _current.settings == resolved and not metric_readers:
            return _current
        if _current is not None:
            _current.shutdown()
        activate(resolved)
        if not resolved.enabled:
            uninstrument_all()
            _current = Telemetry(resolved)
            _logger.debug("sdk-telemetry: disabled (%s)", resolved.disabled_reason)
            return _current
        _current = _build(resolved, metric_readers, named_in_code, global_=True)
        _register_exit_hook()
        return _current


def create_telemetry(**settings: Unpack[SettingsArguments]) -> Telemetry:
    """A new, independent telemetry handle with its own session, beside the global setup.

    For a second SDK client in the same process: its events, exceptions and spans (of its
    `tracer_provider`) are exported by its own exporters in its own session and never mixed
    with another handle's. It replaces nothing global (no tracer, meter or instrumentation
    change), and its session ends at `shutdown()` or at interpreter exit. Settings as for
    `configure_telemetry()`.
    """
    resolved = resolve_settings(**settings)
    if not resolved.enabled:
        return Telemetry(resolved)
    named_in_code = settings.get("exporter") is not None or settings.get("events_exporter") is not None
    telemetry = _build(resolved, (), named_in_code, global_=False)
    with _lock:
        _handles.add(telemetry)
    _register_exit_hook()
    return telemetry


def current_telemetry() -> Telemetry | None:
    """The handle of the active setup, if `configure_telemetry()` has been called."""
    return _current


def _build(settings: Settings, metric_readers: Sequence[MetricReader], strict: bool, global_: bool) -> Telemetry:
    session_id = settings.session.session_id or None
    session = Session(session_id, enabled=True)  # the id first: it goes on the resource
    resource = _resource(settings, session.id)
    tracer_provider = (
        _tracer_provider(resource)
        if global_
        else TracerProvider(resource=resource, shutdown_on_exit=False, id_generator=PrivateIdGenerator())
    )
    processors: list[tuple[str, BatchSpanProcessor]] = []
    for name in settings.traces_exporters:
        if name in pipeline.EVENTS_ONLY:
            continue  # its failed calls arrive as events, through the session
        try:
            span_exporter = pipeline.span_exporter(name, settings)
        except pipeline.UnknownExporterError as error:
            if strict:
                raise
            _skipped(settings.exporters_variable or "OTEL_TRACES_EXPORTER", name, error, settings.traces_exporters)
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
    queues = _event_queues(settings, strict)
    logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    logger_provider.add_log_record_processor(pipeline.EndUserStamp())  # first: the queues see its attribute
    for _, queue in queues:
        logger_provider.add_log_record_processor(queue)
    session = Session(
        session.id,
        logger_provider=logger_provider,
        queues=queues,
        echo=settings.session.echo_events,
        fatal_timeout=settings.session.fatal_timeout,
        privacy=settings.privacy,
    )
    telemetry = Telemetry(settings, processors, session, logger_provider, tracer_provider)
    if tracer_provider is not None:
        forwarder = _forwarders.get(id(tracer_provider)) if global_ else None
        if forwarder is None:
            forwarder = Forwarder(functools.partial(_shutdown_handle, None if global_ else telemetry))
            if global_:
                _forwarders[id(tracer_provider)] = forwarder
            tracer_provider.add_span_processor(forwarder)
        forwarder.tag_session = tracer_provider.resource.attributes.get(attr.SESSION_ID) != session.id
        forwarder.use(tuple(processor for _, processor in processors), settings, session)
        refresh_tracer()
    if global_:
        _meter_provider(resource, settings, metric_readers, strict)
        if settings.session.http_spans:
            telemetry._on_shutdown.append(instrument_http(tracer_provider, settings.session.http_propagation))
    pipeline.register_queue_metrics(_all_queues)
    session.start()
    return telemetry


def _skipped(variable: str, name: str, error: Exception, named: Sequence[str]) -> None:
    """Warn that `variable` names an exporter that does not exist, and what is used instead."""
    rest = [other for other in named if other != name]
    instead = f"using {', '.join(rest)} only" if rest else "nothing is exported for it"
    warn(f"exporter:{variable}={name}", "%s: %s; skipped, %s", variable, error, instead)


def _event_queues(settings: Settings, strict: bool) -> list[tuple[str, EventQueue]]:
    queues: list[tuple[str, EventQueue]] = []
    for name in settings.session.events_exporters_for(settings.traces_exporters):
        try:
            exporter = pipeline.log_exporter(name, settings)
        except pipeline.UnknownExporterError as error:
            if strict:
                raise
            _skipped("OTEL_LOGS_EXPORTER", name, error, settings.session.events_exporters or ())
            continue
        queue = EventQueue(
            exporter,
            max_queue_size=settings.queue_size,
            max_export_batch_size=settings.batch_size,
            schedule_delay=settings.batch_interval,
            shutdown_timeout=settings.exit_timeout,
        )
        queues.append((name, queue))
    return queues


def _all_queues() -> Iterable[tuple[dict[str, str], Callable[[], dict[str, Any]]]]:
    """The queues of every live handle (the global one and those of `create_telemetry()`)."""
    with _lock:
        handles = [_current, *_handles]
    for telemetry in handles:
        if telemetry is not None and telemetry.enabled:
            yield from telemetry._queues()


def _resource(settings: Settings, session_id: str) -> Resource:
    attributes: dict[str, Any] = {
        attr.HOST_NAME: socket.gethostname(),
        attr.OS_TYPE: platform.system().lower(),
        attr.SESSION_ID: session_id,
    }
    for key, value in (
        (attr.SERVICE_NAME, settings.service_name),
        (attr.SERVICE_VERSION, settings.service_version),
        (attr.DEPLOYMENT_ENVIRONMENT, settings.environment),
        (attr.PROJECT_ID, settings.project_id),
        (attr.PROVIDER, settings.provider),
        (ENDUSER_ID, settings.user_id),
    ):
        if value:
            attributes[key] = value
    return Resource.create(attributes)


def _tracer_provider(resource: Resource) -> TracerProvider | None:
    """The application's SDK TracerProvider if it has one (we add to it), else a new global one."""
    existing = trace.get_tracer_provider()
    if isinstance(existing, TracerProvider):
        return existing
    # Ids of its own, so that spans made through it (HTTP children too) leave the global `random` alone.
    provider = TracerProvider(resource=resource, shutdown_on_exit=False, id_generator=PrivateIdGenerator())
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
            readers.append(PeriodicExportingMetricReader(pipeline.metric_exporter(name)))
        except pipeline.UnknownExporterError as error:
            if strict:
                raise
            _skipped("OTEL_METRICS_EXPORTER", name, error, settings.metrics_exporters)
    if not readers:
        return
    existing = metrics.get_meter_provider()
    if isinstance(existing, MeterProvider):
        _logger.warning("sdk-telemetry: the application's MeterProvider is kept; its readers receive our metrics")
        return
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers, shutdown_on_exit=True))


def _shutdown_handle(owner: Telemetry | None) -> None:
    """Shut down `owner`, or the current global handle when None (a provider's shutdown reaches here)."""
    telemetry = owner or _current
    if telemetry is not None:
        telemetry.shutdown()


def _register_exit_hook() -> None:
    global _exit_hook_registered
    if not _exit_hook_registered:
        atexit.register(_shutdown_at_exit)
        _exit_hook_registered = True


def _shutdown_at_exit() -> None:
    """End every live handle's session and flush, side by side, each within its exit bound."""
    with _lock:
        handles = [telemetry for telemetry in (_current, *_handles) if telemetry is not None]
    if not handles:
        return
    limit = max(telemetry.settings.exit_timeout for telemetry in handles)
    _shutdown_all([functools.partial(_quiet_shutdown, telemetry) for telemetry in handles], limit)


def _quiet_shutdown(telemetry: Telemetry, _limit: float) -> None:
    try:
        telemetry.shutdown()
    except Exception:
        _logger.exception("sdk-telemetry: shutdown at exit failed")
