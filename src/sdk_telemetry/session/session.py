"""A session's event log: `SESSION_START`, generic events, exceptions and `SESSION_END`, each
emitted as an OpenTelemetry log record on the session's own `LoggerProvider`.

Every record carries `session.id`, an event id, its index within the session (0, 1, 2, …) and
the event type; the exporters map them onto their wire formats (`tinker`, OTLP, console).
Event data passes through the privacy scrubbing; exception messages and tracebacks are redacted.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import traceback
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import NonRecordingSpan, StatusCode
from sdk_telemetry_exporters import attributes as attr
from sdk_telemetry_exporters.fork import reinit_after_fork

from sdk_telemetry._version import __version__
from sdk_telemetry.config import current_settings
from sdk_telemetry.instrument import claim_error_id, error_type
from sdk_telemetry.pipeline import EventQueue, accepted, begin_offer
from sdk_telemetry.privacy import PrivacySettings, Scrubber, consent_granted, count_withheld, withheld

_logger = logging.getLogger(__name__)
#: The Python logger that echoes every event when `echo_events` is on.
echo_logger = logging.getLogger("sdk_telemetry.events")

SEVERITIES = attr.SEVERITIES
_LOGGING_LEVELS = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.CRITICAL,
}
_BY_LEVEL = {level: name for name, level in _LOGGING_LEVELS.items()}
_SEVERITY_NUMBERS = {
    "DEBUG": SeverityNumber.DEBUG,
    "INFO": SeverityNumber.INFO,
    "WARNING": SeverityNumber.WARN,
    "ERROR": SeverityNumber.ERROR,
    "CRITICAL": SeverityNumber.FATAL,
}
_EVENT_NAMES = {
    attr.SESSION_START: "session.start",
    attr.SESSION_END: "session.end",
    attr.UNHANDLED_EXCEPTION: "exception",
}
_RECORDED_LIMIT = 1024


def severity_name(severity: str | int) -> str:
    """`DEBUG`, `INFO`, `WARNING`, `ERROR` or `CRITICAL` from a name in any case or a `logging` level.

    Raises `ValueError` for anything else.
    """
    if isinstance(severity, str) and severity.strip().upper() in _LOGGING_LEVELS:
        return severity.strip().upper()
    if isinstance(severity, int) and not isinstance(severity, bool) and severity in _BY_LEVEL:
        return _BY_LEVEL[severity]
    raise ValueError(
        f"severity must be one of {', '.join(SEVERITIES)} (any case) or a logging level "
        f"(10, 20, 30, 40, 50), not {severity!r}"
    )


def validate_event(name: str, data: Mapping[str, Any] | None, severity: str | int) -> str:
    """The severity's name; `ValueError` for an empty name or a bad severity, `TypeError` for non-mapping data."""
    level = severity_name(severity)
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"event name must be a non-empty string, not {name!r}")
    if data is not None and not isinstance(data, Mapping):
        raise TypeError(f"event data must be a mapping (a dict) or None, not {type(data).__name__}")
    return level


def exception_details(exc: BaseException, scrubber: Scrubber) -> dict[str, str]:
    """The exception's semantic-convention attributes: type, message and traceback redacted by `scrubber`."""
    try:
        message = str(exc)
    except Exception:
        message = f"<unprintable {type(exc).__name__}>"
    try:
        stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except Exception:
        stack = ""
    return {
        attr.EXCEPTION_TYPE: error_type(exc),
        attr.EXCEPTION_MESSAGE: scrubber.text(message, ()),
        attr.EXCEPTION_STACKTRACE: scrubber.text(stack, ()),
    }


class Session:
    """One session of one telemetry handle: its id, start time, event counter and queues."""

    def __init__(
        self,
        session_id: str | None = None,
        logger_provider: LoggerProvider | None = None,
        queues: Sequence[tuple[str, EventQueue]] = (),
        echo: bool = False,
        fatal_timeout: float = 2.0,
        enabled: bool = True,
        privacy: PrivacySettings | None = None,
    ) -> None:
        self.id = session_id or str(uuid.uuid4())
        self.start_time = datetime.now(timezone.utc)
        self._start = time.monotonic()
        self.enabled = enabled
        self.echo = echo
        self.fatal_timeout = fatal_timeout
        self.queues = list(queues)
        self.privacy = privacy if privacy is not None else current_settings().privacy
        self._logger = logger_provider.get_logger("sdk_telemetry.events", __version__) if logger_provider else None
        self._lock = threading.Lock()
        self._index = itertools.count()
        self._ended = False
        self._owner_pid = os.getpid()
        self._recorded: OrderedDict[str, None] = OrderedDict()
        self.logged = 0  # events this session produced, whether or not a queue took them
        if self._logger is not None:
            reinit_after_fork(self, _after_fork_in_child)

    @property
    def ended(self) -> bool:
        """True once `SESSION_END` was emitted (or the session was closed without one)."""
        return self._ended

    # --- events ----------------------------------------------------------------------------

    def start(self) -> bool:
        """Emit `SESSION_START` (index 0)."""
        return self._emit(attr.SESSION_START, "INFO", {})

    def log(self, name: str, data: Mapping[str, Any] | None = None, severity: str | int = "INFO") -> bool:
        """Emit a `GENERIC_EVENT`; False when it was dropped, the session ended or telemetry is off.

        Raises `ValueError` for an empty name or an unknown severity and `TypeError` for data
        that is not a mapping, whether telemetry is on or off.
        """
        level = validate_event(name, data, severity)
        if not self.enabled:
            return False
        try:
            body = self.privacy.scrubber.structure(dict(data or {}), (), 0)
        except Exception:
            _logger.debug("sdk-telemetry: could not scrub the data of event %r", name, exc_info=True)
            body = {}
        return self._emit(attr.GENERIC_EVENT, level, {}, body=body, event_name=name)

    def log_exception(self, exc: BaseException, severity: str | int = "ERROR") -> bool:
        """Emit an `UNHANDLED_EXCEPTION` (once per exception object and session); the queues send it at once."""
        level = severity_name(severity)
        if not isinstance(exc, BaseException):
            raise TypeError(f"log_exception takes an exception, not {type(exc).__name__}")
        if not self.enabled:
            return False
        try:
            error_id, _ = claim_error_id(exc)
            if not self._claim(error_id):
                return True  # already in this session (for example from the failed call's span)
            details = exception_details(exc, self.privacy.scrubber)
        except Exception:
            _logger.debug("sdk-telemetry: could not describe an exception", exc_info=True)
            return False
        return self._emit(attr.UNHANDLED_EXCEPTION, level, {**details, attr.ERROR_ID: error_id})

    def log_span_exception(self, span: ReadableSpan) -> bool:
        """Emit the `UNHANDLED_EXCEPTION` of a failed instrumented call, from its span."""
        if not self.enabled or span.status.status_code is not StatusCode.ERROR:
            return False
        attributes = span.attributes or {}
        if attributes.get(attr.ERROR_PROPAGATED):
            return False
        error_id = str(attributes.get(attr.ERROR_ID) or "")
        if error_id and not self._claim(error_id):
            return False
        exception: Mapping[str, Any] = {}
        timestamp = span.end_time
        scrubber = self.privacy.scrubber
        for event in span.events:
            if event.name == "exception":
                exception, timestamp = event.attributes or {}, event.timestamp
                break
        details = {
            attr.EXCEPTION_TYPE: str(
                attributes.get(attr.ERROR_TYPE) or exception.get(attr.EXCEPTION_TYPE) or "Exception"
            ),
            attr.EXCEPTION_MESSAGE: scrubber.text(str(exception.get(attr.EXCEPTION_MESSAGE) or ""), ()),
            attr.EXCEPTION_STACKTRACE: scrubber.text(str(exception.get(attr.EXCEPTION_STACKTRACE) or ""), ()),
            "code.function.name": span.name,
        }
        if error_id:
            details[attr.ERROR_ID] = error_id
        context = trace.set_span_in_context(NonRecordingSpan(span.context)) if span.context else None
        return self._emit(attr.UNHANDLED_EXCEPTION, "ERROR", details, timestamp=timestamp, context=context)

    def end(self) -> bool:
        """Emit `SESSION_END` with the session's duration, exactly once (never from a forked child)."""
        with self._lock:
            if self._ended:
                return False
            self._ended = True
        if os.getpid() != self._owner_pid:
            return False  # the session belongs to the parent process, which ends it
        duration = timedelta(seconds=time.monotonic() - self._start)
        return self._emit(attr.SESSION_END, "INFO", {attr.SESSION_DURATION: str(duration)}, ending=True)

    def log_fatal_exception(self, exc: BaseException, severity: str | int = "CRITICAL") -> bool:
        """The exception, then `SESSION_END`, then wait until drained (at most `fatal_timeout` s).

        Returns True when everything was sent in time.
        """
        severity_name(severity)
        if not self.enabled:
            return False
        self.log_exception(exc, severity)
        self.end()
        drained = self.wait_until_drained(self.fatal_timeout)
        _logger.info("sdk-telemetry: fatal exception recorded in session %s (sent: %s)", self.id, drained)
        return drained

    # --- flushing --------------------------------------------------------------------------

    def request_flush(self) -> None:
        """Ask every queue to send now, without waiting."""
        for _, queue in self.queues:
            queue.request_flush()

    def wait_until_drained(self, timeout: float) -> bool:
        """True once every queue's flush counter has reached its push counter; False after `timeout` s."""
        deadline = time.monotonic() + max(0.0, timeout)
        results = [queue.wait_until_drained(max(0.0, deadline - time.monotonic())) for _, queue in self.queues]
        return all(results)

    def stats(self) -> dict[str, Any]:
        """The session's id, start, state, and its events' push and flush counters per exporter."""
        queues = {name: queue.stats() for name, queue in self.queues}
        return {
            "id": self.id,
            "start_time": self.start_time.isoformat().replace("+00:00", "Z"),
            "ended": self._ended,
            "echo": self.echo,
            "logged": self.logged,
            "queue": sum(entry["queue"] for entry in queues.values()),
            "pushed": sum(entry["pushed"] for entry in queues.values()),
            "flushed": sum(entry["flushed"] for entry in queues.values()),
            "exporters": queues,
        }

    # --- internals -------------------------------------------------------------------------

    def _claim(self, error_id: str) -> bool:
        """True the first time this session sees `error_id`."""
        with self._lock:
            if error_id in self._recorded:
                return False
            self._recorded[error_id] = None
            while len(self._recorded) > _RECORDED_LIMIT:
                self._recorded.popitem(last=False)
            return True

    def _emit(
        self,
        kind: str,
        severity: str,
        attributes: Mapping[str, Any],
        body: Any = None,
        event_name: str | None = None,
        timestamp: int | None = None,
        context: Any = None,
        ending: bool = False,
    ) -> bool:
        if not self.enabled or (self._ended and not ending):
            return False
        if withheld() or (self.privacy.consent_required and not consent_granted()):
            count_withheld()
            return False
        if self.privacy.minimal:  # only the event's kind, name and error type leave
            body = None
            attributes = {
                key: value
                for key, value in attributes.items()
                if key not in (attr.EXCEPTION_MESSAGE, attr.EXCEPTION_STACKTRACE)
            }
        try:
            with self._lock:
                index = next(self._index)
                self.logged += 1
            record_attributes = {
                attr.SESSION_ID: self.id,
                attr.EVENT_TYPE: kind,
                attr.EVENT_ID: str(uuid.uuid4()),
                attr.EVENT_INDEX: index,
                **attributes,
            }
            name = event_name or _EVENT_NAMES.get(kind, kind)
            if self.echo:
                echo_logger.log(
                    _LOGGING_LEVELS[severity], "%s %s #%d session=%s %s", kind, name, index, self.id, body or ""
                )
            if self._logger is None:
                return False
            begin_offer()
            self._logger.emit(
                timestamp=timestamp or time.time_ns(),
                severity_number=_SEVERITY_NUMBERS[severity],
                severity_text=severity,
                body=body,
                attributes=record_attributes,
                event_name=name,
                context=context,
            )
            return accepted() > 0
        except Exception:
            _logger.debug("sdk-telemetry: could not emit a %s event", kind, exc_info=True)
            return False


def _after_fork_in_child(session: Session) -> None:
    """A forked child keeps the session (a new `process_uuid` tells it apart) but never ends it."""
    session._lock = threading.Lock()
