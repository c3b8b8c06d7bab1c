"""Exception capture: a context manager and decorator (sync and async) and an asyncio task
wrapper that record an exception in the session and re-raise it unchanged.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Protocol, TypeVar, cast

from sdk_telemetry.session.session import severity_name

_logger = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


class ExceptionLog(Protocol):
    """What capture needs of a telemetry handle."""

    @property
    def enabled(self) -> bool: ...

    def log_exception(self, exc: BaseException, severity: str | int = "ERROR") -> bool: ...

    def log_fatal_exception(self, exc: BaseException, severity: str | int = "CRITICAL") -> bool: ...


class CaptureExceptions:
    """`with`, `async with` or `@decorator`: record an escaping exception, then let it propagate.

    Only `Exception`s are recorded (not `KeyboardInterrupt`, `SystemExit` or cancellation).
    With `fatal=True` the session is ended and drained (bounded by its fatal timeout; off the
    event loop in async code). A no-op when telemetry is off.
    """

    def __init__(self, telemetry: ExceptionLog, fatal: bool = False, severity: str | int = "ERROR") -> None:
        self._telemetry = telemetry
        self._fatal = fatal
        self._severity = severity_name(severity)

    def record(self, exc: BaseException | None) -> None:
        """Record `exc` if it is an `Exception` and telemetry is on; never raises."""
        if not isinstance(exc, Exception):
            return
        try:
            if not self._telemetry.enabled:
                return
            if self._fatal:
                self._telemetry.log_fatal_exception(exc, self._severity)
            else:
                self._telemetry.log_exception(exc, self._severity)
        except Exception:
            _logger.debug("sdk-telemetry: could not record an exception", exc_info=True)

    async def record_async(self, exc: BaseException | None) -> None:
        """`record`, with the fatal path's wait moved off the event loop."""
        if self._fatal and isinstance(exc, Exception):
            await asyncio.to_thread(self.record, exc)
        else:
            self.record(exc)

    def __enter__(self) -> CaptureExceptions:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.record(exc)

    async def __aenter__(self) -> CaptureExceptions:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.record_async(exc)

    def __call__(self, function: F) -> F:
        """Wrap a function or a coroutine function."""
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                try:
                    return await function(*args, **kwargs)
                except Exception as exc:
                    await self.record_async(exc)
                    raise

            return cast(F, async_wrapper)

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            except Exception as exc:
                self.record(exc)
                raise

        return cast(F, wrapper)


def create_task(
    telemetry: ExceptionLog,
    coroutine: Coroutine[Any, Any, T],
    *,
    name: str | None = None,
    fatal: bool = False,
    severity: str | int = "ERROR",
) -> asyncio.Task[T]:
    """`asyncio.create_task(coroutine)`, recording an exception the task raises (which still raises on await)."""
    capture = CaptureExceptions(telemetry, fatal=fatal, severity=severity)
    if not telemetry.enabled:
        return asyncio.get_running_loop().create_task(coroutine, name=name)

    async def captured() -> T:
        try:
            return await coroutine
        except Exception as exc:
            await capture.record_async(exc)
            raise

    return asyncio.get_running_loop().create_task(captured(), name=name)
