"""The Tinker-style session wire format, as an OpenTelemetry log record exporter.

Each export groups the records by session and POSTs them, at most 100 events per request, to
`{base}/api/v1/telemetry` with an `X-API-Key` header:

    {"session_id": ..., "platform": "Linux", "sdk_version": ..., "process_uuid": ...,
     "events": [{"event": "GENERIC_EVENT", "event_id": ..., "event_session_index": 0,
                 "severity": "INFO", "timestamp": "2026-11-22T10:30:45.123456Z",
                 "event_name": ..., "event_data": {...}}, ...]}

The event attributes (`attributes.EVENT_TYPE`, `EVENT_ID`, `EVENT_INDEX`, ...) are written by
`sdk_telemetry`'s sessions; a record without them (any other log record) is sent as a
`GENERIC_EVENT` named after its event name.

Delivery is the shared one (`_delivery.Delivery`, as the Composio exporter's): retries with
backoff and `Retry-After`, a 413 answered by sending each half (each with the whole envelope),
a final refusal dropped and counted, and what could not be sent now written to the disk spool
and resent later with the same event ids.
"""

from __future__ import annotations

import itertools
import logging
import platform
import threading
import time
import uuid
import weakref
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

from sdk_telemetry_exporters import attributes as attr
from sdk_telemetry_exporters._delivery import DeliveringExporter, delivery_for
from sdk_telemetry_exporters.config import ExporterSettings
from sdk_telemetry_exporters.fork import reinit_after_fork
from sdk_telemetry_exporters.spool import WireBatch

_logger = logging.getLogger(__name__)

PATH = "/api/v1/telemetry"
MAX_BATCH = 100


class _Process:
    """This process's identity; a forked child draws its own."""

    def __init__(self) -> None:
        self.uuid = str(uuid.uuid4())


_this_process = _Process()
reinit_after_fork(_this_process, _Process.__init__)


def process_uuid() -> str:
    """This process's uuid; a forked child gets a new one."""
    return _this_process.uuid


def iso_timestamp(time_ns: int) -> str:
    """ISO-8601 UTC with microseconds, ending in `Z`."""
    moment = datetime.fromtimestamp(time_ns / 1e9, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def severity_name(record: ReadableLogRecord) -> str:
    """One of the five severities: the record's text if it is one, else from its severity number."""
    text = (record.log_record.severity_text or "").upper()
    if text in attr.SEVERITIES:
        return text
    number = record.log_record.severity_number
    value = number.value if isinstance(number, SeverityNumber) else 9
    for limit, name in ((5, "DEBUG"), (9, "INFO"), (13, "WARNING"), (17, "ERROR"), (21, "CRITICAL")):
        if value < limit + 4:
            return name
    return "CRITICAL"


class TinkerLogExporter(DeliveringExporter, LogRecordExporter):
    """Exports session events in the Tinker format, through the shared delivery path.

    Built with no arguments (as `OTEL_LOGS_EXPORTER=tinker` builds it) it reads
    `SDK_TELEMETRY_ENDPOINT`, `SDK_TELEMETRY_API_KEY`, `SDK_TELEMETRY_HEADERS`,
    `SDK_TELEMETRY_TIMEOUT` and the retry and spool settings; with no endpoint it sends nothing.
    Retries, `Retry-After` and 413 splitting are the transport's; what the endpoint could not
    take now goes to the disk spool and is resent, with the same event ids, when it answers
    again (by this process or the next). Never raises.
    """

    name = "tinker"

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
        self.items_unmapped = 0
        self._sdk_version = sdk_version
        self._fallback_session = uuid.uuid4().hex
        self._indexes: dict[str, itertools.count[int]] = {}
        # What was drawn for a record without its own event id or index, so that every mapping of
        # that record (export, spool at exit) gives the same event: the same id, the same bytes.
        self._drawn: weakref.WeakKeyDictionary[Any, tuple[str, int]] = weakref.WeakKeyDictionary()
        self._delivery = delivery_for(
            self.name, item_event_id, settings, endpoint=endpoint, api_key=api_key, headers=headers, timeout=timeout
        )

    @property
    def url(self) -> str | None:
        """Where the batches go, or None when no endpoint is configured."""
        base = self._delivery.base
        return None if base is None else base + PATH

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Send the records, one session per request and at most 100 events per request; then resend the spool."""
        deadline = time.monotonic() + self._delivery.transport.timeout * 2
        delivery = self._delivery
        delivery.begin_export()
        all_ok = True
        wire, unmapped = self._batches(batch)
        for part in wire:
            all_ok &= delivery.deliver(part, None, deadline, "events_sent")
        delivery.resend(deadline)  # when the endpoint answers again (probes back off while it does not)
        return LogRecordExportResult.SUCCESS if all_ok and not unmapped else LogRecordExportResult.FAILURE

    def spool(self, records: Sequence[ReadableLogRecord]) -> int:
        """Write records that will not be exported in time to the spool, in wire form; how many are accounted for.

        Called by the event queue when the exit bound is reached, with the records still queued
        and those inside an export; records of that export already delivered or spooled count as
        accounted for and are not written twice.
        """
        try:
            batches, unmapped = self._batches(records)
            return self._delivery.spool_batches(batches) + unmapped
        except Exception:
            _logger.exception("sdk-telemetry: spooling events at exit failed")
            return 0

    def request_body(self, session_id: str, record: ReadableLogRecord, events: list[dict[str, Any]]) -> dict[str, Any]:
        """The request object around `events` (the fields of wire-formats §2, nothing else)."""
        return {**self.envelope(session_id, record), "events": events}

    def envelope(self, session_id: str, record: ReadableLogRecord) -> dict[str, Any]:
        """The request object without its events: what every request (and every half of a split one) carries."""
        version = self._sdk_version or (
            record.resource.attributes.get(attr.SERVICE_VERSION) if record.resource else None
        )
        return {
            "session_id": session_id,
            "platform": platform.system(),
            "sdk_version": str(version or "unknown"),
            "process_uuid": process_uuid(),
        }

    def event(self, record: ReadableLogRecord, session_id: str) -> dict[str, Any]:
        """One wire event from one log record; the same event (id and index) every time for the same record."""
        log = record.log_record
        attributes: Mapping[str, Any] = log.attributes or {}
        kind = str(attributes.get(attr.EVENT_TYPE) or attr.GENERIC_EVENT)
        if kind not in attr.EVENT_TYPES:
            kind = attr.GENERIC_EVENT
        event_id, index = self._identity(record, session_id)
        timestamp = log.timestamp or log.observed_timestamp or time.time_ns()
        event: dict[str, Any] = {
            "event": kind,
            "event_id": event_id,
            "event_session_index": index,
            "severity": severity_name(record),
            "timestamp": iso_timestamp(timestamp),
        }
        if kind == attr.SESSION_END:
            event["duration"] = str(attributes.get(attr.SESSION_DURATION) or "0:00:00")
        elif kind == attr.UNHANDLED_EXCEPTION:
            error_type = str(attributes.get(attr.EXCEPTION_TYPE) or "Exception")
            event["error_type"] = error_type.rsplit(".", 1)[-1]
            event["error_message"] = str(attributes.get(attr.EXCEPTION_MESSAGE) or "")
            stacktrace = attributes.get(attr.EXCEPTION_STACKTRACE)
            if stacktrace:
                event["traceback"] = str(stacktrace)
        elif kind == attr.GENERIC_EVENT:
            event["event_name"] = str(log.event_name or "log")
            event["event_data"] = _event_data(log.body, attributes)
        return event

    def stats(self) -> dict[str, Any]:
        """Counters of events sent, failed, rejected, spooled, resent and dropped by reason, and the last error.

        `events_sent`: delivered by an export (`resent` counts those delivered from the spool);
        `events_rejected`: refused for good by the endpoint; `events_failed`: undeliverable (no
        endpoint, a 404 or a record that could not be mapped); `requests_sent`: requests answered 2xx.
        """
        result = self._delivery.stats()
        with self._lock:
            unmapped = self.items_unmapped
        for key in ("events_sent", "requests_failed", "items_failed", "items_rejected"):
            result.setdefault(key, 0)
        result["items_failed"] += unmapped
        result["events_failed"] = result["items_failed"]
        result["events_rejected"] = result["items_rejected"]
        # Every attempt is a request: those retried, split (413) or finally failed are not sent ones.
        result["requests_sent"] = max(
            0, result["requests"] - result["retries"] - result["splits"] - result["requests_failed"]
        )
        result["exported"] = result["events_sent"]
        return result

    def _batches(self, records: Sequence[ReadableLogRecord]) -> tuple[list[WireBatch], int]:
        """The records as wire batches, one session and at most 100 events each; and how many could not be mapped."""
        sessions: dict[str, tuple[ReadableLogRecord, list[dict[str, Any]]]] = {}
        unmapped = 0
        for record in records:
            try:
                session_id = self._session_id(record)
                event = self.event(record, session_id)
            except Exception:
                _logger.exception("sdk-telemetry: could not map a log record to a tinker event")
                unmapped += 1
                continue
            sessions.setdefault(session_id, (record, []))[1].append(event)
        if unmapped:
            with self._lock:
                self.items_unmapped += unmapped
        batches: list[WireBatch] = []
        for session_id, (first, events) in sessions.items():
            envelope = self.envelope(session_id, first)
            for start in range(0, len(events), MAX_BATCH):
                chunk = tuple(events[start : start + MAX_BATCH])
                batches.append(WireBatch(PATH, chunk, envelope=envelope, field="events"))
        return batches, unmapped

    def _identity(self, record: ReadableLogRecord, session_id: str) -> tuple[str, int]:
        """The record's event id and session index: its own, else drawn once for this record and kept.

        An export and the spool at exit map the same record twice: both must give the same event
        (the same id, so that the endpoint can deduplicate; the same bytes, so the same idempotency key).
        """
        attributes: Mapping[str, Any] = record.log_record.attributes or {}
        own_id = attributes.get(attr.EVENT_ID)
        own_index = attributes.get(attr.EVENT_INDEX)
        if not isinstance(own_index, int) or isinstance(own_index, bool):
            own_index = None
        if own_id and own_index is not None:
            return str(own_id), own_index
        key: Any = record.log_record
        with self._lock:
            try:
                drawn = self._drawn.get(key)
            except TypeError:  # cannot be weakly referenced: the id comes from the content
                drawn, key = None, None
            if drawn is None:
                drawn = (
                    str(uuid.uuid4()) if key is not None else _content_id(record),
                    next(self._indexes.setdefault(session_id, itertools.count())),
                )
                if key is not None:
                    self._drawn[key] = drawn
        return (str(own_id) if own_id else drawn[0]), (drawn[1] if own_index is None else own_index)

    def _session_id(self, record: ReadableLogRecord) -> str:
        attributes: Mapping[str, Any] = record.log_record.attributes or {}
        session = attributes.get(attr.SESSION_ID)
        if not session and record.resource is not None:
            session = record.resource.attributes.get(attr.SESSION_ID)
        return str(session or self._fallback_session)


def _content_id(record: ReadableLogRecord) -> str:
    """A uuid derived from what the record holds (the same record, the same id)."""
    log = record.log_record
    content = repr(
        (log.timestamp, log.observed_timestamp, log.event_name, log.body, sorted((log.attributes or {}).items()))
    )
    return str(uuid.uuid5(uuid.NAMESPACE_OID, process_uuid() + content))


def item_event_id(event: Any) -> str:
    """The `event_id` of a wire event (empty when it has none)."""
    return str(event.get("event_id", "")) if isinstance(event, dict) else ""


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
