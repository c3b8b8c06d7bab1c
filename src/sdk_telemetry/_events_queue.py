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
import os
import threading
import time
import weakref
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.sdk._logs import LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.resources import Resource
from sdk_telemetry_exporters import tinker

_logger = logging.getLogger(__name__)
_SUPPRESS = otel_context._SUPPRESS_INSTRUMENTATION_KEY  # our own HTTP requests make no spans
URGENT_TYPES = frozenset({tinker.UNHANDLED_EXCEPTION, tinker.SESSION_END})
_accepted = threading.local()
#: Share of the exit bound kept for writing unsent events to the spool (at most `SPOOL_RESERVE_MAX` seconds).
SPOOL_RESERVE_SHARE = 0.25
SPOOL_RESERVE_MAX = 0.5


def begin_offer() -> None:
    """Start counting, on this thread, the queues that accept the next emitted record."""
    _accepted.count = 0


def accepted() -> int:
    """How many queues accepted the record emitted since `begin_offer()` on this thread."""
    return int(getattr(_accepted, "count", 0))


class EventQueue(LogRecordProcessor):
    """Batches emitted log records to one exporter on a daemon thread started at the first record."""

    def __init__(
        self,
        exporter: LogRecordExporter,
        max_queue_size: int = 10_000,
        max_export_batch_size: int = 100,
        schedule_delay: float = 2.0,
        shutdown_timeout: float = 2.0,
    ) -> None:
        self.exporter = exporter
        self._max_queue = max(1, max_queue_size)
        self._batch_size = max(1, max_export_batch_size)
        self._delay = schedule_delay
        self._shutdown_timeout = shutdown_timeout
        self._counts: collections.Counter[str] = collections.Counter()
        self.last_error: str | None = None
        self._init_worker_state()
        if hasattr(os, "register_at_fork"):
            ref = weakref.WeakMethod(self._init_worker_state)
            os.register_at_fork(after_in_child=lambda: (method := ref()) and method())

    def _init_worker_state(self) -> None:
        """Fresh locks, an empty queue and no worker: at construction and in a forked child."""
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._done = threading.Condition(self._lock)
        self._queue: collections.deque[ReadableLogRecord] = collections.deque()
        self._worker: threading.Thread | None = None
        self._urgent = False
        self._shutdown = False
        self._pushed = 0  # the push counter
        self._flushed = 0  # the flush counter: exported, failed, spooled or dropped after being pushed
        self._in_flight: list[ReadableLogRecord] = []  # records inside the exporter right now
        self._abandoned = 0  # of those, already accounted for by a shutdown that gave up on them

    # --- LogRecordProcessor ----------------------------------------------------------------

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        """Queue a record; wake the worker at once for an exception, a session end or a full batch."""
        attributes = log_record.log_record.attributes or {}
        urgent = attributes.get(tinker.EVENT_TYPE) in URGENT_TYPES
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
            if self._flushed >= self._pushed:
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
                if self._flushed >= self._pushed:
                    return True

    def _wait_for(self, target: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            if self._flushed >= target:
                return True
            if self._worker is None or (self._shutdown and not self._worker.is_alive()):
                return False
            self._urgent = True
        self._wake.set()
        with self._done:
            while self._flushed < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._done.wait(remaining)
        return True

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop accepting records, send what is queued within `timeout` seconds, release the exporter.

        What is not exported by then goes to the exporter's spool when it has one; the rest is
        counted as `dropped.exit_timeout`.
        """
        limit = self._shutdown_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        spool = getattr(self.exporter, "spool", None)
        reserve = min(SPOOL_RESERVE_MAX, limit * SPOOL_RESERVE_SHARE) if callable(spool) else 0.0
        with self._lock:
            if self._shutdown:
                return
            self._shutdown = True
            worker = self._worker
        self._wake.set()
        if worker is not None:
            worker.join(max(0.0, deadline - reserve - time.monotonic()))
            if worker.is_alive():
                with self._lock:
                    unsent = [*self._queue, *self._in_flight]
                    self._abandoned = len(self._in_flight)
                    self._flushed += len(unsent)  # accounted for here: spooled or dropped
                    self._queue.clear()  # the worker must not send them later
                    self._done.notify_all()
                spooled = self._spool(spool, unsent) if callable(spool) and unsent else 0
                with self._lock:
                    if spooled:
                        self._counts["spooled"] += spooled
                    if len(unsent) > spooled:
                        self._counts["dropped.exit_timeout"] += len(unsent) - spooled
                if unsent:
                    _logger.warning(
                        "sdk-telemetry: exit bound of %.1fs reached; %d event(s) not sent, %d of them spooled",
                        limit,
                        len(unsent),
                        spooled,
                    )
        try:
            self.exporter.shutdown()  # type: ignore[no-untyped-call]
        except Exception:
            _logger.exception("sdk-telemetry: events exporter shutdown failed")

    @staticmethod
    def _spool(spool: Any, records: list[ReadableLogRecord]) -> int:
        """Hand `records` to the exporter's spool; how many it accounted for (never more than given)."""
        try:
            return max(0, min(len(records), int(spool(records))))
        except Exception:
            _logger.exception("sdk-telemetry: the events exporter could not spool unsent events")
            return 0

    # --- accounting ------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Queue length, the push and flush counters, and exported, failed, spooled (at exit) and dropped counts."""
        with self._lock:
            counts = dict(self._counts)
            queue = len(self._queue)
            pushed, flushed = self._pushed, self._flushed
        return {
            "queue": queue,
            "queued": counts.get("queued", 0),
            "pushed": pushed,
            "flushed": flushed,
            "exported": counts.get("exported", 0),
            "failed": counts.get("failed", 0),
            "spooled": counts.get("spooled", 0),
            "dropped": {key.split(".", 1)[1]: n for key, n in counts.items() if key.startswith("dropped.")},
            "last_error": self.last_error,
        }

    # --- the worker ------------------------------------------------------------------------

    def _start_worker(self) -> None:
        self._worker = threading.Thread(target=self._run, name="sdk-telemetry-events", daemon=True)
        self._worker.start()

    def _run(self) -> None:
        while True:
            woken = self._wake.wait(self._delay)
            self._wake.clear()
            with self._lock:
                stopping = self._shutdown
                drain_all = stopping or self._urgent or not woken
                self._urgent = False
                idle = not woken and not self._queue
            self._export_queued(drain_all)
            if stopping:
                return
            if idle:
                self._resend_spooled()

    def _resend_spooled(self) -> None:
        """While idle, let the exporter resend what it spooled (it knows when the endpoint answers again)."""
        resend = getattr(self.exporter, "resend_spooled", None)
        if not callable(resend):
            return
        token = otel_context.attach(otel_context.set_value(_SUPPRESS, True))
        try:
            resend()
        except Exception:
            _logger.exception("sdk-telemetry: resending spooled events failed")
        finally:
            otel_context.detach(token)

    def _export_queued(self, drain_all: bool) -> None:
        while True:
            with self._lock:
                if not self._queue or (not drain_all and len(self._queue) < self._batch_size):
                    return
                batch = [self._queue.popleft() for _ in range(min(len(self._queue), self._batch_size))]
                self._in_flight = batch  # in the same step: a shutdown sees each record queued or in flight
            self._export(batch)

    def _export(self, batch: list[ReadableLogRecord]) -> None:
        token = otel_context.attach(otel_context.set_value(_SUPPRESS, True))
        try:
            result = self.exporter.export(batch)
        except Exception as exc:  # an exporter bug must not kill the worker
            _logger.exception("sdk-telemetry: events exporter raised")
            result = LogRecordExportResult.FAILURE
            self.last_error = f"{type(exc).__name__}: {exc}"
        finally:
            otel_context.detach(token)
        with self._lock:
            counted = len(batch) - self._abandoned  # the rest were spooled or dropped by `shutdown`
            self._in_flight = []
            self._abandoned = 0
            if counted:
                self._counts["exported" if result is LogRecordExportResult.SUCCESS else "failed"] += counted
            self._flushed += counted
            self._done.notify_all()
