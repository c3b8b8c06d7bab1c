"""The one span processor sdk-telemetry adds to a TracerProvider: it prepares each finished span
(privacy, sampling) and hands it to the batching processor of every exporter of one handle.

A failed call is handled at once, on the thread that ended it: prepared, queued (which wakes the
exporter) and logged as an `UNHANDLED_EXCEPTION` event of the handle's session. Any other span is
only staged: appended to a deque, which is all the application thread pays for. The batching
processors' workers drain the stage (`drain`) when they wake: every batch interval, when
`WAKE_BATCHES` batches are staged, before a flush, `stats()` and at shutdown. The stage is bounded:
beyond `STAGED_BATCHES` batches (a worker busy in a slow export), or while no worker runs yet or the
processors are shut down, spans take the direct path, where the processors' own bounds and drop
counters apply.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from typing import Protocol

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import StatusCode
from sdk_telemetry_exporters import attributes as attr
from sdk_telemetry_exporters.fork import reinit_after_fork

from sdk_telemetry.config import Settings
from sdk_telemetry.instrument import UNSET_STATUS
from sdk_telemetry.pipeline.prepare import prepare, prepare_many
from sdk_telemetry.pipeline.span_batcher import BatchSpanProcessor
from sdk_telemetry.privacy import consent_granted, count_withheld

_logger = logging.getLogger(__name__)
_ERROR = StatusCode.ERROR
#: The workers are woken when this many batches are staged: each wake costs the application thread a
#: hand-over of the GIL, so they are woken for several batches at a time.
WAKE_BATCHES = 4
#: The stage holds at most this many batches before spans take the direct path. A woken worker may wait
#: one GIL switch interval (5 ms, over a thousand calls) before it runs: the stage must outlast that.
STAGED_BATCHES = 64


class Session(Protocol):
    """What the forwarder needs of a handle's session (`sdk_telemetry.session.Session`)."""

    id: str

    def log_span_exception(self, span: ReadableSpan) -> bool:
        """Record the failed call of `span` as an `UNHANDLED_EXCEPTION` event."""
        ...


class Forwarder(SpanProcessor):
    """Added once to a TracerProvider; hands spans to the processors and session of one handle.

    Reconfiguring swaps the handle behind it (`use`), so a provider never holds two of ours.
    """

    def __init__(self, shutdown_owner: Callable[[], None]) -> None:
        self.processors: tuple[BatchSpanProcessor, ...] = ()
        self.settings = Settings()
        self.session: Session | None = None
        self.tag_session = False  # the provider's resource does not carry the session id
        self._shutdown_owner = shutdown_owner
        self._wake_at = 1
        self._stage_limit = 1
        self._consent_required = False
        self._init_stage()
        reinit_after_fork(self, type(self)._init_stage)

    def _init_stage(self) -> None:
        """An empty stage and a fresh lock: at construction and in a forked child (the parent's spans stay its own)."""
        self._staged: collections.deque[ReadableSpan] = collections.deque()
        self._drain_lock = threading.Lock()

    def use(self, processors: tuple[BatchSpanProcessor, ...], settings: Settings, session: Session | None) -> None:
        """Forward to `processors` with `settings` from now on (what is staged goes to the previous ones)."""
        self.drain()
        for processor in processors:
            processor.source = self.drain
        self.settings = settings
        self.session = session
        batch = max(1, settings.batch_size)
        self._wake_at = batch * WAKE_BATCHES
        self._stage_limit = batch * STAGED_BATCHES
        self._consent_required = settings.privacy.consent_required
        self.processors = processors

    @property
    def quiet_on_start(self) -> bool:
        """Whether `on_start` does nothing (instrumented calls then skip calling it)."""
        return not (self.tag_session and self.session is not None)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Mark the span with the session id when the provider's resource does not carry it."""
        session = self.session
        if self.tag_session and session is not None:
            span.set_attribute(attr.SESSION_ID, session.id)

    def on_end(self, span: ReadableSpan) -> None:
        """Stage a finished span for the processors, or forward it now (a failure, a full stage)."""
        processors = self.processors
        status = span._status
        if processors and (status is UNSET_STATUS or status.status_code is not _ERROR):
            first = processors[0]
            staged = self._staged
            if first._worker is not None and not first._shutdown and len(staged) < self._stage_limit:
                if self._consent_required and not consent_granted():
                    count_withheld()  # decided now: consent given later must not let it through
                    return
                staged.append(span)
                if len(staged) % self._wake_at == 0:
                    for processor in processors:
                        processor.wake()
                return
        self._forward(span)

    def drain(self) -> None:
        """Forward every staged span (called by the processors' workers, flushes and shutdowns)."""
        staged = self._staged
        if not staged:
            return
        with self._drain_lock:
            taken = []
            while staged:
                try:
                    taken.append(staged.popleft())
                except IndexError:
                    break
            ready = prepare_many(taken, self.settings)
            for processor in self.processors:
                processor.on_end_many(ready)

    def _forward(self, span: ReadableSpan) -> None:
        """Prepare the span (privacy, sampling), hand it to every processor, log a failure."""
        processors = self.processors
        session = self.session
        if not processors and (session is None or span.status.status_code is not _ERROR):
            return  # nothing to export, no failure to log
        prepared = prepare(span, self.settings)
        if prepared is None:
            return
        for processor in processors:
            processor.on_end(prepared)
        if session is not None and prepared.status.status_code is _ERROR:
            scope = prepared.instrumentation_scope
            if scope is not None and scope.name == attr.INVOCATION_SCOPE:
                session.log_span_exception(prepared)

    def shutdown(self) -> None:
        """Shut the handle down within the configured exit bound."""
        self._shutdown_owner()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush every current processor."""
        return all([processor.force_flush(timeout_millis) for processor in self.processors])

    def staged(self) -> int:
        """How many spans wait on the stage."""
        return len(self._staged)
