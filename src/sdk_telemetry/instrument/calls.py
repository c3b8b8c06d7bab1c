"""One instrumented call, from its start to its span's end: sync, async, generator and
async-generator flavours share `begin` and `finish`.

Nothing here may raise into the host program: if telemetry fails, the call runs untraced.
"""

from __future__ import annotations

import inspect
import logging
import traceback
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from time import time_ns
from types import CoroutineType
from typing import Any

import orjson
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
from opentelemetry.metrics import _internal as _meter_api
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, StaticSampler
from opentelemetry.trace import INVALID_SPAN, ProxyTracer, Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation import _SPAN_KEY
from sdk_telemetry_exporters import attributes as attr

from sdk_telemetry._version import __version__
from sdk_telemetry.instrument import errors as _errors
from sdk_telemetry.instrument.call_span import CallSpan, SpanFactory
from sdk_telemetry.instrument.metrics import FUNCTION, OUTCOME, InvocationMetrics, metrics_recorded
from sdk_telemetry.privacy import consent as _consent
from sdk_telemetry.privacy import scrubber as _privacy

_logger = logging.getLogger(__name__)
_tracer: Tracer = trace.get_tracer(attr.INVOCATION_SCOPE, __version__)
_metrics: InvocationMetrics | None = None
_INTERNAL = SpanKind.INTERNAL
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
# `_call_span`); None: spans are started through the tracer.
_factory: SpanFactory | None = None


def _current_tracer() -> Tracer:
    """The tracer to start spans with: the real one behind `_tracer` once there is one."""
    global _resolved, _drops, _root_drops, _dropped_parent, _factory
    tracer = _tracer
    source, real = _resolved
    if source is tracer:
        return real
    _dropped_parent = None
    inner: Tracer | None = tracer
    if isinstance(tracer, ProxyTracer):
        inner = tracer._real_tracer
        if inner is None:
            tracer._tracer  # noqa: B018 - resolves the proxy when a provider has been set since
            inner = tracer._real_tracer
        if inner is None:  # no provider yet: go through the proxy (no-op) and look again next call
            _drops, _factory = None, None
            return tracer
    assert inner is not None
    sampler = getattr(inner, "sampler", None)
    _drops, _root_drops = _sampler_drops(sampler)
    _factory = _span_factory(inner, sampler)
    _resolved = (tracer, inner)
    return inner


def refresh() -> None:
    """The setup changed (providers, processors, samplers): resolve the tracer again at the next call."""
    global _resolved
    _resolved = (None, _tracer)


def _span_factory(tracer: Tracer, sampler: Any) -> SpanFactory | None:
    """A factory for `tracer`'s spans when it is an enabled SDK tracer whose sampler keeps every span
    that reaches it (always on, or parent-based with default delegates and an always-on root)."""
    if _context_var is None or not isinstance(tracer, SdkTracer) or not tracer._is_enabled():
        return None  # (another runtime context: calls attach through the API, in `begin`)
    if not (_is_always_on(sampler) or (_drops == "parent" and not _root_drops)):
        return None
    try:
        return SpanFactory(tracer)
    except Exception:  # an SDK whose tracer lacks what the factory reads: start spans through it
        _logger.debug("sdk-telemetry: spans go through the SDK tracer", exc_info=True)
        return None


def _is_always_off(sampler: Any) -> bool:
    return isinstance(sampler, StaticSampler) and sampler._decision is Decision.DROP


def _is_always_on(sampler: Any) -> bool:
    return isinstance(sampler, StaticSampler) and sampler._decision is Decision.RECORD_AND_SAMPLE


def _sampler_drops(sampler: Any) -> tuple[str | None, bool]:
    """Whether the SDK sampler's decision is known without calling it: "all" (always off), "parent"
    (parent-based with the default delegates: a valid parent's sampled flag decides, the root
    sampler decides for a root span, and the second value says whether that root sampler drops
    everything), or None (ask the sampler)."""
    if _is_always_off(sampler):
        return "all", True
    if (
        isinstance(sampler, ParentBased)
        and _is_always_on(sampler._remote_parent_sampled)
        and _is_always_on(sampler._local_parent_sampled)
        and _is_always_off(sampler._remote_parent_not_sampled)
        and _is_always_off(sampler._local_parent_not_sampled)
    ):
        return "parent", _is_always_off(sampler._root)
    return None, False


def _sampled_out(parent: Context) -> bool:
    """True when the tracer's sampler would certainly drop a span started in `parent`."""
    if _drops == "all":
        return True
    span = parent.get(_SPAN_KEY)
    if span is None:
        return _root_drops
    context = span.get_span_context()  # type: ignore[attr-defined]
    if context is None or not context.is_valid:
        return _root_drops
    return not context.trace_flags.sampled


# Context attach/detach straight on the context variable of the default runtime context (what
# `opentelemetry.context.attach` does, minus two calls); any other runtime context goes through
# the API.
_runtime = otel_context._RUNTIME_CONTEXT
_context_var = _runtime._current_context if type(_runtime) is ContextVarsRuntimeContext else None
_get_context: Callable[[], Context] = _context_var.get if _context_var is not None else otel_context.get_current
_attach_context: Callable[[Context], object] = _context_var.set if _context_var is not None else otel_context.attach
_reset_context: Callable[[Any], object] = (
    _context_var.reset if _context_var is not None else otel_context._RUNTIME_CONTEXT.detach
)

_set_item = dict.__setitem__

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
    """A call in progress: its span, its context token (when attached) and its start time."""

    __slots__ = ("context", "ended", "span", "spec", "start_ns", "started", "token")

    def __init__(self, spec: CallSpec, span: Span, start_ns: int, context: Context) -> None:
        self.spec = spec
        self.span = span
        self.start_ns = start_ns
        self.context = context  # the caller's context with this call's span as the current span
        self.token: object | None = None
        self.ended = False
        self.started = False  # a generator's first step has run


#: What `begin` returns for a sync or async call with nothing to record (no span, no metrics): run
#: it as it is. (Generators get a `Call` with no span all the same: they run a step at a time, maybe
#: in other contexts, and each step must see the context they were called in.)
UNTRACED: Call = Call.__new__(Call)


def begin(spec: CallSpec, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any], attach: bool) -> Call | None:
    """Start the call's span (and make it current when `attach`); None if telemetry failed,
    `UNTRACED` when the call has nothing to record."""
    try:
        global _dropped_parent
        parent = _get_context()
        source, tracer = _resolved
        if source is _tracer and parent is _dropped_parent:
            dropped = True  # the same (immutable) context as the last call the sampler dropped
        else:
            if source is not _tracer:
                tracer = _current_tracer()
            dropped = _drops is not None and _sampled_out(parent)
            if dropped:
                _dropped_parent = parent
        if dropped:
            # The sampler would return a non-recording span that no processor ever sees: skip
            # making one. Its children see the same parent and are dropped alike. The call's
            # metrics are still recorded by `finish`, when there is a MeterProvider to take them.
            if attach and not metrics_recorded():  # a generator still needs `parent` at each step
                return UNTRACED
            return Call(spec, INVALID_SPAN, time_ns(), parent)
        start_ns = time_ns()
        factory = _factory
        if factory is not None:
            parent_span: Any = parent.get(_SPAN_KEY)
            parent_context = parent_span.get_span_context() if parent_span is not None else None
            span: Span = factory.start(spec.name, spec.start_attributes, parent_context, start_ns, parent)
        else:
            # Positional: name, context, kind, attributes, links, start_time (the API's signature).
            span = tracer.start_span(spec.name, parent, _INTERNAL, spec.start_attributes, _NO_LINKS, start_ns)
        if spec.capture_args and span.is_recording():
            span.set_attribute(attr.PROPS, _captured_arguments(spec, instance, args, kwargs))
        call = Call(spec, span, start_ns, _in_context(parent, span))
        if attach:
            call.token = _attach_context(call.context)
        return call
    except Exception:
        _logger.debug("sdk-telemetry: could not start a span for %s", spec.name, exc_info=True)
        return None


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
        if not metrics_recorded() or _consent.withheld():  # consent withheld: no metrics either
            return
        _invocation_metrics().record(call.spec.outcome_attributes[outcome], (end_ns - call.start_ns) / 1e9, error_type)
    except Exception:
        _logger.debug("sdk-telemetry: could not finish the span of %s", call.spec.name, exc_info=True)


def _record_error(span: Span, exc: Exception) -> str:
    kind = _errors.error_type(exc)
    error_id, propagated = _errors.claim_error_id(exc)
    message = _privacy.redact_text(str(exc))
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {message}" if message else type(exc).__name__))
    span.set_attribute(attr.ERROR_TYPE, kind)
    span.set_attribute(attr.ERROR_ID, error_id)
    code = _errors.error_code(exc)
    if code is not None:
        span.set_attribute(attr.ERROR_CODE, code)
    if propagated:
        span.set_attribute(attr.ERROR_PROPAGATED, True)
    else:
        stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        span.record_exception(
            exc,
            attributes={"exception.message": message, "exception.stacktrace": _privacy.redact_text(stack)},
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
    return orjson.dumps(_privacy.sanitize(named), default=str).decode()


# --- the four flavours of call -------------------------------------------------------------


def _lean_span(spec: CallSpec, parent: Context) -> CallSpan | None:
    """The started span of a call in the common case — a lean span (`_factory`, which implies the
    default runtime context), no argument capture, no MeterProvider — or None: then `begin` and
    `finish` decide (a sampled-out call, any other setup, a failure here)."""
    factory = _factory
    if factory is None or _meter_api._METER_PROVIDER is not None or spec.capture_args or _resolved[0] is not _tracer:
        return None
    try:
        # With a factory the sampler keeps root spans; a parent-based one drops the children of a
        # valid parent that is not sampled (left to `begin`, which remembers that parent).
        parent_span: Any = parent.get(_SPAN_KEY)
        parent_context = parent_span.get_span_context() if parent_span is not None else None
        if (
            _drops is not None
            and parent_context is not None
            and parent_context.is_valid
            and not parent_context.trace_flags.sampled
        ):
            return None
        return factory.start(spec.name, spec.start_attributes, parent_context, time_ns(), parent)
    except Exception:
        return None


def _in_context(parent: Context, span: Span) -> Context:
    """What `trace.set_span_in_context(span, parent)` builds, in one copy."""
    if not parent:  # the root context (a top-level call): nothing to copy
        return Context({_SPAN_KEY: span})
    context = Context(parent)
    _set_item(context, _SPAN_KEY, span)  # a Context refuses item assignment once it is handed out
    return context


def call_sync(spec: CallSpec, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    """Run a plain call inside its span; a returned coroutine is traced until it completes."""
    parent = _get_context()
    if (
        parent is _dropped_parent
        and _resolved[0] is _tracer
        and (_meter_api._METER_PROVIDER is None or not metrics_recorded())  # no MeterProvider: no call
    ):
        result = wrapped(*args, **kwargs)  # `begin`'s sampled-out shortcut, without the call to it
        if isinstance(result, CoroutineType):  # awaited later, maybe elsewhere: in the caller's context
            return _await_in_span(Call(spec, INVALID_SPAN, time_ns(), parent), result)
        return result
    span = _lean_span(spec, parent)
    if span is not None:  # the common case, kept short
        context = _in_context(parent, span)
        token = _context_var.set(context)  # type: ignore[union-attr]  # a factory implies it
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            _reset_context(token)
            finish(Call(spec, span, span._start_time, context), exc)
            raise
        _reset_context(token)
        if isinstance(result, CoroutineType):  # a sync function handing back an awaitable: time the await
            return _await_in_span(Call(spec, span, span._start_time, context), result)
        span.end()  # never raises
        return result
    call = begin(spec, instance, args, kwargs, attach=True)
    if call is None or call is UNTRACED:
        result = wrapped(*args, **kwargs)
        if call is UNTRACED and isinstance(result, CoroutineType):
            return _await_in_span(Call(spec, INVALID_SPAN, time_ns(), parent), result)
        return result
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as exc:
        finish(call, exc)
        raise
    if isinstance(result, CoroutineType):  # a sync function handing back an awaitable: time the await
        _detach(call)
        return _await_in_span(call, result)
    finish(call, None)
    return result


async def call_async(
    spec: CallSpec, wrapped: Callable[..., Awaitable[Any]], instance: Any, args: Any, kwargs: Any
) -> Any:
    """Await an `async def` call inside its span."""
    parent = _get_context()
    if parent is _dropped_parent and _resolved[0] is _tracer and not metrics_recorded():
        return await wrapped(*args, **kwargs)  # `begin`'s sampled-out shortcut, without the call to it
    span = _lean_span(spec, parent)
    if span is not None:  # the common case, kept short
        context = _in_context(parent, span)
        token = _context_var.set(context)  # type: ignore[union-attr]  # a factory implies it
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            _reset_context(token)
            finish(Call(spec, span, span._start_time, context), exc)
            raise
        _reset_context(token)
        span.end()  # never raises
        return result
    call = begin(spec, instance, args, kwargs, attach=True)
    if call is None or call is UNTRACED:
        return await wrapped(*args, **kwargs)
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as exc:
        finish(call, exc)
        raise
    finish(call, None)
    return result


async def _await_in_span(call: Call, awaitable: Awaitable[Any]) -> Any:
    call.token = _attach(call)
    try:
        result = await awaitable
    except BaseException as exc:
        finish(call, exc)
        raise
    finish(call, None)
    return result


def call_generator(
    spec: CallSpec, wrapped: Callable[..., Generator[Any, Any, Any]], instance: Any, args: Any, kwargs: Any
) -> Any:
    """Start the span now; it ends when the generator is exhausted, raises, is closed or abandoned."""
    call = begin(spec, instance, args, kwargs, attach=False)
    if call is None:
        return wrapped(*args, **kwargs)
    try:
        inner = wrapped(*args, **kwargs)
    except BaseException as exc:
        finish(call, exc)
        raise
    outer = _traced_generator(call, inner)
    _watch(outer, call)
    return outer


def call_async_generator(
    spec: CallSpec, wrapped: Callable[..., AsyncGenerator[Any, Any]], instance: Any, args: Any, kwargs: Any
) -> Any:
    """Like `call_generator`, for `async def` functions that `yield`."""
    call = begin(spec, instance, args, kwargs, attach=False)
    if call is None:
        return wrapped(*args, **kwargs)
    try:
        inner = wrapped(*args, **kwargs)
    except BaseException as exc:
        finish(call, exc)
        raise
    outer = _traced_async_generator(call, inner)
    _watch(outer, call)
    return outer


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


def _traced_generator(call: Call, inner: Generator[Any, Any, Any]) -> Generator[Any, Any, Any]:
    """Delegate to `inner` step by step, making the call's span current only while it runs."""
    call.started = True
    send_value: Any = None
    pending: BaseException | None = None
    while True:
        token = _attach(call)
        try:
            if pending is not None:
                exc, pending = pending, None
                item = inner.throw(exc)
            else:
                item = inner.send(send_value)
        except StopIteration as stop:
            _finish_once(call, None)
            return stop.value
        except BaseException as exc:
            _finish_once(call, exc)
            raise
        finally:
            _detach_token(token)
        try:
            send_value = yield item
        except GeneratorExit:
            token = _attach(call)
            try:
                inner.close()
            finally:
                _detach_token(token)
                _finish_once(call, None, "closed")
            raise
        except BaseException as exc:  # thrown in by the consumer: pass it on
            pending = exc
            send_value = None


async def _traced_async_generator(call: Call, inner: AsyncGenerator[Any, Any]) -> AsyncGenerator[Any, Any]:
    """The async twin of `_traced_generator`."""
    call.started = True
    send_value: Any = None
    pending: BaseException | None = None
    while True:
        token = _attach(call)
        try:
            if pending is not None:
                exc, pending = pending, None
                item = await inner.athrow(exc)
            else:
                item = await inner.asend(send_value)
        except StopAsyncIteration:
            _finish_once(call, None)
            return
        except BaseException as exc:
            _finish_once(call, exc)
            raise
        finally:
            _detach_token(token)
        try:
            send_value = yield item
        except GeneratorExit:
            token = _attach(call)
            try:
                await inner.aclose()
            finally:
                _detach_token(token)
                _finish_once(call, None, "closed")
            raise
        except BaseException as exc:
            pending = exc
            send_value = None


def _attach(call: Call) -> object | None:
    try:
        return _attach_context(call.context)
    except Exception:
        return None


def _detach_token(token: object | None) -> None:
    if token is not None:
        try:
            _reset_context(token)
        except Exception:
            _logger.debug("sdk-telemetry: context detach failed", exc_info=True)


def _detach(call: Call) -> None:
    token, call.token = call.token, None
    _detach_token(token)
