"""The span of one HTTP request sent inside an instrumented call: whether there is a call to be
a child of, what the span records (OpenTelemetry's HTTP client conventions), and the trace
headers, sent only when propagation is on.

A request belongs to an instrumented call when the current span is that call's span (the
`sdk_telemetry` scope) or a span started inside one (an SDK's own span around its retries, such
as `anthropic`'s): those are noted as they start, by a step added to the provider's span
processor's `on_start` (an attribute of that object, removed again at `disable`; the calls' own
spans never go through it). Anything else — no span, the host's own span outside our calls, our
HTTP span — leaves the request untouched: that test is the only work a request outside our calls
pays for. Nothing here raises into the host: when telemetry fails, the request runs untraced.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.http_attributes import (
    HTTP_REQUEST_METHOD,
    HTTP_REQUEST_METHOD_ORIGINAL,
    HTTP_RESPONSE_STATUS_CODE,
)
from opentelemetry.semconv.attributes.network_attributes import NETWORK_PROTOCOL_VERSION
from opentelemetry.semconv.attributes.server_attributes import SERVER_ADDRESS, SERVER_PORT
from opentelemetry.semconv.attributes.url_attributes import URL_FULL
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from sdk_telemetry_exporters import attributes as attr

from sdk_telemetry import otel_compat as _compat
from sdk_telemetry._version import __version__
from sdk_telemetry.config import scrubber

_logger = logging.getLogger(__name__)

#: The instrumentation scope of the HTTP child spans.
HTTP_SCOPE = "sdk_telemetry.http"
_KNOWN_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"))
_DEFAULT_PORTS = {"http": 80, "https": 443}
_ERROR = Status(StatusCode.ERROR)


class _Recorder:
    """What the spans of one setup share: its tracer and whether trace headers are sent."""

    __slots__ = ("propagate", "tracer")

    def __init__(self, tracer: trace.Tracer, propagate: bool) -> None:
        self.tracer = tracer
        self.propagate = propagate


_recorder: _Recorder | None = None  # None: HTTP child spans are off, every request runs as it is
_get_context, _attach, _reset = _compat.context_functions()
_span_key = _compat.span_key()
_suppress_key = _compat.SUPPRESS_INSTRUMENTATION_KEY
# Spans that other code started inside an instrumented call (while they live).
_inside_calls: weakref.WeakSet[Any] = weakref.WeakSet()
_watched: Any = None  # the span processor whose `on_start` notes them
# Spans not noted: the calls' own and our HTTP spans, and the HTTP spans of upstream's HTTP client
# instrumentations (the request inside one is that span's already, not another child).
_UPSTREAM_HTTP = ("requests", "httpx", "urllib3", "urllib", "aiohttp_client", "httplib")
_NOT_NOTED = frozenset(
    (attr.INVOCATION_SCOPE, HTTP_SCOPE, *(f"opentelemetry.instrumentation.{name}" for name in _UPSTREAM_HTTP))
)


def _current_span(context: Context) -> Any:
    if _span_key is not None:
        return context.get(_span_key)
    return trace.get_current_span(context)


def _scope_name(span: Any) -> str | None:
    scope = getattr(span, "instrumentation_scope", None)  # the API's non-recording spans have none
    return scope.name if scope is not None else None


def _in_call(span: Any) -> bool:
    """Whether `span` is an instrumented call's, or was started inside one."""
    return _scope_name(span) == attr.INVOCATION_SCOPE or span in _inside_calls


def enable(tracer_provider: trace.TracerProvider, propagate: bool) -> None:
    """Record the requests sent inside instrumented calls as spans of `tracer_provider`; send trace
    headers with them when `propagate`."""
    global _recorder
    tracer = tracer_provider.get_tracer(HTTP_SCOPE, __version__)
    _recorder = _Recorder(tracer, propagate)
    _watch(getattr(tracer, "span_processor", None))  # an SDK tracer's: its provider's span processor


def disable() -> None:
    """Stop recording: every request runs untouched, and the span processor is as it was."""
    global _recorder, _watched
    _recorder = None
    watched, _watched = _watched, None
    if watched is not None and getattr(vars(watched).get("on_start"), "__sdk_telemetry_http__", False):
        del watched.on_start
    _inside_calls.clear()


def _watch(processor: Any) -> None:
    """Note the spans started inside an instrumented call, on their way into `processor.on_start`."""
    global _watched
    if processor is None or _watched is processor or "on_start" in getattr(processor, "__dict__", {"on_start": 0}):
        return  # no SDK provider, already watched, or someone else's step is there
    original = processor.on_start

    def on_start(span: Any, parent_context: Context | None = None) -> None:
        try:
            context = parent_context if parent_context is not None else _get_context()
            if _scope_name(span) not in _NOT_NOTED and _in_call(_current_span(context)):
                _inside_calls.add(span)
        except Exception:
            _logger.debug("sdk-telemetry: could not note a span started inside a call", exc_info=True)
        original(span, parent_context=parent_context)

    on_start.__sdk_telemetry_http__ = True  # type: ignore[attr-defined]
    processor.on_start = on_start
    _watched = processor


def calling_context() -> Context | None:
    """The current context when the code runs inside an instrumented call (and HTTP child spans are
    on and instrumentation is not suppressed), else None."""
    if _recorder is None:
        return None
    context = _get_context()
    span = _current_span(context)
    if span is None or not _in_call(span) or context.get(_suppress_key):
        return None
    return context


class RequestSpan:
    """The span of one request in progress (current while the request is sent)."""

    __slots__ = ("_span", "_token")

    def __init__(self, span: Span, token: object) -> None:
        self._span = span
        self._token = token

    def succeeded(self, response: Any, read: Callable[[Any], tuple[int | None, str | None]]) -> None:
        """The response arrived (its headers): record its status and protocol (`read(response)`)
        and end the span."""
        try:
            span = self._span
            status_code, protocol_version = read(response)
            if status_code is not None:
                span.set_attribute(HTTP_RESPONSE_STATUS_CODE, status_code)
                if status_code >= 400:  # a client span's error (both 4xx and 5xx)
                    span.set_attribute(ERROR_TYPE, str(status_code))
                    span.set_status(_ERROR)
            if protocol_version:
                span.set_attribute(NETWORK_PROTOCOL_VERSION, protocol_version)
        except Exception:
            _logger.debug("sdk-telemetry: could not read an HTTP response", exc_info=True)
        self._end()

    def failed(self, exc: BaseException) -> None:
        """The request raised `exc`: record its type and end the span. (Its message and stack are
        recorded once, on the instrumented call's span.)"""
        try:
            name = type(exc).__qualname__
            self._span.set_attribute(ERROR_TYPE, name)
            self._span.set_status(Status(StatusCode.ERROR, name))
        except Exception:
            _logger.debug("sdk-telemetry: could not record an HTTP error", exc_info=True)
        self._end()

    def _end(self) -> None:
        """Make the caller's context current again and end the span."""
        try:
            token, self._token = self._token, None
            if token is not None:
                _reset(token)
        except Exception:  # reset in another context (a request started and ended in different tasks)
            _logger.debug("sdk-telemetry: could not restore the context of an HTTP span", exc_info=True)
        try:
            self._span.end()
        except Exception:
            _logger.debug("sdk-telemetry: could not end an HTTP span", exc_info=True)


def start_request(
    context: Context, method: str, url: str, headers: MutableMapping[str, str] | None
) -> RequestSpan | None:
    """Start the span of a request sent in `context` (from `calling_context`) and make it current;
    with propagation on, write the trace headers into `headers`. None if telemetry failed."""
    recorder = _recorder
    if recorder is None:
        return None
    try:
        span = recorder.tracer.start_span(_span_name(method), context, SpanKind.CLIENT, request_attributes(method, url))
        child = _compat.context_with_span(context, span)
        if recorder.propagate and headers is not None:
            propagate.inject(headers, child)
        return RequestSpan(span, _attach(child))
    except Exception:
        _logger.debug("sdk-telemetry: could not start an HTTP span", exc_info=True)
        return None


def _span_name(method: str) -> str:
    upper = method.upper()
    return upper if upper in _KNOWN_METHODS else "HTTP"


def request_attributes(method: str, url: str) -> dict[str, Any]:
    """The attributes known before sending: method, scrubbed full URL, server address and port."""
    attributes: dict[str, Any] = {}
    upper = method.upper()
    if upper in _KNOWN_METHODS:
        attributes[HTTP_REQUEST_METHOD] = upper
    else:
        attributes[HTTP_REQUEST_METHOD] = "_OTHER"
        attributes[HTTP_REQUEST_METHOD_ORIGINAL] = method
    attributes[URL_FULL] = scrubber().text(url, (URL_FULL,))
    try:
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:  # a port that is not a number: leave address and port out
        return attributes
    if parts.hostname:
        attributes[SERVER_ADDRESS] = parts.hostname
    if port is not None:
        attributes[SERVER_PORT] = port
    return attributes


def protocol_version(value: object) -> str | None:
    """`1.1` from what a library reports: urllib3's `11`, or httpx's `b"HTTP/1.1"`."""
    if isinstance(value, int) and not isinstance(value, bool):
        return {9: "0.9", 10: "1.0", 11: "1.1", 20: "2", 30: "3"}.get(value)
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if isinstance(value, str) and value.upper().startswith("HTTP/"):
        return value[5:] if value[5:] != "2.0" else "2"
    return None
