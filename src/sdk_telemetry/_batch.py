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
import os
import threading
import time
import weakref
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode

_logger = logging.getLogger(__name__)
_SUPPRESS = otel_context._SUPPRESS_INSTRUMENTATION_KEY  # the key every instrumentation honours
#: Errors waiting to be sent may take this share of the queue; beyond it they are dropped too.
ERROR_SHARE = 0.1
#: Share of the exit bound kept for writing unsent spans to the spool (at most `SPOOL_RESERVE_MAX` seconds).
SPOOL_RESERVE_SHARE = 0.25
SPOOL_RESERVE_MAX = 0.5


class BatchSpanProcessor(SpanProcessor):
    """Batches finished spans to one exporter on a daemon thread started at the first span."""

    def __init__(
        self,
        exporter: SpanExporter,
        max_queue_size: int = 10_000,
        max_export_batch_size: int = 100,
        schedule_delay: float = 2.0,
        shutdown_timeout: float = 2.0,
    ) -> None:
        self.exporter = exporter
        self._max_queue = max(1, max_queue_size)
        self._max_errors = max(1, int(self._max_queue * ERROR_SHARE))
        self._batch_size = max(1, max_export_batch_size)
        self._delay = schedule_delay
        self._shutdown_timeout = shutdown_timeout
        self._counts: collections.Counter[str] = collections.Counter()  # exported, failed, spooled, dropped.*
        self._pushed = 0  # spans offered (kept as plain ints: counted on every call)
        self.last_error: str | None = None
        self.last_error_time: float | None = None
        self._init_worker_state()
        if hasattr(os, "register_at_fork"):
            ref = weakref.WeakMethod(self._after_fork)
            os.register_at_fork(after_in_child=lambda: (method := ref()) and method())

    def _after_fork(self) -> None:
        """In a forked child: no worker, empty queues, counters of its own (the parent's spans stay the parent's)."""
        self._counts = collections.Counter()
        self._pushed = 0
        self.last_error = self.last_error_time = None
        self._init_worker_state()

    def _init_worker_state(self) -> None:
        """Fresh locks, empty queues and no worker: at construction and in a forked child."""
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._done = threading.Condition(self._lock)
        self._successes: collections.deque[ReadableSpan] = collections.deque()
        self._errors: collections.deque[ReadableSpan] = collections.deque()
        self._worker: threading.Thread | None = None
        self._urgent = False
        self._shutdown = False
        self._enqueued = 0  # spans queued (the "queued" counter)
        self._processed = 0
        self._in_flight: list[ReadableSpan] = []  # spans inside the exporter right now
        self._abandoned = 0  # of those, already counted as dropped by a shutdown that gave up on them

    # --- SpanProcessor ---------------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do when a span starts."""

    def on_end(self, span: ReadableSpan) -> None:
        """Queue a finished span; wake the worker at once for an error or a full batch."""
        context = span.context
        if not context or not context.trace_flags.sampled:
            return
        if span.status.status_code is StatusCode.ERROR:
            self._on_end_error(span)
            return
        # The common case, a success: as little as possible under the lock.
        with self._lock:
            self._pushed += 1
            successes = self._successes
            if self._shutdown:
                self._counts["dropped.shutdown"] += 1
                return
            if len(successes) + len(self._errors) >= self._max_queue:
                self._counts["dropped.queue_full"] += 1
                return
            successes.append(span)
            self._enqueued += 1
            if self._worker is None:
                self._start_worker()
            if len(successes) < self._batch_size:
                return
        # A full batch: wake the worker, unless a wake is already pending (the worker clears the flag
        # before it looks at the queue, so it will see this span either way). Setting the event on
        # every call while the worker catches up would take its condition lock each time.
        if not self._wake.is_set():
            self._wake.set()

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

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export everything queued so far; True when it was all handed to the exporter in time."""
        deadline = time.monotonic() + timeout_millis / 1000
        with self._lock:
            if self._worker is None or self._shutdown:
                return self._processed >= self._enqueued
            target = self._enqueued
            self._urgent = True
        self._wake.set()
        with self._done:
            while self._processed < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._done.wait(remaining)
        return True

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop accepting spans, export what is queued within `timeout` seconds, release the exporter.

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
                    unsent = [*self._errors, *self._successes, *self._in_flight]
                    self._abandoned = len(self._in_flight)
                    self._processed += len(self._successes) + len(self._errors)
                    self._successes.clear()  # accounted for here: the worker must not send them later
                    self._errors.clear()
                spooled = self._spool(spool, unsent) if callable(spool) and unsent else 0
                with self._lock:
                    if spooled:
                        self._counts["spooled"] += spooled
                    if len(unsent) > spooled:
                        self._counts["dropped.exit_timeout"] += len(unsent) - spooled
                if unsent:
                    _logger.warning(
                        "sdk-telemetry: exit bound of %.1fs reached; %d span(s) not sent, %d of them spooled",
                        limit,
                        len(unsent),
                        spooled,
                    )
        try:
            self.exporter.shutdown()
        except Exception:
            _logger.exception("sdk-telemetry: exporter shutdown failed")

    @staticmethod
    def _spool(spool: Any, spans: list[ReadableSpan]) -> int:
        """Hand `spans` to the exporter's spool; how many it accounted for (never more than given)."""
        try:
            return max(0, min(len(spans), int(spool(spans))))
        except Exception:
            _logger.exception("sdk-telemetry: the exporter could not spool unsent spans")
            return 0

    # --- accounting ------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Queue length and counters: pushed, queued, exported, failed, spooled at exit and dropped by reason."""
        with self._lock:
            counts = dict(self._counts)
            counts["pushed"] = self._pushed
            counts["queued"] = self._enqueued
            queue = len(self._successes) + len(self._errors)
            in_flight = len(self._in_flight) - self._abandoned
        dropped = {key.split(".", 1)[1]: value for key, value in counts.items() if key.startswith("dropped.")}
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
        }

    # --- the worker ------------------------------------------------------------------------

    def _start_worker(self) -> None:
        self._worker = threading.Thread(target=self._run, name="sdk-telemetry-export", daemon=True)
        self._worker.start()

    def _run(self) -> None:
        while True:
            woken = self._wake.wait(self._delay)
            self._wake.clear()
            with self._lock:
                stopping = self._shutdown
                # The interval passed, an error or a flush is waiting, or we are stopping: send all.
                drain_all = stopping or self._urgent or not woken
                self._urgent = False
                idle = not woken and not self._successes and not self._errors
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
            _logger.exception("sdk-telemetry: resending spooled spans failed")
        finally:
            otel_context.detach(token)

    def _export_queued(self, drain_all: bool) -> None:
        while True:
            with self._lock:
                if not drain_all and len(self._successes) < self._batch_size:
                    return
                batch = [self._errors.popleft() for _ in range(min(len(self._errors), self._batch_size))]
                room = self._batch_size - len(batch)
                batch += [self._successes.popleft() for _ in range(min(len(self._successes), room))]
            if not batch:
                return
            self._export(batch)

    def _export(self, batch: list[ReadableSpan]) -> None:
        with self._lock:
            self._in_flight = batch
        token = otel_context.attach(otel_context.set_value(_SUPPRESS, True))
        try:
            result = self.exporter.export(batch)
        except Exception as exc:  # an exporter bug must not kill the worker
            _logger.exception("sdk-telemetry: exporter raised")
            result = SpanExportResult.FAILURE
            self.last_error, self.last_error_time = f"{type(exc).__name__}: {exc}", time.time()
        finally:
            otel_context.detach(token)
        with self._lock:
            counted = len(batch) - self._abandoned
            self._in_flight = []
            self._abandoned = 0
            if counted:
                self._counts["exported" if result is SpanExportResult.SUCCESS else "failed"] += counted
            self._processed += len(batch)
            self._done.notify_all()
