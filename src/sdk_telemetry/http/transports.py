"""The HTTP libraries' transports, wrapped so that a request sent inside an instrumented call is
its child span: `requests` (`HTTPAdapter.send`), `httpx` and `httpx2` (`HTTPTransport.handle_request`,
`AsyncHTTPTransport.handle_async_request`).

Each wrapper asks `spans.calling_context()` first and, outside an instrumented call, calls the
library's own method with the same arguments: the host's requests stay the host's (no span, no
header). A library is patched when it is imported (never imported early), and `instrument_http`'s
undo step puts the class's own function back, the same object.
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
from collections.abc import Callable
from typing import Any

from opentelemetry import trace

from sdk_telemetry.http import spans
from sdk_telemetry.instrument import when_importable

_logger = logging.getLogger(__name__)
_MARK = "__sdk_telemetry_http__"  # set on our wrappers: a class attribute holding one is ours
_lock = threading.Lock()
_active = False
_hooked: set[str] = set()  # targets whose import hook is registered (once per process)
_originals: dict[tuple[type, str], Any] = {}  # (class, method name) -> the class's own function


def _read_requests(response: Any) -> tuple[int | None, str | None]:
    """A `requests.Response`'s status code and protocol version (from urllib3's response)."""
    status = getattr(response, "status_code", None)
    raw = getattr(response, "raw", None)
    return _status(status), spans.protocol_version(getattr(raw, "version", None))


def _read_httpx(response: Any) -> tuple[int | None, str | None]:
    """An `httpx`/`httpx2` `Response`'s status code and protocol version (its `http_version` extension)."""
    extensions = getattr(response, "extensions", None)
    version = extensions.get("http_version") if isinstance(extensions, dict) else None
    return _status(getattr(response, "status_code", None)), spans.protocol_version(version)


def _status(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _requests_send(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        context = spans.calling_context()
        if context is None:
            return original(self, request, *args, **kwargs)
        started = spans.start_request(context, str(request.method or ""), str(request.url or ""), request.headers)
        if started is None:
            return original(self, request, *args, **kwargs)
        try:
            response = original(self, request, *args, **kwargs)
        except BaseException as exc:
            started.failed(exc)
            raise
        started.succeeded(response, _read_requests)
        return response

    return send


def _httpx_handle_request(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def handle_request(self: Any, request: Any) -> Any:
        context = spans.calling_context()
        if context is None:
            return original(self, request)
        started = spans.start_request(context, str(request.method), str(request.url), request.headers)
        if started is None:
            return original(self, request)
        try:
            response = original(self, request)
        except BaseException as exc:
            started.failed(exc)
            raise
        started.succeeded(response, _read_httpx)
        return response

    return handle_request


def _httpx_handle_async_request(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def handle_async_request(self: Any, request: Any) -> Any:
        context = spans.calling_context()
        if context is None:
            return await original(self, request)
        started = spans.start_request(context, str(request.method), str(request.url), request.headers)
        if started is None:
            return await original(self, request)
        try:
            response = await original(self, request)
        except BaseException as exc:
            started.failed(exc)
            raise
        started.succeeded(response, _read_httpx)
        return response

    return handle_async_request


#: (`module:Class`, method name, what wraps the class's function).
PATCHES: tuple[tuple[str, str, Callable[[Callable[..., Any]], Callable[..., Any]]], ...] = (
    ("requests.adapters:HTTPAdapter", "send", _requests_send),
    ("httpx:HTTPTransport", "handle_request", _httpx_handle_request),
    ("httpx:AsyncHTTPTransport", "handle_async_request", _httpx_handle_async_request),
    ("httpx2:HTTPTransport", "handle_request", _httpx_handle_request),
    ("httpx2:AsyncHTTPTransport", "handle_async_request", _httpx_handle_async_request),
)


def _patcher(name: str, wrap: Callable[[Callable[..., Any]], Callable[..., Any]]) -> Callable[[Any], None]:
    def patch(cls: Any) -> None:
        with _lock:
            if not _active or not isinstance(cls, type):
                return
            current = cls.__dict__.get(name)
            if current is None or getattr(current, _MARK, False):
                return  # not defined by this class, or already ours (one class under two names)
            wrapper = wrap(current)
            setattr(wrapper, _MARK, True)
            setattr(cls, name, wrapper)
            _originals[(cls, name)] = current

    return patch


def _restore() -> None:
    """Put every patched class's own function back (a wrapper someone else replaced stays, inert)."""
    global _active
    with _lock:
        _active = False
        spans.disable()
        for (cls, name), original in list(_originals.items()):
            try:
                if getattr(cls.__dict__.get(name), _MARK, False):
                    setattr(cls, name, original)
                else:
                    _logger.debug("sdk-telemetry: %s.%s was re-wrapped by someone else; ours stays, inert", cls, name)
            except Exception:
                _logger.debug("sdk-telemetry: could not restore %s.%s", cls, name, exc_info=True)
            del _originals[(cls, name)]


def instrument_http(tracer_provider: trace.TracerProvider | None, propagate: bool) -> Callable[[], None]:
    """Make the requests sent inside instrumented calls (through requests, httpx, httpx2) child
    spans of the call, in `tracer_provider` (None: the global one); with `propagate`, also send
    the trace headers. Returns the step that undoes it."""
    global _active
    with _lock:
        _active = True
        spans.enable(tracer_provider or trace.get_tracer_provider(), propagate)
    for target, name, wrap in PATCHES:
        patch = _patcher(name, wrap)
        if target not in _hooked:
            _hooked.add(target)
            when_importable(target, patch)  # now if imported, else at its import
            continue
        module_name, _, attribute = target.partition(":")
        module = sys.modules.get(module_name)  # not imported yet: the hook registered before patches it
        if module is not None:
            patch(getattr(module, attribute, None))
    return _restore
