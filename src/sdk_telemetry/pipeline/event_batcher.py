"""The batching stage of events: a log record processor with a bounded queue, one daemon worker,
and the push and flush counters that `wait_until_drained` compares.

Like the span `BatchSpanProcessor`: export every interval or at a full batch, at once for an
exception or the end of a session; a full queue drops the new event and counts it; `shutdown`
is bounded. Unlike the SDK's `BatchLogRecordProcessor`, `force_flush` honours its timeout and
every event is counted as pushed, then as exported, failed, spooled or dropped. When the exit
bound is reached, what is still queued or inside an export is handed to the exporter's
`spool(records)` (when it has one) so that it reaches the disk instead of nothing; while idle,
the worker asks such an exporter to resend what it spooled (`resend_spooled()`).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any, ClassVar

from opentelemetry.sdk._logs import LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.resources import Resource
from sdk_telemetry_exporters import attributes as attr

from sdk_telemetry.pipeline.batching import SPOOL_RESERVE_MAX, SPOOL_RESERVE_SHARE, BatchingCore

__all__ = ["SPOOL_RESERVE_MAX", "SPOOL_RESERVE_SHARE", "URGENT_TYPES", "EventQueue", "accepted", "begin_offer"]

_logger = logging.getLogger(__name__)
URGENT_TYPES = frozenset({attr.UNHANDLED_EXCEPTION, attr.SESSION_END})
_accepted = threading.local()


def begin_offer() -> None:
    """Start counting, on this thread, the queues that accept the next emitted record."""
    _accepted.count = 0


def accepted() -> int:
    """How many queues accepted the record emitted since `begin_offer()` on this thread."""
    return int(getattr(_accepted, "count", 0))


class EventQueue(BatchingCore[ReadableLogRecord], LogRecordProcessor):
    """Batches emitted log records to one exporter on a daemon thread started at the first record."""

    _logger: ClassVar[logging.Logger] = _logger
    _NOUN = "event"
    _EXPORTER = "events exporter"
    _THREAD_NAME = "sdk-telemetry-events"
    _SUCCESS = LogRecordExportResult.SUCCESS
    _FAILURE = LogRecordExportResult.FAILURE
    _SETTLE_IN_FLIGHT_AT_SHUTDOWN = True  # the flush counter counts each record once, as soon as settled
    exporter: LogRecordExporter

    def __init__(
        self,
        exporter: LogRecordExporter,
        max_queue_size: int = 10_000,
        max_export_batch_size: int = 100,
        schedule_delay: float = 2.0,
        shutdown_timeout: float = 2.0,
    ) -> None:
        self._init_core(exporter, max_queue_size, max_export_batch_size, schedule_delay, shutdown_timeout)

    def _init_worker_state(self) -> None:
        """Fresh locks, an empty queue and no worker: at construction and in a forked child.

        The flush counter is the core's `_processed`: exported, failed, spooled or dropped after being pushed.
        """
        super()._init_worker_state()
        self._queue: collections.deque[ReadableLogRecord] = collections.deque()
        self._pushed = 0  # the push counter

    # --- LogRecordProcessor ----------------------------------------------------------------

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        """Queue a record; wake the worker at once for an exception, a session end or a full batch."""
        attributes = log_record.log_record.attributes or {}
        urgent = attributes.get(attr.EVENT_TYPE) in URGENT_TYPES
        readable = ReadableLogRecord(
            log_record=log_record.log_record,
            resource=log_record.resource if log_record.resource is not None else Resource.get_empty(),
            instrumentation_scope=log_record.instrumentation_scope,
            limits=log_record.limits,
        )
        with self._lock:
            if self._shutdown:
                self._counts["dropped.shutdown"] += 1
                return
            if len(self._queue) >= self._max_queue:
                self._counts["dropped.queue_full"] += 1
                return
            self._queue.append(readable)
            self._pushed += 1
            self._counts["queued"] += 1
            if urgent:
                self._urgent = True
            wake = urgent or len(self._queue) >= self._batch_size
            if self._worker is None:
                self._start_worker()
        _accepted.count = accepted() + 1
        if wake:
            self._wake.set()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export everything pushed so far; True when it was all sent (or given up on) in time."""
        with self._lock:
            target = self._pushed
        return self._wait_for(target, timeout_millis / 1000)

    def request_flush(self) -> None:
        """Ask the worker to send what is queued now, without waiting."""
        with self._lock:
            if self._processed >= self._pushed:
                return
            self._urgent = True
        self._wake.set()

    def wait_until_drained(self, timeout: float) -> bool:
        """True once the flush counter has reached the push counter, False if `timeout` seconds passed first."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                target = self._pushed
            if not self._wait_for(target, max(0.0, deadline - time.monotonic())):
                return False
            with self._lock:
                if self._processed >= self._pushed:
                    return True

    def _wait_for(self, target: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            if self._processed >= target:
                return True
            if self._worker is None or (self._shutdown and not self._worker.is_alive()):
                return False
            self._urgent = True
        return self._await_processed(target, deadline)

    # --- accounting ------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Queue length, the push and flush counters, and exported, failed, spooled (at exit) and dropped counts."""
        with self._lock:
            counts = dict(self._counts)
            queue = len(self._queue)
            pushed, flushed = self._pushed, self._processed
        return {
            "queue": queue,
            "queued": counts.get("queued", 0),
            "pushed": pushed,
            "flushed": flushed,
            "exported": counts.get("exported", 0),
            "failed": counts.get("failed", 0),
            "spooled": counts.get("spooled", 0),
            "dropped": self._dropped(counts),
            "last_error": self.last_error,
            "last_error_time": self.last_error_time,
            "last_success_time": self.last_success_time,
            "failing_since": self.failing_since,
        }

    # --- the batching core's view of the queue (under the lock) -----------------------------

    def _queued_len(self) -> int:
        return len(self._queue)

    def _full_batch_waiting(self) -> bool:
        return len(self._queue) >= self._batch_size

    def _take_batch(self) -> list[ReadableLogRecord]:
        return [self._queue.popleft() for _ in range(min(len(self._queue), self._batch_size))]

    def _take_queued(self) -> list[ReadableLogRecord]:
        queued = [*self._queue]
        self._queue.clear()
        return queued
