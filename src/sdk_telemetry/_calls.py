"""One instrumented call, from its start to its span's end: sync, async, generator and
async-generator flavours share `begin` and `finish`.

Nothing here may raise into the host program: if telemetry fails, the call runs untraced.
"""

from __future__ import annotations

import inspect
import logging
import time
import traceback
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from typing import Any

import orjson
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from sdk_telemetry_exporters import attributes as attr

from sdk_telemetry import _consent, _errors, _privacy
from sdk_telemetry._metrics import FUNCTION, OUTCOME, InvocationMetrics
from sdk_telemetry._version import __version__

_logger = logging.getLogger(__name__)
_tracer = trace.get_tracer(attr.INVOCATION_SCOPE, __version__)
_metrics: InvocationMetrics | None = None

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

    def __init__(self, spec: CallSpec, span: Span, start_ns: int) -> None:
        self.spec = spec
        self.span = span
        self.start_ns = start_ns
        self.context = trace.set_span_in_context(span)
        self.token: object | None = None
        self.ended = False
        self.started = False  # a generator's first step has run


def begin(spec: CallSpec, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any], attach: bool) -> Call | None:
    """Start the call's span (and make it current when `attach`); None if telemetry failed."""
    try:
        start_ns = time.time_ns()
        span = _tracer.start_span(
            spec.name, kind=SpanKind.INTERNAL, attributes=spec.start_attributes, start_time=start_ns
        )
        if spec.capture_args and span.is_recording():
            span.set_attribute(attr.PROPS, _captured_arguments(spec, instance, args, kwargs))
        call = Call(spec, span, start_ns)
        if attach:
            call.token = otel_context.attach(call.context)
        return call
    except Exception:
        _logger.debug("sdk-telemetry: could not start a span for %s", spec.name, exc_info=True)
        return None


def finish(call: Call, exc: BaseException | None, generator_end: str | None = None) -> None:
    """End the call's span with its outcome and record the invocation metrics; never raises."""
    try:
        if call.token is not None:
            token, call.token = call.token, None
            otel_context.detach(token)  # type: ignore[arg-type]
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
        end_ns = time.time_ns()
        span.end(end_time=end_ns)
        if _consent.withheld():  # consent required and not granted: no metrics either
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


def call_sync(spec: CallSpec, wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    """Run a plain call inside its span; a returned coroutine is traced until it completes."""
    call = begin(spec, instance, args, kwargs, attach=True)
    if call is None:
        return wrapped(*args, **kwargs)
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as exc:
        finish(call, exc)
        raise
    if inspect.iscoroutine(result):  # a sync function handing back an awaitable: time the await
        _detach(call)
        return _await_in_span(call, result)
    finish(call, None)
    return result


async def call_async(
    spec: CallSpec, wrapped: Callable[..., Awaitable[Any]], instance: Any, args: Any, kwargs: Any
) -> Any:
    """Await an `async def` call inside its span."""
    call = begin(spec, instance, args, kwargs, attach=True)
    if call is None:
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
    weakref.finalize(outer, _end_if_abandoned, call)
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
    weakref.finalize(outer, _end_if_abandoned, call)
    return outer


def _finish_once(call: Call, exc: BaseException | None, generator_end: str | None = None) -> None:
    if not call.ended:
        call.ended = True
        finish(call, exc, generator_end)


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
        return otel_context.attach(call.context)
    except Exception:
        return None


def _detach_token(token: object | None) -> None:
    if token is not None:
        try:
            otel_context.detach(token)  # type: ignore[arg-type]
        except Exception:
            _logger.debug("sdk-telemetry: context detach failed", exc_info=True)


def _detach(call: Call) -> None:
    token, call.token = call.token, None
    _detach_token(token)
