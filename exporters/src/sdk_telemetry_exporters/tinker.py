"""The Tinker-style session wire format, as an OpenTelemetry log record exporter.

Each export groups the records by session and POSTs them, at most 100 events per request, to
`{base}/api/v1/telemetry` with an `X-API-Key` header:

    {"session_id": ..., "platform": "Linux", "sdk_version": ..., "process_uuid": ...,
     "events": [{"event": "GENERIC_EVENT", "event_id": ..., "event_session_index": 0,
                 "severity": "INFO", "timestamp": "2026-11-22T10:30:45.123456Z",
                 "event_name": ..., "event_data": {...}}, ...]}

The event attributes below are written by `sdk_telemetry`'s sessions; a record without them
(any other log record) is sent as a `GENERIC_EVENT` named after its event name.
"""

from __future__ import annotations

import itertools
import logging
import os
import platform
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import orjson
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

from sdk_telemetry_exporters import attributes as attr
from sdk_telemetry_exporters._env import ExporterSettings
from sdk_telemetry_exporters._transport import HttpTransport

_logger = logging.getLogger(__name__)

PATH = "/api/v1/telemetry"
MAX_BATCH = 100

# Event types of the wire format.
SESSION_START = "SESSION_START"
SESSION_END = "SESSION_END"
UNHANDLED_EXCEPTION = "UNHANDLED_EXCEPTION"
GENERIC_EVENT = "GENERIC_EVENT"
EVENT_TYPES = frozenset({SESSION_START, SESSION_END, UNHANDLED_EXCEPTION, GENERIC_EVENT})
SEVERITIES = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# Log record attributes of a session event (`session.id` is `attributes.SESSION_ID`).
EVENT_TYPE = "sdk_telemetry.event.type"
EVENT_ID = "sdk_telemetry.event.id"
EVENT_INDEX = "sdk_telemetry.event.session_index"
SESSION_DURATION = "sdk_telemetry.session.duration"
# OpenTelemetry semantic conventions of an exception.
EXCEPTION_TYPE = "exception.type"
EXCEPTION_MESSAGE = "exception.message"
EXCEPTION_STACKTRACE = "exception.stacktrace"

_process_uuid = str(uuid.uuid4())


def _new_process_uuid() -> None:
    global _process_uuid
    _process_uuid = str(uuid.uuid4())


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_process_uuid)


def process_uuid() -> str:
    """This process's uuid; a forked child gets a new one."""
    return _process_uuid


def iso_timestamp(time_ns: int) -> str:
    """ISO-8601 UTC with microseconds, ending in `Z`."""
    moment = datetime.fromtimestamp(time_ns / 1e9, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def severity_name(record: ReadableLogRecord) -> str:
    """One of the five severities: the record's text if it is one, else from its severity number."""
    text = (record.log_record.severity_text or "").upper()
    if text in SEVERITIES:
        return text
    number = record.log_record.severity_number
    value = number.value if isinstance(number, SeverityNumber) else 9
    for limit, name in ((5, "DEBUG"), (9, "INFO"), (13, "WARNING"), (17, "ERROR"), (21, "CRITICAL")):
        if value < limit + 4:
            return name
    return "CRITICAL"


class TinkerLogExporter(LogRecordExporter):
    """Exports session events in the Tinker format.

    Built with no arguments (as `OTEL_LOGS_EXPORTER=tinker` builds it) it reads
    `SDK_TELEMETRY_ENDPOINT`, `SDK_TELEMETRY_API_KEY`, `SDK_TELEMETRY_HEADERS` and
    `SDK_TELEMETRY_TIMEOUT`; with no endpoint it sends nothing. Never raises.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        sdk_version: str | None = None,
        settings: ExporterSettings | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {
            "events_sent": 0,
            "events_failed": 0,
            "events_rejected": 0,
            "requests_sent": 0,
            "requests_failed": 0,
        }
        self.last_error: str | None = None
        self.last_error_time: float | None = None
        self._sdk_version = sdk_version
        self._fallback_session = uuid.uuid4().hex
        self._indexes: dict[str, itertools.count[int]] = {}
        try:
            env = settings or ExporterSettings.from_env()
            base = (endpoint or env.endpoint or "").rstrip("/")
            self._url = base + PATH if base else None
            request_headers = {"Content-Type": "application/json", **dict(env.headers), **dict(headers or {})}
            key = api_key or env.api_key
            if key:
                request_headers["X-API-Key"] = key
            self._timeout = timeout or env.timeout
            self._transport = HttpTransport(request_headers, timeout=self._timeout)
        except Exception:  # a constructor must never raise into the host program
            _logger.exception("sdk-telemetry: tinker exporter misconfigured; it will send nothing")
            self._url = None
            self._timeout = 5.0
            self._transport = HttpTransport(timeout=self._timeout)
        if self._url is None:
            _logger.warning("sdk-telemetry: tinker exporter has no endpoint (set SDK_TELEMETRY_ENDPOINT)")

    @property
    def url(self) -> str | None:
        """Where the batches go, or None when no endpoint is configured."""
        return self._url

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Send the records, one session per request and at most 100 events per request."""
        deadline = time.monotonic() + self._timeout * 2
        sessions: dict[str, tuple[ReadableLogRecord, list[dict[str, Any]]]] = {}
        for record in batch:
            try:
                session_id = self._session_id(record)
                event = self.event(record, session_id)
            except Exception:
                _logger.exception("sdk-telemetry: could not map a log record to a tinker event")
                self._count("events_failed")
                continue
            sessions.setdefault(session_id, (record, []))[1].append(event)
        all_ok = True
        for session_id, (first, events) in sessions.items():
            for start in range(0, len(events), MAX_BATCH):
                chunk = events[start : start + MAX_BATCH]
                all_ok &= self._send(self.request_body(session_id, first, chunk), len(chunk), deadline)
        return LogRecordExportResult.SUCCESS if all_ok else LogRecordExportResult.FAILURE

    def request_body(self, session_id: str, record: ReadableLogRecord, events: list[dict[str, Any]]) -> dict[str, Any]:
        """The request object around `events` (the fields of wire-formats §2, nothing else)."""
        version = self._sdk_version or (
            record.resource.attributes.get(attr.SERVICE_VERSION) if record.resource else None
        )
        return {
            "session_id": session_id,
            "platform": platform.system(),
            "sdk_version": str(version or "unknown"),
            "process_uuid": process_uuid(),
            "events": events,
        }

    def event(self, record: ReadableLogRecord, session_id: str) -> dict[str, Any]:
        """One wire event from one log record."""
        log = record.log_record
        attributes: Mapping[str, Any] = log.attributes or {}
        kind = str(attributes.get(EVENT_TYPE) or GENERIC_EVENT)
        if kind not in EVENT_TYPES:
            kind = GENERIC_EVENT
        index = attributes.get(EVENT_INDEX)
        if not isinstance(index, int) or isinstance(index, bool):
            index = next(self._indexes.setdefault(session_id, itertools.count()))
        timestamp = log.timestamp or log.observed_timestamp or time.time_ns()
        event: dict[str, Any] = {
            "event": kind,
            "event_id": str(attributes.get(EVENT_ID) or uuid.uuid4()),
            "event_session_index": index,
            "severity": severity_name(record),
            "timestamp": iso_timestamp(timestamp),
        }
        if kind == SESSION_END:
            event["duration"] = str(attributes.get(SESSION_DURATION) or "0:00:00")
        elif kind == UNHANDLED_EXCEPTION:
            error_type = str(attributes.get(EXCEPTION_TYPE) or "Exception")
            event["error_type"] = error_type.rsplit(".", 1)[-1]
            event["error_message"] = str(attributes.get(EXCEPTION_MESSAGE) or "")
            stacktrace = attributes.get(EXCEPTION_STACKTRACE)
            if stacktrace:
                event["traceback"] = str(stacktrace)
        elif kind == GENERIC_EVENT:
            event["event_name"] = str(log.event_name or "log")
            event["event_data"] = _event_data(log.body, attributes)
        return event

    def shutdown(self) -> None:
        """Interrupt any retry wait and release connections."""
        self._transport.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is held here between exports."""
        return True

    def stats(self) -> dict[str, Any]:
        """Counters of events and requests sent, failed and rejected, and the last error."""
        with self._lock:
            result: dict[str, Any] = dict(self.counts)
            result["last_error"] = self.last_error
            result["last_error_time"] = self.last_error_time
        result["retries"] = getattr(self._transport, "retries", 0)
        return result

    def _session_id(self, record: ReadableLogRecord) -> str:
        attributes: Mapping[str, Any] = record.log_record.attributes or {}
        session = attributes.get(attr.SESSION_ID)
        if not session and record.resource is not None:
            session = record.resource.attributes.get(attr.SESSION_ID)
        return str(session or self._fallback_session)

    def _send(self, body: dict[str, Any], events: int, deadline: float) -> bool:
        if self._url is None:
            self._count("events_failed", events)
            return False
        result = self._transport.post(self._url, orjson.dumps(body, default=str), deadline)
        if result.ok:
            self._count("requests_sent")
            self._count("events_sent", events)
            return True
        with self._lock:
            self.counts["requests_failed"] += 1
            self.counts["events_rejected" if result.permanent else "events_failed"] += events
            self.last_error = f"POST {PATH}: {result.error} after {result.attempts} attempt(s), {events} event(s)"
            self.last_error_time = time.time()
        _logger.debug("sdk-telemetry: %s", self.last_error)
        return False

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counts[key] += n


def _event_data(body: Any, attributes: Mapping[str, Any]) -> dict[str, Any]:
    """`event_data`: a mapping body as it is; any other record's body and plain attributes."""
    if isinstance(body, Mapping):
        return {str(key): value for key, value in body.items()}
    data: dict[str, Any] = {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in attributes.items()
        if not key.startswith("sdk_telemetry.") and key != attr.SESSION_ID
    }
    if body is not None:
        data["body"] = body if isinstance(body, (str, int, float, bool, list)) else str(body)
    return data
