"""One instrumented call, from its start to its span's end, in four flavours: sync, async,
generator and async generator.

Every flavour asks `begin`, which decides once per call: sampled out (the sampler would drop the
span: make none, remember the parent so that the next call under it is dropped at once), the lean
path (a `CallSpan` from the tracer's `SpanFactory` when its sampler keeps every span; with no
MeterProvider to take metrics, ending the span is all there is to do) or the general one (the
tracer's own span in a `Call`, which `finish` ends with the invocation metrics). What it returns
is ended the same way on every path (`end()`, or `finish` with the error), so the flavours differ
only in the lines that run the wrapped code: `call_sync` and `call_async` in an `await`, the two
traced generators in their `await`s and the exception that ends them.

Before any of that, `begin` makes no span for a call made while OpenTelemetry's instrumentation is
suppressed (an exporter's own work) or, while nested calls collapse (`nested_calls`, the default),
for a call inside a traced call of the same SDK (`CallSpec.group`): the call runs in the outer
call's context. What a sync or async call returns is looked up by type once (`_result_kinds`): a
coroutine is awaited in the span, a stream (`streams`) keeps the span until it is done, anything
else ends it at once.

What this reads of OpenTelemetry's internals comes from `sdk_telemetry.otel_compat`.
Nothing here may raise into the host program: if telemetry fails, the call runs untraced.
"""

from __future__ import annotations

import enum
import inspect
import logging
import sys
import traceback
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Mapping
from time import time_ns
from types import CoroutineType
from typing import Any, Final

import orjson
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context, create_key
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import INVALID_SPAN, ProxyTracer, Span, SpanKind, Status, StatusCode, Tracer
from sdk_telemetry_exporters import attributes as attr

from sdk_telemetry import otel_compat as _compat
from sdk_telemetry._version import __version__
from sdk_telemetry.config import ENDUSER_ID, current_settings, current_user
from sdk_telemetry.config import scrubber as _active_scrubber
from sdk_telemetry.instrument import errors as _errors
from sdk_telemetry.instrument import metrics as _metrics_module
from sdk_telemetry.instrument import streams as _streams
from sdk_telemetry.instrument.call_span import CallSpan, SpanFactory
from sdk_telemetry.instrument.metrics import FUNCTION, OUTCOME, InvocationMetrics, metrics_recorded
from sdk_telemetry.privacy import withheld as _consent_withheld

_logger = logging.getLogger(__name__)
_tracer: Tracer = trace.get_tracer(attr.INVOCATION_SCOPE, __version__)
_metrics: InvocationMetrics | None = None
_INTERNAL = SpanKind.INTERNAL
_current_user = current_user.get  # the user of `with sdk_telemetry.user(...)`: one lookup per call
_NO_LINKS: tuple[Any, ...] = ()

# The tracer that `_tracer` resolved to, with the `_tracer` it came from. A `ProxyTracer` resolves
# once a real TracerProvider is set and then never changes; calling the real tracer directly skips
# the proxy on every call. Tests (and anyone) may replace `_tracer`: the cache follows it.
_resolved: tuple[Tracer | None, Tracer] = (None, _tracer)
# What the resolved tracer's sampler does without looking at the span (see `_sampler_drops`).
_drops: str | None = None
_root_drops = False
_dropped_parent: Context | None = None  # the parent context of the last call the sampler dropped
# Makes the spans of the resolved tracer when its sampler keeps every span it is asked about (see
# `_span_factory`); None: spans are started through the tracer.
_factory: SpanFactory | None = None

# Nested calls: while collapsing (the default), the context of a traced call carries the group of its
# function (`CallSpec.group`, its top-level package) under this key, and a call of the same group
# inside it makes no span of its own (it runs in the outer call's context). Read from the settings
# whenever the tracer is resolved again (`refresh`).
_GROUP_KEY: Final = create_key("sdk_telemetry.call_group")
_collapse = True

# How calls read the current context and make one current, find a context's span and put one in,
# and see whether a MeterProvider is set: straight on the runtime context's variable, with the span
# key and on the metrics API's global where `otel_compat` found them, else through the API (then
# `_span_key` is empty, and the lean path and the sampler shortcut are off).
_get_context: Callable[[], Context]
_attach_context: Callable[[Context], Any]
_reset_context: Callable[[Any], object]
_span_key: str
_meter_state: Mapping[str, object]  # `_meter_state[_meter_key]`: None while no MeterProvider is set
_meter_key: str
_suppress_key: str  # `parent.get(_suppress_key)` is true while instrumentation is suppressed (our exports)
_set_item = dict.__setitem__


def _bind() -> None:
    """Take what calls read of OpenTelemetry from `otel_compat` (at import, and again at `refresh`)."""
    global _get_context, _attach_context, _reset_context, _span_key, _meter_state, _meter_key, _suppress_key
    _get_context, _attach_context, _reset_context = _compat.context_functions()
    _span_key = _compat.span_key() or ""
    _meter_state, _meter_key = _compat.meter_provider_slot()
    _suppress_key = _compat.suppress_key()
    _metrics_module.bind()
    _streams.bind()


_bind()


def _current_tracer() -> Tracer:
    """The tracer to start spans with: the real one behind `_tracer` once there is one."""
    global _resolved, _drops, _root_drops, _dropped_parent, _factory, _collapse
    tracer = _tracer
    source, real = _resolved
    if source is tracer:
        return real
    _dropped_parent = None
    inner = _compat.real_tracer(tracer) if isinstance(tracer, ProxyTracer) else tracer
    if inner is None:  # no provider yet: go through the proxy (no-op) and look again next call
        _drops, _factory = None, None
        return tracer
    sampler = getattr(inner, "sampler", None)
    _drops, _root_drops = _sampler_drops(sampler)
    _factory = _span_factory(inner, sampler)
    if not _span_key:  # both read the parent's span from the context: the tracer does it instead
        _drops, _factory = None, None
    _collapse = _collapses_nested_calls()
    _resolved = (tracer, inner)
    return inner


def _collapses_nested_calls() -> bool:
    """Whether the settings in force collapse nested calls (`nested_calls`), the default if unreadable."""
    try:
        return current_settings().nested_calls != "children"
    except Exception:
        _logger.debug("sdk-telemetry: could not read nested_calls; collapsing", exc_info=True)
        return True


def refresh() -> None:
    """The setup changed (providers, processors, samplers): resolve the tracer again at the next call."""
    global _resolved
    _bind()
    _resolved = (None, _tracer)


def use_tracer(tracer: Tracer) -> Tracer:
    """Start the spans of instrumented calls with `tracer` from now on; returns the one used before."""
    global _tracer
    previous, _tracer = _tracer, tracer
    refresh()
    return previous


def _span_factory(tracer: Tracer, sampler: Any) -> SpanFactory | None:
    """A factory for `tracer`'s spans when it is an enabled SDK tracer whose sampler keeps every span
    that reaches it (always on, or parent-based with default delegates and an always-on root)."""
    if not isinstance(tracer, SdkTracer):
        return None
    if not (_is_always_on(sampler) or (_drops == "parent" and not _root_drops)):
        return None
    internals = _compat.tracer_internals(tracer)  # None: a disabled tracer, or unknown SDK internals
    if internals is None:
        return None
    try:
        return SpanFactory(tracer, *internals)
    except Exception:  # an SDK whose tracer lacks what the factory reads: start spans through it
        _logger.debug("sdk-telemetry: spans go through the SDK tracer", exc_info=True)
        return None


def _is_always_off(sampler: Any) -> bool:
    return _compat.static_decision(sampler) is Decision.DROP


def _is_always_on(sampler: Any) -> bool:
    return _compat.static_decision(sampler) is Decision.RECORD_AND_SAMPLE


def _sampler_drops(sampler: Any) -> tuple[str | None, bool]:
    """Whether the SDK sampler's decision is known without calling it: "all" (always off), "parent"
    (parent-based with the default delegates: a valid parent's sampled flag decides, the root
    sampler decides for a root span, and the second value says whether that root sampler drops
    everything), or None (ask the sampler)."""
    if _is_always_off(sampler):
        return "all", True
    delegates = _compat.parent_based_delegates(sampler)
    if delegates is not None:
        root, remote_sampled, remote_not_sampled, local_sampled, local_not_sampled = delegates
        if (
            _is_always_on(remote_sampled)
            and _is_always_on(local_sampled)
            and _is_always_off(remote_not_sampled)
            and _is_always_off(local_not_sampled)
        ):
            return "parent", _is_always_off(root)
    return None, False


SUCCESS = "success"
ERROR = "error"
CANCELLED = "cancelled"


def _invocation_metrics() -> InvocationMetrics:
    global _metrics
    if _metrics is None:
        _metrics = InvocationMetrics()
    return _metrics


class CallSpec:
    """What every call of one instrumented function shares: its span name and options."""

    __slots__ = (
        "capture_args",
        "group",
        "name",
        "outcome_attributes",
        "qualified_name",
        "signature",
        "start_attributes",
    )

    def __init__(self, name: str, qualified_name: str, function: Callable[..., Any], capture_args: bool) -> None:
        self.name = name
        self.qualified_name = qualified_name
        self.capture_args = capture_args
        # The SDK the function belongs to: the top-level package of its module (the function's own
        # span name when it has none). Its calls inside a call of the same group are collapsed.
        module = getattr(function, "__module__", None)
        self.group = sys.intern(module.partition(".")[0]) if isinstance(module, str) and module else name
        self.signature: inspect.Signature | None = None
        if capture_args:
            try:
                self.signature = inspect.signature(function)
            except (TypeError, ValueError):
                self.signature = None
        self.start_attributes = {"code.function.name": qualified_name}
        self.outcome_attributes = {
            outcome: {FUNCTION: name, OUTCOME: outcome} for outcome in (SUCCESS, ERROR, CANCELLED)
        }


class Call:
    """A call in progress: its span, its context token (when attached) and its start time; for a
    generator, also what its consumer sent or threw in for the next step."""

    __slots__ = ("context", "ended", "pending", "sent", "span", "spec", "start_ns", "started", "token")
    measured = True  # `finish` records its invocation metrics (see `_Unmeasured`)

    def __init__(self, spec: CallSpec, span: Span, start_ns: int, context: Context) -> None:
        self.spec = spec
        self.span = span
        self.start_ns = start_ns
        self.context = context  # the caller's context with this call's span as the current span
        self.token: object | None = None
        self.ended = False
        self.started = False  # a generator's first step has run
        self.sent: Any = None  # what a generator's consumer sent, for the next step
        self.pending: BaseException | None = None  # what it threw in, for the next step

    def end(self) -> None:
        """The call returned: end its span and record its metrics."""
        finish(self, None)

    def end_stream(self, exc: BaseException | None, end: str | None, items: int, first_item_ns: int | None) -> None:
        """The stream the call returned is done: end the span with what it streamed (`streams.StreamCall`)."""
        span = self.span
        try:
            if span.is_recording():
                span.set_attribute(attr.STREAM_ITEMS, items)
                if first_item_ns is not None:
                    span.set_attribute(attr.STREAM_FIRST_ITEM_MS, round((first_item_ns - self.start_ns) / 1e6, 3))
        except Exception:
            _logger.debug("sdk-telemetry: could not record the stream of %s", self.spec.name, exc_info=True)
        _finish_once(self, exc, end)

    def thrown(self) -> BaseException:
        """Take what a generator's consumer threw in, to throw it into the inner generator."""
        exc = self.pending
        assert exc is not None
        self.pending = None
        return exc


class _Unmeasured(Call):
    """An untraced call that still runs its steps (a generator's, an awaited coroutine's) in its
    caller's context: nothing to record when it ends."""

    __slots__ = ()
    measured = False


class _Untraced(enum.Enum):
    UNTRACED = "untraced"


#: What `begin` returns for a call with nothing to record (sampled out with no MeterProvider, made
#: while instrumentation is suppressed, or nested in a call of the same SDK while those collapse):
#: run it as it is. (A generator still runs each step in the context it was called in.)
UNTRACED: Final = _Untraced.UNTRACED

#: What `begin` returns for a traced call: what ends it (`end()`), and the context to run it in (the
#: caller's, with the call's span as the current span). What ends it is the `CallSpan` itself on the
#: lean path (nothing else to record) or a `Call`, which `finish` ends.
Started = tuple[CallSpan | Call, Context]


def begin(
    spec: CallSpec, parent: Context, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Started | _Untraced | None:
    """Decide how the call is traced and start its span; `UNTRACED` when the call has nothing to
    record, None if telemetry failed (the call then runs untraced)."""
    try:
        global _dropped_parent
        if _resolved[0] is not _tracer:
            _current_tracer()
        elif parent is _dropped_parent and _meter_state[_meter_key] is None:
            return UNTRACED  # the last call the sampler dropped had the same (immutable) parent context
        # (The root context of a top-level call is empty: neither key can be there.)
        if parent and (parent.get(_suppress_key) or (_collapse and parent.get(_GROUP_KEY) == spec.group)):
            return UNTRACED  # an exporter's own work (no telemetry about telemetry), or a nested call
        factory = _factory
        parent_context = None
        if factory is not None or _drops is not None:  # both need the parent's span (and imply `_span_key`)
            parent_span: Any = parent.get(_span_key)
            parent_context = parent_span.get_span_context() if parent_span is not None else None
            # The sampler's decision, where it is known without calling it (see `_sampler_drops`).
            if _drops is not None and (
                _root_drops
                if parent_context is None or not parent_context.is_valid
                else _drops == "all" or not parent_context.trace_flags.sampled
            ):
                # The sampler would return a non-recording span that no processor ever sees: skip
                # making one. Its children see the same parent and are dropped alike.
                _dropped_parent = parent
                return _sampled_out(spec, parent)
        if factory is None:  # the tracer's own span
            return _begin_through_tracer(spec, parent, instance, args, kwargs)
        span = factory.start(spec.name, spec.start_attributes, parent_context, time_ns(), parent)
        user_id = _current_user()
        if user_id is not None:
            span.set_attribute(ENDUSER_ID, user_id)
        if spec.capture_args:
            _capture_arguments(span, spec, instance, args, kwargs)
        # What `trace.set_span_in_context(span, parent)` builds, in one copy (`otel_compat.context_with_span`,
        # inline on the lean path).
        if parent:
            context = Context(parent)
            _set_item(context, _span_key, span)  # a Context refuses item assignment once it is handed out
            if _collapse:
                _set_item(context, _GROUP_KEY, spec.group)
        elif _collapse:  # the root context (a top-level call): nothing to copy
            context = Context({_span_key: span, _GROUP_KEY: spec.group})
        else:
            context = Context({_span_key: span})
        if _meter_state[_meter_key] is None:
            return span, context  # the lean path: ending the span is all there is to do
        return Call(spec, span, span._start_time, context), context
    except Exception:
        _logger.debug("sdk-telemetry: could not start a span for %s", spec.name, exc_info=True)
        return None


def _begin_through_tracer(
    spec: CallSpec, parent: Context, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Started:
    """`begin` for a tracer without a `SpanFactory`: its own span, in a `Call`."""
    tracer = _resolved[1] if _resolved[0] is _tracer else _current_tracer()
    start_ns = time_ns()
    # Positional: name, context, kind, attributes, links, start_time (the API's signature).
    span = tracer.start_span(spec.name, parent, _INTERNAL, spec.start_attributes, _NO_LINKS, start_ns)
    user_id = _current_user()
    if user_id is not None:
        span.set_attribute(ENDUSER_ID, user_id)
    if spec.capture_args:
        _capture_arguments(span, spec, instance, args, kwargs)
    context = _compat.context_with_span(parent, span)
    if _collapse:
        context = otel_context.set_value(_GROUP_KEY, spec.group, context)
    return Call(spec, span, start_ns, context), context


def _capture_arguments(
    span: Span, spec: CallSpec, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """The call's arguments (sanitized) as the `PROPS` attribute of a recording span."""
    if span.is_recording():
        span.set_attribute(attr.PROPS, _captured_arguments(spec, instance, args, kwargs))


def _sampled_out(spec: CallSpec, parent: Context) -> Started | _Untraced:
    """A call the sampler drops: nothing to record, or only its metrics (recorded by `finish` when a
    MeterProvider takes them); it runs in the caller's context either way."""
    if not metrics_recorded():
        return UNTRACED
    return Call(spec, INVALID_SPAN, time_ns(), parent), parent


def _as_call(spec: CallSpec, ends: CallSpan | Call, context: Context) -> Call:
    """The `Call` of a started call (made for a lean one, which has none)."""
    if isinstance(ends, Call):
        return ends
    return Call(spec, ends, ends._start_time, context)


def _failed(spec: CallSpec, ends: CallSpan | Call, context: Context, token: Any, exc: BaseException) -> None:
    """The wrapped call raised `exc`: back to the caller's context, and end the span with the error."""
    _reset_context(token)
    finish(_as_call(spec, ends, context), exc)


def finish(call: Call, exc: BaseException | None, generator_end: str | None = None) -> None:
    """End the call's span with its outcome and record the invocation metrics; never raises."""
    try:
        token = call.token
        if token is not None:
            call.token = None
            _detach_token(token)
        span = call.span
        error_type = None
        outcome = SUCCESS
        if exc is not None:
            if isinstance(exc, Exception):
                outcome = ERROR
                error_type = _record_error(span, exc)
            else:  # KeyboardInterrupt, asyncio.CancelledError, GeneratorExit, SystemExit
                outcome = CANCELLED
                span.set_attribute("sdk_telemetry.cancelled", type(exc).__name__)
        if generator_end is not None:
            span.set_attribute(attr.GENERATOR_END, generator_end)
        end_ns = time_ns()
        span.end(end_ns)
        # No MeterProvider behind the global proxy (or a no-op one): recording would do nothing.
        if not call.measured or not metrics_recorded() or _consent_withheld():  # consent withheld: no metrics either
            return
        _invocation_metrics().record(call.spec.outcome_attributes[outcome], (end_ns - call.start_ns) / 1e9, error_type)
    except Exception:
        _logger.debug("sdk-telemetry: could not finish the span of %s", call.spec.name, exc_info=True)


def _record_error(span: Span, exc: Exception) -> str:
    kind = _errors.error_type(exc)
    error_id, propagated = _errors.claim_error_id(exc)
    scrubber = _active_scrubber()
    message = scrubber.text(str(exc), ())
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {message}" if message else type(exc).__name__))
    span.set_attribute(attr.ERROR_TYPE, kind)
    span.set_attribute(attr.ERROR_ID, error_id)
    status = _errors.http_status(exc)
    if status is not None:
        span.set_attribute(_errors.HTTP_STATUS, status)
    code = _errors.error_code(exc, status)
    if code is not None:
        span.set_attribute(attr.ERROR_CODE, code)
    if propagated:
        span.set_attribute(attr.ERROR_PROPAGATED, True)
    else:
        stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        span.record_exception(
            exc,
            attributes={"exception.message": message, "exception.stacktrace": scrubber.text(stack, ())},
            escaped=True,
        )
    return kind


def _captured_arguments(spec: CallSpec, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    named: dict[str, Any]
    if spec.signature is not None:
        try:
            first = next(iter(spec.signature.parameters), None)
            if instance is not None and first in ("self", "cls"):
                args = (instance, *args)  # wrapt passes the bound instance apart from the arguments
            bound = spec.signature.bind_partial(*args, **kwargs)
            named = dict(bound.arguments)
        except TypeError:
            named = {"args": list(args), **kwargs}
    else:
        named = {"args": list(args), **kwargs}
    for implicit in ("self", "cls"):
        named.pop(implicit, None)
    return orjson.dumps(_active_scrubber().structure(named, (), 0), default=str).decode()


# --- the four flavours of call -------------------------------------------------------------


def call_sync(spec: CallSpec, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    """Run a plain call inside its span; a returned coroutine is traced until it completes."""
    __tracebackhide__ = True  # pytest leaves this frame out of failure reports
    parent = _get_context()
    # `begin` decides; a sampled-out sync call costs little more than wrapt's own, so it looks up
    # begin's last decision here rather than asking again (a call would add a tenth).
    if parent is _dropped_parent and _resolved[0] is _tracer and _meter_state[_meter_key] is None:
        started: Started | _Untraced | None = UNTRACED
    else:
        started = begin(spec, parent, instance, args, kwargs)
        if started is not UNTRACED and started is not None:
            ends, context = started
            token = _attach_context(context)
            try:
                result = wrapped(*args, **kwargs)
            except BaseException as exc:
                _failed(spec, ends, context, token, exc)
                raise
            _reset_context(token)
            kind = _result_kinds[type(result)]  # None for a plain value (see `_ResultKinds`)
            if kind is not None:
                return _traced_result(kind, _as_call(spec, ends, context), result)
            ends.end()  # never raises
            return result
    result = wrapped(*args, **kwargs)  # untraced (or telemetry failed)
    if isinstance(result, CoroutineType) and started is UNTRACED:  # awaited later, maybe elsewhere:
        return _await_in_span(_Unmeasured(spec, INVALID_SPAN, 0, parent), result)  # in the caller's context
    return result


async def call_async(
    spec: CallSpec, wrapped: Callable[..., Awaitable[Any]], instance: Any, args: Any, kwargs: Any
) -> Any:
    """Await an `async def` call inside its span."""
    __tracebackhide__ = True  # pytest leaves this frame out of failure reports
    parent = _get_context()
    started = begin(spec, parent, instance, args, kwargs)
    if started is UNTRACED or started is None:
        return await wrapped(*args, **kwargs)
    ends, context = started
    token = _attach_context(context)
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as exc:
        _failed(spec, ends, context, token, exc)
        raise
    _reset_context(token)
    kind = _result_kinds[type(result)]
    if kind is not None and kind is not _COROUTINE:  # a stream: its span ends with it
        return _traced_result(kind, _as_call(spec, ends, context), result)
    ends.end()  # never raises
    return result


async def _await_in_span(call: Call, awaitable: Awaitable[Any]) -> Any:
    """Await what a sync call returned in its span, which ends when the awaitable completes (or, when
    it gives a stream, when the stream does)."""
    __tracebackhide__ = True  # pytest leaves this frame out of failure reports
    call.token = _attach_context(call.context)
    try:
        result = await awaitable
    except BaseException as exc:
        finish(call, exc)
        raise
    kind = _result_kinds[type(result)]
    if kind is not None and kind is not _COROUTINE and call.measured:
        token, call.token = call.token, None
        _detach_token(token)
        return _traced_result(kind, call, result)
    finish(call, None)
    return result


# --- what a call returned ----------------------------------------------------------------------

#: The kind of a result that is awaited in the call's span: a coroutine.
_COROUTINE: Final = "coroutine"
_KINDS_CACHED = 4096  # result types remembered at most (a program making classes on the fly passes it)


class _ResultKinds(dict[type, Any]):
    """Result type -> what its values need: None (a plain value: the span ends now), `_COROUTINE`, or
    the proxy class of a stream (`streams.stream_proxy_class`). Decided once per type: a plain call
    pays a subscript."""

    def __missing__(self, cls: type) -> Any:
        kind = _COROUTINE if cls is CoroutineType else _streams.stream_proxy_class(cls)
        if len(self) < _KINDS_CACHED:
            self[cls] = kind
        return kind


_result_kinds = _ResultKinds()


def _traced_result(kind: Any, call: Call, result: Any) -> Any:
    """A traced call's result that its span outlasts: an awaited coroutine, or a stream."""
    if kind is _COROUTINE:  # a sync function handing back an awaitable: time the await
        return _await_in_span(call, result)
    try:
        return _streams.traced_stream(kind, result, call)
    except Exception:  # the stream goes back as it is, its span ended now
        _logger.debug("sdk-telemetry: could not trace the stream of %s", call.spec.name, exc_info=True)
        finish(call, None)
        return result


def _generator_call(traced: Callable[[Call, Any], Any], name: str, doc: str) -> Callable[..., Any]:
    """`call_generator` or `call_async_generator`: the span starts now and ends with the generator
    that `traced` makes around the wrapped one."""

    def start(spec: CallSpec, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
        __tracebackhide__ = True  # pytest leaves this frame out of failure reports
        parent = _get_context()
        started = begin(spec, parent, instance, args, kwargs)
        if started is None:
            return wrapped(*args, **kwargs)
        call: Call
        if started is UNTRACED:  # no span, but each step still runs in the caller's context
            call = _Unmeasured(spec, INVALID_SPAN, 0, parent)
        else:
            ends, context = started
            call = ends if isinstance(ends, Call) else Call(spec, ends, ends._start_time, context)  # `_as_call`
        try:
            inner = wrapped(*args, **kwargs)
        except BaseException as exc:
            finish(call, exc)
            raise
        outer = traced(call, inner)
        _watch(outer, call)
        return outer

    start.__name__ = start.__qualname__ = name
    start.__doc__ = doc
    return start


def _finish_once(call: Call, exc: BaseException | None, generator_end: str | None = None) -> None:
    if not call.ended:
        call.ended = True
        finish(call, exc, generator_end)


# A traced generator's weak reference -> its call, until the generator is collected. (A weak
# reference with a callback costs a third of `weakref.finalize`, paid on every generator call.)
_watched: dict[weakref.ref[Any], Call] = {}


def _watch(outer: Any, call: Call) -> None:
    _watched[weakref.ref(outer, _collected)] = call


def _collected(ref: weakref.ref[Any]) -> None:
    call = _watched.pop(ref, None)
    if call is not None:
        _end_if_abandoned(call)


def _end_if_abandoned(call: Call) -> None:
    """Finalizer of a traced generator that was never started.

    A weak reference dies before the interpreter closes a suspended generator it drops (`break`
    out of a `for` loop, last reference gone); that close ends a started generator's span.
    """
    if not call.started:
        _finish_once(call, None, "abandoned")


# The traced generators: each step of the inner generator runs in the call's context (made current
# straight before it, left by `_detach_token` after it, or by `_ended` when it ends the span); the
# consumer's sends, throws and close reach the inner generator. The two differ only in their `await`s.


def _traced_generator(call: Call, inner: Generator[Any, Any, Any]) -> Generator[Any, Any, Any]:
    """Delegate to `inner` step by step, making the call's span current only while it runs."""
    __tracebackhide__ = True  # pytest leaves this frame out of failure reports
    call.started = True
    while True:
        token = _attach_context(call.context)
        try:
            item = inner.send(call.sent) if call.pending is None else inner.throw(call.thrown())
        except BaseException as exc:
            _ended(call, token, exc)
            if isinstance(exc, StopIteration):
                return exc.value
            raise
        _detach_token(token)
        try:
            call.sent = yield item
        except GeneratorExit:
            _close(call, inner)
            raise
        except BaseException as exc:  # thrown in by the consumer: pass it on
            call.pending = exc


async def _traced_async_generator(call: Call, inner: AsyncGenerator[Any, Any]) -> AsyncGenerator[Any, Any]:
    """The async twin of `_traced_generator`."""
    __tracebackhide__ = True  # pytest leaves this frame out of failure reports
    call.started = True
    while True:
        token = _attach_context(call.context)
        try:
            item = await (inner.asend(call.sent) if call.pending is None else inner.athrow(call.thrown()))
        except BaseException as exc:
            _ended(call, token, exc)
            if isinstance(exc, StopAsyncIteration):
                return
            raise
        _detach_token(token)
        try:
            call.sent = yield item
        except GeneratorExit:
            await _aclose(call, inner)
            raise
        except BaseException as exc:  # thrown in by the consumer: pass it on
            call.pending = exc


_RETURNED = (StopIteration, StopAsyncIteration)  # what a generator's step raises when it returns


def _ended(call: Call, token: object, exc: BaseException) -> None:
    """A step of the inner generator raised `exc`: it returned (`StopIteration`) or failed. End the
    span, then leave the call's context."""
    _finish_once(call, None if isinstance(exc, _RETURNED) else exc)
    _detach_token(token)


def _close(call: Call, inner: Generator[Any, Any, Any]) -> None:
    """The consumer closes the traced generator: close the inner one in the call's context."""
    token = _attach_context(call.context)
    try:
        inner.close()
    finally:
        _closed(call, token)


async def _aclose(call: Call, inner: AsyncGenerator[Any, Any]) -> None:
    """`_close` for an async generator."""
    token = _attach_context(call.context)
    try:
        await inner.aclose()
    finally:
        _closed(call, token)


def _closed(call: Call, token: object) -> None:
    _detach_token(token)
    _finish_once(call, None, "closed")


call_generator = _generator_call(
    _traced_generator,
    "call_generator",
    "Start the span now; it ends when the generator is exhausted, raises, is closed or abandoned.",
)
call_async_generator = _generator_call(
    _traced_async_generator, "call_async_generator", "Like `call_generator`, for `async def` functions that `yield`."
)


def _detach_token(token: object | None) -> None:
    if token is not None:
        try:
            _reset_context(token)
        except Exception:
            _logger.debug("sdk-telemetry: context detach failed", exc_info=True)
