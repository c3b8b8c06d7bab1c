"""Every read of an OpenTelemetry private name that sdk-telemetry relies on, in one place.

The instrumented call path (`instrument/calls.py`, `instrument/call_span.py`,
`instrument/metrics.py`) and the batching core (`pipeline/batching.py`) skip some of the API's and
the SDK's general-purpose steps, and that means reading names OpenTelemetry does not promise to
keep. This module is the only one that reads them. At import it checks that each name is there and
does what the shortcut assumes, and sets one flag per feature; the callers ask here, and where a
flag is off they take the public API instead (noted once, at debug level, when first taken).
Each flag: what it covers -> the fallback.

- `SPAN_KEY_AVAILABLE`: `trace.propagation._SPAN_KEY`, the key of a context's current span (a
  `Context` is a dict) -> `trace.get_current_span`, `trace.set_span_in_context`, and spans start
  through the tracer (no lean path, no sampler shortcut).
- `CONTEXT_VAR_AVAILABLE`: `context._RUNTIME_CONTEXT._current_context`, the default runtime
  context's ContextVar -> `context.get_current`, `context.attach`, `context.detach`.
- `PROXY_TRACER_AVAILABLE`: `ProxyTracer._real_tracer` and `._tracer` -> spans start through the
  proxy.
- `SAMPLER_INTROSPECTION_AVAILABLE`: `StaticSampler._decision`; `ParentBased._root` and its four
  `_(remote|local)_parent_(not_)sampled` delegates -> `sampler is ALWAYS_ON / ALWAYS_OFF`; any other
  sampler is asked for every span.
- `CALL_SPAN_AVAILABLE`: the SDK `Tracer`'s `_instrumentation_scope`, `_span_limits` and
  `_is_enabled()`; the multi span processors' `_span_processors`; the `ReadableSpan` fields that a
  `CallSpan` fills in -> `tracer.start_span` (the SDK's own spans).
- `ON_ENDING_AVAILABLE`: `SpanProcessor._on_ending` -> nothing to call (such an SDK has no ending step).
- `FROZEN_ATTRIBUTES_AVAILABLE`: `BoundedAttributes._immutable` -> an ended span's attributes are left
  writable (the ended span itself refuses writes).
- `METER_PROVIDER_AVAILABLE`: `metrics._internal._METER_PROVIDER` -> `metrics.get_meter_provider()`
  (its proxy counts as a provider: the metrics go through it).
- `SUPPRESS_KEY_AVAILABLE`: `context._SUPPRESS_INSTRUMENTATION_KEY` -> the plain
  "suppress_instrumentation" key, which instrumentations also honour.

`FAST_PATH_AVAILABLE`: everything the common call path uses is there (span key, context variable,
call span), so calls run at full speed.

Where a name is read on every call (the global MeterProvider, the provider's span processors),
this module hands out the mapping that holds it and its key, checked here: a subscript costs the
call path less than a function call would.

The flags are module attributes: a test may set one to False to take its fallback (the call path
takes again what it uses from here at `calls.refresh()`).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any, cast

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import (
    ConcurrentMultiSpanProcessor,
    ReadableSpan,
    SpanLimits,
    SpanProcessor,
    SynchronousMultiSpanProcessor,
    sampling,
)
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import NonRecordingSpan, ProxyTracer, Span, SpanKind, Status, StatusCode

_logger = logging.getLogger(__name__)
_reasons: dict[str, str] = {}  # feature -> why its check failed at import
_logged: set[str] = set()


def _fallback(feature: str) -> None:
    """Note, once per feature, that a caller takes the public API instead of `feature`'s private names."""
    if feature not in _logged:
        _logged.add(feature)
        _logger.debug(
            "sdk-telemetry: OpenTelemetry's %s is not as expected (%s); using the public API",
            feature,
            _reasons.get(feature, "turned off"),
        )


def _check(feature: str, probe: Callable[[], object]) -> bool:
    """Run `probe` (which raises or returns False when a name is missing or behaves otherwise)."""
    try:
        if probe() is not False:
            return True
        _reasons[feature] = "a check failed"
    except Exception as exc:
        _reasons[feature] = f"{type(exc).__name__}: {exc}"
    return False


# --- the current span's context key ------------------------------------------------------------

SPAN_KEY: str = ""
_probe_span = NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)


def _check_span_key() -> bool:
    global SPAN_KEY
    from opentelemetry.trace.propagation import _SPAN_KEY

    made = trace.set_span_in_context(_probe_span, Context())
    if not (isinstance(_SPAN_KEY, str) and issubclass(Context, dict) and dict(made) == {_SPAN_KEY: _probe_span}):
        return False
    if trace.get_current_span(Context({_SPAN_KEY: _probe_span})) is not _probe_span:
        return False
    SPAN_KEY = _SPAN_KEY
    return True


SPAN_KEY_AVAILABLE = _check("span key", _check_span_key)


def span_key() -> str | None:
    """The context key of a context's current span (`context.get(key)`; a fresh copy of a context
    takes another with `dict.__setitem__`); None: use `trace.get_current_span` and
    `trace.set_span_in_context`."""
    if SPAN_KEY_AVAILABLE:
        return SPAN_KEY
    _fallback("span key")
    return None


_set_item = dict.__setitem__


def context_with_span(parent: Context, span: Span) -> Context:
    """What `trace.set_span_in_context(span, parent)` builds, in one copy."""
    if not SPAN_KEY_AVAILABLE:
        _fallback("span key")
        return trace.set_span_in_context(span, parent)
    if not parent:  # the root context (a top-level call): nothing to copy
        return Context({SPAN_KEY: span})
    context = Context(parent)
    _set_item(context, SPAN_KEY, span)  # a Context refuses item assignment once it is handed out
    return context


# --- the runtime context's variable ------------------------------------------------------------

CONTEXT_VAR: ContextVar[Context] | None = None


def _check_context_var() -> bool:
    global CONTEXT_VAR
    from opentelemetry.context import _RUNTIME_CONTEXT
    from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext

    if type(_RUNTIME_CONTEXT) is not ContextVarsRuntimeContext:
        return False  # another runtime context (OTEL_PYTHON_CONTEXT): only the API knows it
    variable = _RUNTIME_CONTEXT._current_context
    if not isinstance(variable, ContextVar) or variable.get() is not otel_context.get_current():
        return False
    probe = Context()
    token = otel_context.attach(probe)
    try:
        attached = variable.get() is probe
    finally:
        otel_context.detach(token)
    if not attached or variable.get() is probe:
        return False
    CONTEXT_VAR = variable
    return True


CONTEXT_VAR_AVAILABLE = _check("runtime context variable", _check_context_var)


def context_functions() -> tuple[Callable[[], Context], Callable[[Context], Any], Callable[[Any], object]]:
    """(get the current context, make a context current and return its token, restore by that token)."""
    if CONTEXT_VAR_AVAILABLE and CONTEXT_VAR is not None:
        return CONTEXT_VAR.get, CONTEXT_VAR.set, CONTEXT_VAR.reset
    _fallback("runtime context variable")
    return otel_context.get_current, otel_context.attach, otel_context.detach


# --- the proxy tracer --------------------------------------------------------------------------


def _check_proxy_tracer() -> bool:
    proxy = ProxyTracer("sdk_telemetry.otel_compat")
    return proxy._real_tracer is None and isinstance(inspect.getattr_static(ProxyTracer, "_tracer"), property)


PROXY_TRACER_AVAILABLE = _check("proxy tracer", _check_proxy_tracer)


def real_tracer(proxy: ProxyTracer) -> trace.Tracer | None:
    """The tracer behind `proxy` once a TracerProvider is set (resolving it), None while there is none.

    Without the proxy's internals: `proxy` itself (every span starts through it, which resolves alone).
    """
    if not PROXY_TRACER_AVAILABLE:
        _fallback("proxy tracer")
        return proxy
    inner: trace.Tracer | None = proxy._real_tracer
    if inner is None:
        proxy._tracer  # noqa: B018 - resolves the proxy when a provider has been set since
        inner = proxy._real_tracer
    return inner


# --- samplers ----------------------------------------------------------------------------------

_DELEGATES = (
    "_root",
    "_remote_parent_sampled",
    "_remote_parent_not_sampled",
    "_local_parent_sampled",
    "_local_parent_not_sampled",
)


def _check_samplers() -> bool:
    on, off = sampling.ALWAYS_ON, sampling.ALWAYS_OFF
    if not (isinstance(on, sampling.StaticSampler) and isinstance(off, sampling.StaticSampler)):
        return False
    if on._decision is not sampling.Decision.RECORD_AND_SAMPLE or off._decision is not sampling.Decision.DROP:
        return False
    root = sampling.TraceIdRatioBased(0.5)
    parent_based = sampling.ParentBased(root)
    return [getattr(parent_based, name) for name in _DELEGATES] == [root, on, off, on, off]


SAMPLER_INTROSPECTION_AVAILABLE = _check("sampler internals", _check_samplers)


def static_decision(sampler: Any) -> sampling.Decision | None:
    """What a static sampler (always on, always off) decides for every span; None for any other."""
    if SAMPLER_INTROSPECTION_AVAILABLE:
        if isinstance(sampler, sampling.StaticSampler):
            decision: sampling.Decision = sampler._decision
            return decision
        return None
    _fallback("sampler internals")
    if sampler is getattr(sampling, "ALWAYS_ON", None):
        return sampling.Decision.RECORD_AND_SAMPLE
    if sampler is getattr(sampling, "ALWAYS_OFF", None):
        return sampling.Decision.DROP
    return None


def parent_based_delegates(sampler: Any) -> tuple[Any, Any, Any, Any, Any] | None:
    """A `ParentBased` sampler's (root, remote parent sampled, remote parent not sampled, local parent
    sampled, local parent not sampled) samplers; None for any other sampler (or unknown internals)."""
    if not isinstance(sampler, sampling.ParentBased):
        return None
    if not SAMPLER_INTROSPECTION_AVAILABLE:
        _fallback("sampler internals")
        return None
    root, remote_sampled, remote_not_sampled, local_sampled, local_not_sampled = (
        getattr(sampler, name) for name in _DELEGATES
    )
    return root, remote_sampled, remote_not_sampled, local_sampled, local_not_sampled


# --- what the lean call span reads of the SDK ----------------------------------------------------

#: The `ReadableSpan` fields a `CallSpan` sets instead of calling `ReadableSpan.__init__`, with the
#: property that must return each.
READABLE_SPAN_FIELDS = {
    "_name": "name",
    "_kind": "kind",
    "_parent": "parent",
    "_start_time": "start_time",
    "_end_time": "end_time",
    "_status": "status",
    "_events": "events",
    "_links": "links",
    "_context": "context",
}


def _check_call_span() -> bool:
    tracer_fields = set(SdkTracer.__init__.__code__.co_names)
    if not {"_instrumentation_scope", "_span_limits", "span_processor", "id_generator", "resource"} <= tracer_fields:
        return False
    if not callable(getattr(SdkTracer, "_is_enabled", None)):
        return False
    multi_class: Any = SynchronousMultiSpanProcessor
    multi = multi_class()
    processor = SpanProcessor()
    if multi._span_processors != ():
        return False
    multi.add_span_processor(processor)
    if multi._span_processors != (processor,):  # a new tuple on every change: identity tells it changed
        return False
    if "_span_processors" not in ConcurrentMultiSpanProcessor.__init__.__code__.co_names:
        return False
    span = ReadableSpan("probe", resource=Resource.get_empty(), attributes={"a": 1})
    span._attributes = {"b": 2}
    if dict(span.attributes or {}) != {"b": 2} or span.dropped_attributes != 0:
        return False
    for field, prop in READABLE_SPAN_FIELDS.items():
        value: Any = (Status(StatusCode.OK),) if field in ("_events", "_links") else object()
        if field == "_kind":
            value = SpanKind.CLIENT
        setattr(span, field, value)
        if getattr(span, prop) != value:
            return False
    return isinstance(InstrumentationScope("probe"), InstrumentationScope) and isinstance(SpanLimits(), SpanLimits)


CALL_SPAN_AVAILABLE = _check("SDK tracer internals", _check_call_span)


def tracer_internals(tracer: SdkTracer) -> tuple[InstrumentationScope | None, SpanLimits] | None:
    """An enabled SDK tracer's (instrumentation scope, span limits); None when disabled (by the SDK's
    tracer configurator) or when the SDK's internals are not as expected."""
    if not CALL_SPAN_AVAILABLE:
        _fallback("SDK tracer internals")
        return None
    try:
        if not tracer._is_enabled():
            return None
        limits = tracer._span_limits
        scope = tracer._instrumentation_scope
    except AttributeError:  # another Tracer class than the one checked at import
        _reasons.setdefault("SDK tracer internals", f"{type(tracer).__name__} lacks them")
        _fallback("SDK tracer internals")
        return None
    return (scope, limits) if isinstance(limits, SpanLimits) else None


#: The attribute of a multi span processor that holds its span processors.
SPAN_PROCESSORS = "_span_processors"


def processors_slot(multi: Any) -> tuple[dict[str, Any], str]:
    """Where a provider's multi span processor keeps its span processors: (its attribute dictionary,
    the key), read on every call span's start and end (`state[key]`, a new tuple on every change, so
    identity tells a change; a subscript costs less than the attribute or a function call). Raises
    when `multi` keeps no tuple there (then spans go through the SDK)."""
    state = vars(multi)
    if not isinstance(state.get(SPAN_PROCESSORS), tuple):
        raise TypeError(f"{type(multi).__name__} keeps no tuple of span processors")
    return state, SPAN_PROCESSORS


def _check_on_ending() -> bool:
    return callable(getattr(SpanProcessor, "_on_ending", None)) and callable(
        getattr(SynchronousMultiSpanProcessor, "_on_ending", None)
    )


ON_ENDING_AVAILABLE = _check("span processors' ending step", _check_on_ending)


def on_ending(multi: Any) -> Callable[[Any], None] | None:
    """The multi span processor's `_on_ending` (before `on_end`, while the span may still change)."""
    if not ON_ENDING_AVAILABLE:
        _fallback("span processors' ending step")
        return None
    method: Callable[[Any], None] | None = getattr(multi, "_on_ending", None)
    return method


def _check_frozen_attributes() -> bool:
    attributes = BoundedAttributes(4, {"a": 1}, immutable=False)
    if attributes._immutable is not False:
        return False
    attributes._immutable = True
    try:
        attributes["b"] = 2
    except TypeError:
        return True
    return False


FROZEN_ATTRIBUTES_AVAILABLE = _check("attributes' immutable flag", _check_frozen_attributes)


def freeze(attributes: BoundedAttributes) -> None:
    """Make `attributes` (built writable) immutable, as the SDK does when a span ends."""
    if FROZEN_ATTRIBUTES_AVAILABLE:
        attributes._immutable = True
    else:
        _fallback("attributes' immutable flag")


FAST_PATH_AVAILABLE = SPAN_KEY_AVAILABLE and CONTEXT_VAR_AVAILABLE and CALL_SPAN_AVAILABLE


# --- the global MeterProvider ------------------------------------------------------------------


def _check_meter_provider() -> bool:
    from opentelemetry.metrics import _internal

    return "_METER_PROVIDER" in vars(_internal) and "_METER_PROVIDER" in metrics.get_meter_provider.__code__.co_names


METER_PROVIDER_AVAILABLE = _check("global MeterProvider", _check_meter_provider)


class _PublicMeterProvider(dict[str, object]):
    """The fallback of `meter_provider_slot`: any key reads `metrics.get_meter_provider()`."""

    def __missing__(self, key: str) -> object:
        _fallback("global MeterProvider")
        return metrics.get_meter_provider()


_METER_PROVIDER_SLOT: tuple[Mapping[str, object], str] = (_PublicMeterProvider(), "_METER_PROVIDER")
if METER_PROVIDER_AVAILABLE:
    from opentelemetry.metrics import _internal as _metrics_internal

    _METER_PROVIDER_SLOT = (vars(_metrics_internal), "_METER_PROVIDER")
_PUBLIC_METER_PROVIDER_SLOT = (_PublicMeterProvider(), "_METER_PROVIDER")


def meter_provider_slot() -> tuple[Mapping[str, object], str]:
    """Where the MeterProvider the application set is: `state[key]` is None while there is none (the
    API's proxy stands in). Read on every call: the metrics API module's globals and the name, a
    subscript. Without the API's internals: a mapping whose every read is `metrics.get_meter_provider()`
    (never None: instruments made through the proxy do nothing until a provider is set)."""
    return _METER_PROVIDER_SLOT if METER_PROVIDER_AVAILABLE else _PUBLIC_METER_PROVIDER_SLOT


def global_meter_provider() -> MeterProvider | None:
    """The MeterProvider the application set, None while there is none (see `meter_provider_slot`)."""
    state, key = meter_provider_slot()
    return cast("MeterProvider | None", state[key])


# --- suppressing instrumentation ---------------------------------------------------------------

#: The key instrumentations read to know that they must not trace (the exporters' own HTTP calls).
SUPPRESS_INSTRUMENTATION_KEY = "suppress_instrumentation"


def _check_suppress_key() -> bool:
    global SUPPRESS_INSTRUMENTATION_KEY
    from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY

    if not isinstance(_SUPPRESS_INSTRUMENTATION_KEY, str):
        return False
    SUPPRESS_INSTRUMENTATION_KEY = _SUPPRESS_INSTRUMENTATION_KEY
    return True


SUPPRESS_KEY_AVAILABLE = _check("suppress-instrumentation key", _check_suppress_key)


def suppress_key() -> str:
    """The context key whose true value tells instrumentations (ours included) not to trace: calls read
    `context.get(key)`."""
    if not SUPPRESS_KEY_AVAILABLE:
        _fallback("suppress-instrumentation key")
    return SUPPRESS_INSTRUMENTATION_KEY


def suppressed_context() -> Context:
    """The current context, with instrumentations (requests, urllib3, httpx, ours) told not to trace:
    what an exporter's worker attaches around an export."""
    if SUPPRESS_KEY_AVAILABLE:
        return otel_context.set_value(SUPPRESS_INSTRUMENTATION_KEY, True)
    _fallback("suppress-instrumentation key")
    return otel_context.set_value("suppress_instrumentation", True)


def report() -> dict[str, bool]:
    """Each feature flag and its value (what the import-time checks found, or a test set)."""
    return {name: value for name, value in globals().items() if name.endswith("_AVAILABLE") and isinstance(value, bool)}
