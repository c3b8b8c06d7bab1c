"""The span of one instrumented call, made without the SDK's general-purpose `Span`.

`SpanFactory.start` makes a `CallSpan` for a call whose tracer is an SDK `Tracer` with a sampler
that keeps every span it is asked about (the default `ParentBased(ALWAYS_ON)` or `ALWAYS_ON`;
the sampled-out cases never get here). A `CallSpan` is both things the pipeline needs:

- an API `Span` (it can be made current, children find its `SpanContext`, code inside the call
  may set attributes, add events, record exceptions, set the status), and
- an SDK `ReadableSpan` (every span processor of the provider gets it at `on_start` and `on_end`,
  every exporter reads it), the same object, not a copy.

The ids come from the provider's id generator; the SDK's default one (and `PrivateIdGenerator`) is
replaced by draws from a generator of our own, never from the global `random` module (a host that
seeds `random` gets the same numbers with instrumented calls in between), reseeded in a forked child
(parent and child never share ids).

What makes it cheap: the ids are drawn straight from that generator but the `SpanContext`
object is built on first use (children and exporters ask for it, a plain call never does); the
attributes are the function's shared, read-only start attributes until something writes one
(copied then, under the provider's span limits); events and links stay empty tuples until one
is added; the resource, scope and processor live on the factory, not on every span; a provider
whose only span processors are ours is not asked `on_start`, which would do nothing.

What it reads of the SDK's internals (the tracer's scope and limits, the provider's processors,
the `ReadableSpan` fields it fills in) comes from `sdk_telemetry.otel_compat`, which checks them at
import; where they are not as expected, calls get the SDK's own spans instead.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import traceback
from collections.abc import Mapping, Sequence
from time import time_ns
from typing import Any

from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import INVALID_SPAN_ID, INVALID_TRACE_ID, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util import types

from sdk_telemetry import otel_compat as _compat

_logger = logging.getLogger(__name__)
_copy_lock = threading.Lock()
UNSET_STATUS = Status(StatusCode.UNSET)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_SAMPLED_RANDOM = TraceFlags(TraceFlags.SAMPLED | getattr(TraceFlags, "RANDOM_TRACE_ID", 0))
_RANDOM_FLAG = int(getattr(TraceFlags, "RANDOM_TRACE_ID", 0))
_new = object.__new__  # what `CallSpan.__new__` resolves to, without looking it up on every span

# Span and trace ids: a generator of our own (seeded from os.urandom), never the global `random`.
_ids = random.Random()
getrandbits = _ids.getrandbits
if hasattr(os, "register_at_fork"):  # a forked child draws other ids than its parent
    os.register_at_fork(after_in_child=_ids.seed)


class PrivateIdGenerator(RandomIdGenerator):
    """The SDK's random span and trace ids, drawn from sdk-telemetry's own generator instead of the
    global `random` module: for a TracerProvider whose other spans must not touch the host's random state."""

    def generate_span_id(self) -> int:
        span_id = getrandbits(64)
        while span_id == INVALID_SPAN_ID:
            span_id = getrandbits(64)
        return span_id

    def generate_trace_id(self) -> int:
        trace_id = getrandbits(128)
        while trace_id == INVALID_TRACE_ID:
            trace_id = getrandbits(128)
        return trace_id


class SpanFactory:
    """What every `CallSpan` of one SDK tracer shares: resource, scope, limits, ids, processors."""

    __slots__ = (
        "_multi",
        "_only",
        "_processors_key",
        "_processors_state",
        "_quiet_for",
        "id_generator",
        "limits",
        "random_ids",
        "resource",
        "root_flags",
        "scope",
    )

    def __init__(self, tracer: Any, scope: InstrumentationScope | None, limits: SpanLimits) -> None:
        """For an SDK `tracer`, with its scope and limits (`otel_compat.tracer_internals`)."""
        self.resource: Resource = tracer.resource
        self.scope = scope
        self.limits = limits
        self.id_generator = tracer.id_generator
        self._multi = tracer.span_processor  # the provider's active (multi) span processor
        # Where it keeps its processors (a new tuple on every change): `state[key]`. Fails here (spans
        # go through the SDK) if it keeps none.
        self._processors_state, self._processors_key = _compat.processors_slot(self._multi)
        self._quiet_for: Any = None  # the processor tuple last found to be all quiet
        self._only: Any = None  # its one processor, when it has one
        random_ids = bool(getattr(self.id_generator, "is_trace_id_random", lambda: False)())
        self.root_flags = _SAMPLED_RANDOM if random_ids else _SAMPLED
        # The SDK's default generator (which would draw from the global `random`) and ours: drawn directly
        # from our generator, which also skips two calls a span.
        self.random_ids = type(self.id_generator) in (RandomIdGenerator, PrivateIdGenerator)

    def start(
        self,
        name: str,
        attributes: Mapping[str, Any],
        parent: SpanContext | None,
        start_ns: int,
        parent_context: Context | None = None,
    ) -> CallSpan:
        """A started span for `name` under `parent` (None or invalid: a new trace); `parent_context`
        is what the processors' `on_start` get."""
        span = _new(CallSpan)
        span._name = name
        span._factory = self
        span._start_time = start_ns
        span._attributes = attributes
        span._end_time = None  # set at the end anyway: on the instance from the start, it reads faster
        ids, direct = self.id_generator, self.random_ids  # (a zero draw is an invalid id: ask the generator)
        span._span_id = (direct and getrandbits(64)) or ids.generate_span_id()
        if parent is None or not parent.is_valid:
            span._trace_id = (direct and getrandbits(128)) or ids.generate_trace_id()
        else:
            span._trace_id = parent.trace_id
            span._parent = parent
        processors = self._processors_state[self._processors_key]
        if processors is not self._quiet_for and not self._all_quiet(processors):
            self._multi.on_start(span, parent_context=parent_context)
        return span

    def _all_quiet(self, processors: Any) -> bool:
        """Whether every processor says (`quiet_on_start`) that its on_start and _on_ending do nothing."""
        if processors is None:
            return False
        if all(getattr(processor, "quiet_on_start", False) for processor in processors):
            self._quiet_for = processors
            self._only = processors[0] if len(processors) == 1 else None
            return True
        return False

    def end(self, span: CallSpan) -> None:
        """Hand the ended span to the provider's processors (`_on_ending`, then `on_end`)."""
        multi = self._multi
        if self._processors_state[self._processors_key] is not self._quiet_for:
            on_ending = _compat.on_ending(multi)
            if on_ending is not None:
                on_ending(span)
        multi.on_end(span)


class CallSpan(trace.Span, ReadableSpan):
    """A recording span of one instrumented call; after `end`, the `ReadableSpan` processors get."""

    # Defaults shared by every span until one is set on the instance.
    _parent: SpanContext | None = None
    _end_time: int | None = None
    _context: SpanContext | None = None
    _status: Status = UNSET_STATUS
    _events: Sequence[Event] = ()
    _links: Sequence[trace.Link] = ()
    _kind = SpanKind.INTERNAL
    _instrumentation_info = None
    _owned = False  # `_attributes` is this span's own BoundedAttributes, not the shared start ones

    _factory: SpanFactory
    _name: str
    _start_time: int
    _trace_id: int
    _span_id: int
    _attributes: Any

    def __init__(self) -> None:  # pragma: no cover - made by SpanFactory.start only
        raise TypeError("CallSpan is made by SpanFactory.start")

    # --- ReadableSpan: what is not a plain field ---------------------------------------------

    @property
    def context(self) -> SpanContext:
        context = self._context
        if context is None:
            parent = self._parent
            if parent is None:
                flags = self._factory.root_flags
                state = None
            else:
                flags = _SAMPLED_RANDOM if parent.trace_flags & _RANDOM_FLAG else _SAMPLED
                state = parent.trace_state
            context = self._context = SpanContext(
                self._trace_id, self._span_id, is_remote=False, trace_flags=flags, trace_state=state
            )
        return context

    @property
    def resource(self) -> Resource:
        return self._factory.resource

    @property
    def instrumentation_scope(self) -> InstrumentationScope | None:
        return self._factory.scope

    @property
    def shares_attributes(self) -> bool:
        """True while the attributes are the function's shared, immutable start attributes (encoders may cache them)."""
        return not self._owned

    @property
    def attributes(self) -> types.Attributes:
        attributes: types.Attributes = self._attributes
        return attributes

    # --- API Span ----------------------------------------------------------------------------

    def get_span_context(self) -> SpanContext:
        return self.context

    def is_recording(self) -> bool:
        return self._end_time is None

    def end(self, end_time: int | None = None) -> None:
        """End the span and hand it to the provider's processors; never raises."""
        if self._end_time is not None:
            _logger.debug("sdk-telemetry: end() on an ended span %s", self._name)
            return
        if end_time is None:
            end_time = time_ns()
        self._end_time = end_time
        if self._owned:
            _compat.freeze(self._attributes)
        factory = self._factory
        only = factory._only
        try:
            if only is not None and factory._processors_state[factory._processors_key] is factory._quiet_for:
                only.on_end(self)  # one quiet processor (ours): skip the multi-processor's loop
            else:
                factory.end(self)
        except Exception:  # a processor's failure must not reach the instrumented call
            _logger.debug("sdk-telemetry: a span processor failed on %s", self._name, exc_info=True)

    def _writable_attributes(self) -> BoundedAttributes:
        if not self._owned:
            with _copy_lock:  # two threads writing the first attribute at once must share one copy
                if not self._owned:
                    limits = self._factory.limits
                    self._attributes = BoundedAttributes(
                        limits.max_span_attributes,
                        self._attributes,
                        immutable=False,
                        max_value_len=limits.max_span_attribute_length,
                    )
                    self._owned = True
        attributes: BoundedAttributes = self._attributes
        return attributes

    def set_attribute(self, key: str, value: types.AnyValue) -> None:
        if self._end_time is None:
            self._writable_attributes()[key] = value

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        if self._end_time is None:
            writable = self._writable_attributes()
            for key, value in attributes.items():
                writable[key] = value

    def add_event(self, name: str, attributes: types.Attributes = None, timestamp: int | None = None) -> None:
        if self._end_time is not None:
            return
        limits = self._factory.limits
        if not isinstance(self._events, BoundedList):
            self._events = BoundedList(limits.max_events)
        self._events.append(Event(name, self._frozen(limits.max_event_attributes, attributes), timestamp))

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        if self._end_time is not None or context is None or not (context.is_valid or attributes):
            return
        limits = self._factory.limits
        if not isinstance(self._links, BoundedList):
            self._links = BoundedList(limits.max_links)
        self._links.append(trace.Link(context, self._frozen(limits.max_link_attributes, attributes)))

    def _frozen(self, most: int | None, attributes: types.Attributes) -> BoundedAttributes:
        """An event's or a link's attributes: at most `most`, values cut to the span limits, immutable."""
        return BoundedAttributes(
            most, attributes, immutable=True, max_value_len=self._factory.limits.max_attribute_length
        )

    def update_name(self, name: str) -> None:
        if self._end_time is None:
            self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self._end_time is not None or self._status.status_code is StatusCode.OK:
            return
        if isinstance(status, StatusCode):
            status = Status(status, description)
        if status.status_code is not StatusCode.UNSET:
            self._status = status

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        """An `exception` event with the SDK's attributes (type, message, stack trace, escaped)."""
        module = type(exception).__module__
        qualname = type(exception).__qualname__
        values: dict[str, Any] = {
            "exception.type": f"{module}.{qualname}" if module and module != "builtins" else qualname,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(
                traceback.format_exception(type(exception), exception, exception.__traceback__)
            ),
            "exception.escaped": str(escaped),
        }
        if attributes:
            values.update(attributes)
        self.add_event("exception", values, timestamp)

    def to_json(self, indent: int | None = 4) -> str:
        self.context  # noqa: B018 - ReadableSpan.to_json reads the field, which is built on first use
        text: str = super().to_json(indent)
        return text

    def __repr__(self) -> str:
        return f'CallSpan(name="{self._name}", trace_id={self._trace_id:032x}, span_id={self._span_id:016x})'
