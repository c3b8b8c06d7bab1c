"""Streams returned by instrumented calls: the span lasts until the caller is done with the stream.

A call that returns an iterator, an async iterator, or a stream manager (an object whose work
happens between `__enter__` and `__exit__`, such as anthropic's `MessageStreamManager`) hands the
caller a proxy of it instead (a `wrapt` object proxy: `isinstance` holds, every attribute and method
is the stream's own). The proxy counts the items the caller takes, notes when the first one came,
runs each step in the call's context, and ends the call's span when the stream is exhausted,
raises, is closed (`close()`, `aclose()`, `__exit__`, `__aexit__`) or is dropped unfinished
(collected: "abandoned").

Whether a result is a stream is decided once per result type (`stream_proxy_class`, read through a
cache by the call path). Plain values are never proxied: builtin values, files and HTTP responses
(`io.IOBase`), mocks, iterables that are not iterators (pydantic models, lists), and context managers
that can also be iterated or closed on their own (clients, sessions, `requests` responses).
"""

from __future__ import annotations

import inspect
import io
import logging
import sys
import weakref
from collections.abc import Awaitable, Callable
from time import time_ns
from types import CoroutineType
from typing import Any, Protocol

import wrapt
from opentelemetry.context import Context

from sdk_telemetry import otel_compat as _compat

_logger = logging.getLogger(__name__)

#: Why a stream's span ended before it was exhausted (the `GENERATOR_END` attribute).
CLOSED = "closed"
ABANDONED = "abandoned"

_attach: Callable[[Context], Any]
_reset: Callable[[Any], object]


def bind() -> None:
    """Take how to make a context current from `otel_compat` (at import, and at `calls.refresh`)."""
    global _attach, _reset
    _, _attach, _reset = _compat.context_functions()


bind()


class StreamCall(Protocol):
    """What a stream needs of the call that returned it (`calls.Call`)."""

    context: Context  # the caller's context with the call's span current: each step runs in it

    def end_stream(self, exc: BaseException | None, end: str | None, items: int, first_item_ns: int | None) -> None:
        """End the call's span: `exc` raised while streaming, `end` why it ended early, what came."""
        ...


class _State:
    """One returned stream's progress, shared by its proxy and the weak reference that watches it."""

    __slots__ = ("call", "ended", "first_item_ns", "items")

    def __init__(self, call: StreamCall) -> None:
        self.call = call
        self.items = 0
        self.first_item_ns: int | None = None
        self.ended = False

    def took(self) -> None:
        self.items += 1
        if self.first_item_ns is None:
            self.first_item_ns = time_ns()

    def end(self, exc: BaseException | None, end: str | None) -> None:
        if not self.ended:
            self.ended = True
            self.call.end_stream(exc, end, self.items, self.first_item_ns)


def _leave(token: Any) -> None:
    try:
        _reset(token)
    except Exception:
        _logger.debug("sdk-telemetry: context detach failed", exc_info=True)


# --- the proxies ----------------------------------------------------------------------------------


class _StreamProxy(wrapt.BaseObjectProxy[Any]):  # type: ignore[misc]
    """The stream itself to the caller; its (async) context manager ends the span at exit."""

    #: What `__exit__` records as the end: "closed" for a stream left before it was exhausted; a
    #: stream manager's exit is its normal end.
    _self_exit_end: str | None = None

    def __init__(self, wrapped: Any, state: _State) -> None:
        super().__init__(wrapped)
        self._self_state = state

    def __enter__(self) -> Any:
        state = self._self_state
        token = _attach(state.call.context)
        try:
            entered = self.__wrapped__.__enter__()
        except BaseException as exc:
            _leave(token)
            state.end(exc, None)
            raise
        _leave(token)
        return self._self_entered(entered)

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> Any:
        state = self._self_state
        try:
            result = self.__wrapped__.__exit__(exc_type, exc, traceback)
        except BaseException as error:
            state.end(error, None)
            raise
        state.end(None, self._self_exit_end)  # an error of the `with` body is the caller's, not the call's
        return result

    async def __aenter__(self) -> Any:
        state = self._self_state
        token = _attach(state.call.context)
        try:
            entered = await self.__wrapped__.__aenter__()
        except BaseException as exc:
            _leave(token)
            state.end(exc, None)
            raise
        _leave(token)
        return self._self_entered(entered)

    async def __aexit__(self, exc_type: Any, exc: Any, traceback: Any) -> Any:
        state = self._self_state
        try:
            result = await self.__wrapped__.__aexit__(exc_type, exc, traceback)
        except BaseException as error:
            state.end(error, None)
            raise
        state.end(None, self._self_exit_end)
        return result

    def _self_entered(self, entered: Any) -> Any:
        """What `with` gives the caller: this proxy for the stream itself, a proxy sharing this span for
        a stream a manager opened, anything else as it is."""
        if entered is self.__wrapped__:
            return self
        proxy_class = stream_proxy_class(type(entered))
        if proxy_class is None or not issubclass(proxy_class, (_Iterates, _AsyncIterates)):
            return entered
        return proxy_class(entered, self._self_state)


class _Iterates:
    """`__iter__`/`__next__` of a proxied iterator."""

    __slots__ = ()
    _self_state: _State
    __wrapped__: Any
    _self_exit_end = CLOSED

    def __iter__(self) -> Any:
        return self

    def __next__(self) -> Any:
        state = self._self_state
        token = _attach(state.call.context)
        try:
            item = self.__wrapped__.__next__()
        except StopIteration:
            _leave(token)
            state.end(None, None)
            raise
        except BaseException as exc:
            _leave(token)
            state.end(exc, None)
            raise
        _leave(token)
        state.took()
        return item


class _AsyncIterates:
    """`__aiter__`/`__anext__` of a proxied async iterator."""

    __slots__ = ()
    _self_state: _State
    __wrapped__: Any
    _self_exit_end = CLOSED

    def __aiter__(self) -> Any:
        return self

    async def __anext__(self) -> Any:
        state = self._self_state
        token = _attach(state.call.context)
        try:
            item = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            _leave(token)
            state.end(None, None)
            raise
        except BaseException as exc:
            _leave(token)
            state.end(exc, None)
            raise
        _leave(token)
        state.took()
        return item


class _Closes:
    """`close()` of a proxied stream (which may be a coroutine, as `openai.AsyncStream.close` is)."""

    __slots__ = ()
    _self_state: _State
    __wrapped__: Any

    def close(self, *args: Any, **kwargs: Any) -> Any:
        return _closing(self._self_state, lambda: self.__wrapped__.close(*args, **kwargs))


class _AsyncCloses:
    """`aclose()` of a proxied async stream."""

    __slots__ = ()
    _self_state: _State
    __wrapped__: Any

    def aclose(self, *args: Any, **kwargs: Any) -> Any:
        return _closing(self._self_state, lambda: self.__wrapped__.aclose(*args, **kwargs))


def _closing(state: _State, close: Callable[[], Any]) -> Any:
    """Run the stream's own close; the span ends "closed" when it has run (awaited, for a coroutine)."""
    try:
        result = close()
    except BaseException as exc:
        state.end(exc, None)
        raise
    if isinstance(result, CoroutineType):
        return _closed_after(state, result)
    state.end(None, CLOSED)
    return result


async def _closed_after(state: _State, closing: Awaitable[Any]) -> Any:
    try:
        result = await closing
    except BaseException as exc:
        state.end(exc, None)
        raise
    state.end(None, CLOSED)
    return result


# --- which results are streams ---------------------------------------------------------------------

#: Results never proxied, whatever they define.
_PLAIN_TYPES = frozenset(
    {str, bytes, bytearray, memoryview, list, tuple, dict, set, frozenset, int, float, complex, bool, type(None)}
)
_proxy_classes: dict[tuple[bool, bool, bool, bool], type[_StreamProxy]] = {}


def _defines(cls: type, name: str) -> bool:
    """Whether `cls` has `name` (read statically: no descriptor, property or metaclass code runs)."""
    return inspect.getattr_static(cls, name, None) is not None


def stream_proxy_class(cls: type) -> type[_StreamProxy] | None:
    """The proxy class for results of type `cls` when they are streams, None for any other result."""
    try:
        if cls in _PLAIN_TYPES or cls is CoroutineType or issubclass(cls, io.IOBase) or _is_mock(cls):
            return None
        iterates = _defines(cls, "__next__") and _defines(cls, "__iter__")
        aiterates = _defines(cls, "__anext__") and _defines(cls, "__aiter__")
        closes, acloses = _defines(cls, "close"), _defines(cls, "aclose")
        if not (iterates or aiterates):
            # A context manager is a stream manager only when its work happens inside the `with`: one
            # that can be iterated or closed without it is a resource (a client, a session, a response).
            if closes or acloses or _defines(cls, "__iter__") or _defines(cls, "__aiter__"):
                return None
            manages = (_python_method(cls, "__enter__") and _defines(cls, "__exit__")) or (
                _python_method(cls, "__aenter__") and _defines(cls, "__aexit__")
            )
            if not manages:
                return None
        return _proxy_class(iterates, aiterates, closes, acloses)
    except Exception:  # a type that cannot be inspected: not a stream
        _logger.debug("sdk-telemetry: could not inspect %r", cls, exc_info=True)
        return None


def _python_method(cls: type, name: str) -> bool:
    """Whether `name` is a method written in Python (not a C type's slot, such as a lock's `__enter__`)."""
    return inspect.isfunction(inspect.getattr_static(cls, name, None))


def _is_mock(cls: type) -> bool:
    """A `unittest.mock` object (each has its own class): a host's test double stays what it is."""
    mock = sys.modules.get("unittest.mock")
    return mock is not None and issubclass(cls, mock.NonCallableMock)


def _proxy_class(iterates: bool, aiterates: bool, closes: bool, acloses: bool) -> type[_StreamProxy]:
    """A proxy class with exactly the stream methods its wrapped type has (so `hasattr` answers alike)."""
    key = (iterates, aiterates, closes, acloses)
    proxy_class = _proxy_classes.get(key)
    if proxy_class is None:
        flags: tuple[tuple[bool, type], ...] = (
            (iterates, _Iterates),
            (aiterates, _AsyncIterates),
            (closes, _Closes),
            (acloses, _AsyncCloses),
        )
        bases = tuple(mixin for wanted, mixin in flags if wanted)
        proxy_class = _proxy_classes[key] = type("StreamProxy", (*bases, _StreamProxy), {"__slots__": ()})
    return proxy_class


# --- watching -------------------------------------------------------------------------------------

# A proxy's weak reference -> its stream's state, until the proxy is collected.
_watched: dict[weakref.ref[Any], _State] = {}


def traced_stream(proxy_class: type[_StreamProxy], stream: Any, call: StreamCall) -> Any:
    """`stream` as its caller gets it: proxied, its span (`call`'s) ending with it."""
    state = _State(call)
    proxy = proxy_class(stream, state)
    _watched[weakref.ref(proxy, _collected)] = state
    return proxy


def _collected(ref: weakref.ref[Any]) -> None:
    state = _watched.pop(ref, None)
    if state is not None:
        state.end(None, ABANDONED)
