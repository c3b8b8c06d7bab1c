"""The batching core shared by the span and the event processors: one daemon worker, batches of at
most `max_export_batch_size`, a completion counter that flushes wait on, and a bounded `shutdown`
that hands what it could not send to the exporter's `spool(items)` (when it has one).

Everything the worker does (taking in, preparing, exporting, resending the spool) and what
`shutdown` does with the exporter runs with OpenTelemetry's instrumentation suppressed, as the SDK's
own batch processors do: the exporter's HTTP requests make no spans (ours included), so no export
sends telemetry about an earlier export.

A subclass owns its queue(s) and how items enter them (`on_end`, `on_emit`); it tells the core how
to take a batch (`_take_batch`), everything queued (`_take_queued`), whether a full batch waits
(`_full_batch_waiting`) and how long the queue is (`_queued_len`), all called under `_lock`.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any, ClassVar, Generic, TypeVar

from opentelemetry import context as otel_context
from sdk_telemetry_exporters.fork import reinit_after_fork

from sdk_telemetry.otel_compat import suppressed_context

#: Share of the exit bound kept for writing unsent items to the spool (at most `SPOOL_RESERVE_MAX` seconds).
SPOOL_RESERVE_SHARE = 0.25
SPOOL_RESERVE_MAX = 0.5

T = TypeVar("T")


class BatchingCore(Generic[T]):
    """The worker, the drain in batches, the flush wait and the bounded, spooling shutdown."""

    _logger: ClassVar[logging.Logger]
    #: What the messages call an item ("span") and the exporter ("exporter"), the worker thread's name.
    _NOUN: ClassVar[str]
    _EXPORTER: ClassVar[str]
    _THREAD_NAME: ClassVar[str]
    #: The exporter's success value (`SpanExportResult.SUCCESS`, ...) and failure value.
    _SUCCESS: ClassVar[Any]
    _FAILURE: ClassVar[Any]
    #: True: a shutdown that gives up counts the batch inside the exporter as processed at once (and
    #: the export, when it returns, counts only the rest); False: the export counts its whole batch.
    _SETTLE_IN_FLIGHT_AT_SHUTDOWN: ClassVar[bool]

    exporter: Any

    def _init_core(
        self,
        exporter: Any,
        max_queue_size: int,
        max_export_batch_size: int,
        schedule_delay: float,
        shutdown_timeout: float,
    ) -> None:
        self.exporter = exporter
        self._max_queue = max(1, max_queue_size)
        self._batch_size = max(1, max_export_batch_size)
        self._delay = schedule_delay
        self._shutdown_timeout = shutdown_timeout
        self._counts: collections.Counter[str] = collections.Counter()  # exported, failed, spooled, dropped.*
        self.last_error: str | None = None
        self.last_error_time: float | None = None
        self.last_success_time: float | None = None
        self.failing_since: float | None = None  # the first failed export since the last success
        self._init_worker_state()
        reinit_after_fork(self, type(self)._after_fork)

    def _after_fork(self) -> None:
        """In a forked child: no worker, empty queues."""
        self._init_worker_state()

    def _init_worker_state(self) -> None:
        """Fresh locks, no worker, nothing in flight: at construction and in a forked child."""
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._done = threading.Condition(self._lock)
        self._worker: threading.Thread | None = None
        self._urgent = False
        self._shutdown = False
        self._processed = 0  # items exported, failed, spooled or dropped after being queued
        self._in_flight: list[T] = []  # items inside the exporter right now
        self._abandoned = 0  # of those, already accounted for by a shutdown that gave up on them

    # --- what a subclass provides (called under `_lock`) -------------------------------------

    def _queued_len(self) -> int:
        raise NotImplementedError

    def _full_batch_waiting(self) -> bool:
        raise NotImplementedError

    def _take_batch(self) -> list[T]:
        """Remove and return the next batch (at most `_batch_size` items)."""
        raise NotImplementedError

    def _take_queued(self) -> list[T]:
        """Remove and return everything queued."""
        raise NotImplementedError

    def _pull(self) -> None:
        """Take in what waits upstream before looking at the queue (nothing by default)."""

    # --- flush and shutdown ------------------------------------------------------------------

    def _await_processed(self, target: int, deadline: float) -> bool:
        """Wake the worker and wait until `target` items are processed; False if `deadline` passed first."""
        self._wake.set()
        with self._done:
            while self._processed < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._done.wait(remaining)
        return True

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop accepting items, export what is queued within `timeout` seconds, release the exporter.

        What is not exported by then goes to the exporter's spool when it has one; the rest is
        counted as `dropped.exit_timeout`.
        """
        token = otel_context.attach(suppressed_context())  # the exporter's own work is not traced
        try:
            self._shut_down(timeout)
        finally:
            otel_context.detach(token)

    def _shut_down(self, timeout: float | None) -> None:
        limit = self._shutdown_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        self._pull()
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
                    queued = self._take_queued()  # accounted for here: the worker must not send them later
                    unsent = [*queued, *self._in_flight]
                    self._abandoned = len(self._in_flight)
                    self._processed += len(unsent) if self._SETTLE_IN_FLIGHT_AT_SHUTDOWN else len(queued)
                    self._done.notify_all()
                spooled = self._spool(spool, unsent) if callable(spool) and unsent else 0
                with self._lock:
                    if spooled:
                        self._counts["spooled"] += spooled
                    if len(unsent) > spooled:
                        self._counts["dropped.exit_timeout"] += len(unsent) - spooled
                if unsent:
                    self._logger.warning(
                        "sdk-telemetry: exit bound of %.1fs reached; %d %s(s) not sent, %d of them spooled",
                        limit,
                        len(unsent),
                        self._NOUN,
                        spooled,
                    )
        self._pull()  # staged while stopping: counted as dropped at shutdown, not left unseen
        try:
            self.exporter.shutdown()
        except Exception:
            self._logger.exception("sdk-telemetry: %s shutdown failed", self._EXPORTER)

    def _spool(self, spool: Any, items: list[T]) -> int:
        """Hand `items` to the exporter's spool; how many it accounted for (never more than given)."""
        try:
            return max(0, min(len(items), int(spool(items))))
        except Exception:
            self._logger.exception("sdk-telemetry: the %s could not spool unsent %ss", self._EXPORTER, self._NOUN)
            return 0

    @staticmethod
    def _dropped(counts: dict[str, int]) -> dict[str, int]:
        """The `dropped.*` counters by reason."""
        return {key.split(".", 1)[1]: n for key, n in counts.items() if key.startswith("dropped.")}

    # --- the worker ------------------------------------------------------------------------

    def _start_worker(self) -> None:
        self._worker = threading.Thread(target=self._run, name=self._THREAD_NAME, daemon=True)
        self._worker.start()

    def _run(self) -> None:
        # The worker's own context, for good: nothing it runs is traced (the exporter's HTTP requests).
        otel_context.attach(suppressed_context())
        while True:
            woken = self._wake.wait(self._delay)
            self._wake.clear()
            self._pull()
            with self._lock:
                stopping = self._shutdown
                # The interval passed, an urgent item or a flush is waiting, or we are stopping: send all.
                drain_all = stopping or self._urgent or not woken
                self._urgent = False
                idle = not woken and not self._queued_len()
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
        try:
            resend()  # (in the worker's suppressed context)
        except Exception:
            self._logger.exception("sdk-telemetry: resending spooled %ss failed", self._NOUN)

    def _export_queued(self, drain_all: bool) -> None:
        while True:
            with self._lock:
                if not drain_all and not self._full_batch_waiting():
                    return
                batch = self._take_batch()
                if not batch:
                    return
                self._in_flight = batch  # in the same step: a shutdown sees each item queued or in flight
            self._export(batch)

    def _export(self, batch: list[T]) -> None:
        try:
            result = self.exporter.export(batch)  # (in the worker's suppressed context)
        except Exception as exc:  # an exporter bug must not kill the worker
            self._logger.exception("sdk-telemetry: %s raised", self._EXPORTER)
            result = self._FAILURE
            self.last_error = f"{type(exc).__name__}: {exc}"
        else:
            if result is not self._SUCCESS:
                reported = getattr(self.exporter, "last_error", None)
                self.last_error = (
                    str(reported) if reported else f"the {self._EXPORTER} failed {len(batch)} {self._NOUN}(s)"
                )
        moment = time.time()
        if result is self._SUCCESS:
            self.last_success_time, self.failing_since = moment, None
        else:
            self.last_error_time = moment
            if self.failing_since is None:
                self.failing_since = moment
        with self._lock:
            counted = len(batch) - self._abandoned  # the rest were spooled or dropped by `shutdown`
            self._in_flight = []
            self._abandoned = 0
            if counted:
                self._counts["exported" if result is self._SUCCESS else "failed"] += counted
            self._processed += counted if self._SETTLE_IN_FLIGHT_AT_SHUTDOWN else len(batch)
            self._done.notify_all()
