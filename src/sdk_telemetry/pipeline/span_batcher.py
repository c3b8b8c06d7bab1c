"""The batching stage: a span processor with a bounded queue and one background worker.

Like the SDK's `BatchSpanProcessor`, plus: a failed call is exported at once rather than
after the batch interval, successes are dropped before errors when the queue is full, every
drop is counted by reason, and `shutdown` is bounded by a timeout. When the bound is reached,
what is still queued or inside an export is handed to the exporter's `spool(spans)` (when it
has one) so that it reaches the disk instead of nothing; while idle, the worker asks such an
exporter to resend what it spooled (`resend_spooled()`).
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable
from typing import Any, ClassVar

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode

from sdk_telemetry.instrument import CallSpan
from sdk_telemetry.pipeline.batching import SPOOL_RESERVE_MAX, SPOOL_RESERVE_SHARE, BatchingCore

__all__ = ["ERROR_SHARE", "SPOOL_RESERVE_MAX", "SPOOL_RESERVE_SHARE", "BatchSpanProcessor"]

_logger = logging.getLogger(__name__)
#: Errors waiting to be sent may take this share of the queue; beyond it they are dropped too.
ERROR_SHARE = 0.1


class BatchSpanProcessor(BatchingCore[ReadableSpan], SpanProcessor):
    """Batches finished spans to one exporter on a daemon thread started at the first span."""

    _logger: ClassVar[logging.Logger] = _logger
    _NOUN = "span"
    _EXPORTER = "exporter"
    _THREAD_NAME = "sdk-telemetry-export"
    _SUCCESS = SpanExportResult.SUCCESS
    _FAILURE = SpanExportResult.FAILURE
    _SETTLE_IN_FLIGHT_AT_SHUTDOWN = False
    #: `on_start` does nothing: instrumented calls need not call it.
    quiet_on_start = True
    exporter: SpanExporter

    def __init__(
        self,
        exporter: SpanExporter,
        max_queue_size: int = 10_000,
        max_export_batch_size: int = 100,
        schedule_delay: float = 2.0,
        shutdown_timeout: float = 2.0,
    ) -> None:
        self._pushed = 0  # spans offered (kept as plain ints: counted on every call)
        #: Called before the queue is looked at (by the worker, a flush, the shutdown) to take in the
        #: spans staged upstream (see `_forwarder`); None when nothing stages spans for this processor.
        self.source: Callable[[], None] | None = None
        self._init_core(exporter, max_queue_size, max_export_batch_size, schedule_delay, shutdown_timeout)
        self._max_errors = max(1, int(self._max_queue * ERROR_SHARE))

    def _after_fork(self) -> None:
        """In a forked child: no worker, empty queues, counters of its own (the parent's spans stay the parent's)."""
        self._counts = collections.Counter()
        self._pushed = 0
        self.last_error = self.last_error_time = self.last_success_time = self.failing_since = None
        self._init_worker_state()

    def _init_worker_state(self) -> None:
        """Fresh locks, empty queues and no worker: at construction and in a forked child."""
        super()._init_worker_state()
        self._successes: collections.deque[ReadableSpan] = collections.deque()
        self._errors: collections.deque[ReadableSpan] = collections.deque()
        self._enqueued = 0  # spans queued (the "queued" counter)

    # --- SpanProcessor ---------------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do when a span starts."""

    def on_end(self, span: ReadableSpan) -> None:
        """Queue a finished span; wake the worker at once for an error or a full batch."""
        if type(span) is not CallSpan:  # an instrumented call's span is always sampled
            context = span.context
            if not context or not context.trace_flags.sampled:
                return
        if span.status.status_code is StatusCode.ERROR:
            self._on_end_error(span)
            return
        self.on_end_many([span])

    def on_end_many(self, spans: list[ReadableSpan]) -> None:
        """Queue finished, sampled spans that are not failures (a drained stage) under one lock."""
        if not spans:
            return
        with self._lock:
            self._pushed += len(spans)
            if self._shutdown:
                self._counts["dropped.shutdown"] += len(spans)
                return
            successes = self._successes
            room = max(0, self._max_queue - len(successes) - len(self._errors))
            if len(spans) > room:
                self._counts["dropped.queue_full"] += len(spans) - room
                spans = spans[:room]
            successes.extend(spans)
            self._enqueued += len(spans)
            if self._worker is None:
                self._start_worker()
            if len(successes) < self._batch_size:
                return
        # A full batch: wake the worker, unless a wake is already pending (the worker clears the flag
        # before it looks at the queue, so it will see these spans either way).
        self.wake()

    def _on_end_error(self, span: ReadableSpan) -> None:
        """Queue a failed call's span (successes make way for it) and wake the worker at once."""
        with self._lock:
            self._pushed += 1
            if self._shutdown:
                self._counts["dropped.shutdown"] += 1
                return
            if len(self._errors) >= self._max_errors:
                self._counts["dropped.queue_full"] += 1
                return
            if len(self._successes) + len(self._errors) >= self._max_queue and self._successes:
                self._successes.popleft()  # successes make way for errors
                self._counts["dropped.queue_full"] += 1
                self._processed += 1
            self._errors.append(span)
            self._urgent = True
            self._enqueued += 1
            if self._worker is None:
                self._start_worker()
        self._wake.set()

    def wake(self) -> None:
        """Ask the worker to look at the queue (and what is staged upstream) now. Setting the event
        only when it is clear spares the worker's condition lock on every call while it catches up."""
        if not self._wake.is_set():
            self._wake.set()

    def _pull(self) -> None:
        source = self.source
        if source is not None:
            try:
                source()
            except Exception:
                _logger.exception("sdk-telemetry: taking in staged spans failed")

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export everything queued so far; True when it was all handed to the exporter in time."""
        deadline = time.monotonic() + timeout_millis / 1000
        self._pull()
        with self._lock:
            if self._worker is None or self._shutdown:
                return self._processed >= self._enqueued
            target = self._enqueued
            self._urgent = True
        return self._await_processed(target, deadline)

    # --- accounting ------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Queue length and counters: pushed, queued, exported, failed, spooled at exit and dropped by reason."""
        self._pull()  # what is staged upstream counts as pushed
        with self._lock:
            counts = dict(self._counts)
            counts["pushed"] = self._pushed
            counts["queued"] = self._enqueued
            queue = len(self._successes) + len(self._errors)
            in_flight = len(self._in_flight) - self._abandoned
        dropped = self._dropped(counts)
        return {
            "queue": queue,
            "in_flight": in_flight,
            "pushed": counts.get("pushed", 0),
            "queued": counts.get("queued", 0),
            "spooled": counts.get("spooled", 0),
            "exported": counts.get("exported", 0),
            "failed": counts.get("failed", 0),
            "dropped": dropped,
            "last_error": self.last_error,
            "last_error_time": self.last_error_time,
            "last_success_time": self.last_success_time,
            "failing_since": self.failing_since,
        }

    # --- the batching core's view of the queues (under the lock) ----------------------------

    def _queued_len(self) -> int:
        return len(self._successes) + len(self._errors)

    def _full_batch_waiting(self) -> bool:
        return len(self._successes) >= self._batch_size

    def _take_batch(self) -> list[ReadableSpan]:
        """Errors first, then successes, at most one batch."""
        batch = [self._errors.popleft() for _ in range(min(len(self._errors), self._batch_size))]
        room = self._batch_size - len(batch)
        batch += [self._successes.popleft() for _ in range(min(len(self._successes), room))]
        return batch

    def _take_queued(self) -> list[ReadableSpan]:
        queued = [*self._errors, *self._successes]
        self._successes.clear()
        self._errors.clear()
        return queued
