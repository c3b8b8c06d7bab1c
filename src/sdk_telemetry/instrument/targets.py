"""`instrument()` and `uninstrument()`: which callables of a target get wrapped, and how to undo it.

Targets are classes (public methods, inherited ones included), instances, modules (public
functions and classes defined there) and functions. Wrapping is idempotent: a callable that
already runs inside an sdk-telemetry wrapper is never wrapped a second time.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import importlib
import inspect
import logging
import threading
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import wrapt

from sdk_telemetry.config import capture_args_default, instrumentation_allowed
from sdk_telemetry.instrument import calls as _calls
from sdk_telemetry.instrument.calls import CallSpec
from sdk_telemetry.instrument.imports import resolve, split_target, walk

_logger = logging.getLogger(__name__)
T = TypeVar("T")
_MISSING = object()


class TelemetryWrapper(wrapt.FunctionWrapper):  # type: ignore[misc,type-arg]
    """A `wrapt.FunctionWrapper` that marks a callable as instrumented by sdk-telemetry."""

    def __init__(self, wrapped: Any, spec: CallSpec, function: Callable[..., Any]) -> None:
        super().__init__(wrapped, _dispatcher(spec, function))
        self._self_spec = spec

    @property
    def telemetry_name(self) -> str:
        """The span name of this callable's calls."""
        return str(self._self_spec.name)


@dataclass
class _Patch:
    owner: Any
    name: str
    previous: Any  # the owner's own attribute before patching, or _MISSING


@dataclass(frozen=True)
class _Options:
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    prefix: str | None
    capture_args: bool | None

    def wanted(self, name: str) -> bool:
        if name.startswith("_"):
            return False
        if self.include and not any(fnmatch.fnmatchcase(name, p) for p in self.include):
            return False
        return not any(fnmatch.fnmatchcase(name, p) for p in self.exclude)


_patches: dict[int, tuple[Any, list[_Patch]]] = {}
_lock = threading.RLock()


def instrument(
    target: Any = None,
    *,
    include: str | Iterable[str] | None = None,
    exclude: str | Iterable[str] | None = None,
    prefix: str | None = None,
    name: str | None = None,
    capture_args: bool | None = None,
) -> Any:
    """Record every call of `target`'s public callables as a span named `Class.method`.

    `target` is a class, an instance, a module, a function or an importable path
    (`"pkg.module:Client"`). With no target, returns a decorator. `include`/`exclude` take
    names or glob patterns; `prefix` replaces the class or module part of span names; `name`
    sets the whole span name of a single function; `capture_args` records the call arguments,
    scrubbed and truncated, as `props`. When telemetry is disabled, nothing is wrapped and
    `target` is returned unchanged.
    """
    options = _Options(_patterns(include), _patterns(exclude), prefix, capture_args)
    if target is None:
        return lambda decorated: _instrument(decorated, options, name)
    return _instrument(target, options, name)


def uninstrument(target: Any) -> Any:
    """Restore what `instrument(target)` replaced; returns the original of a wrapped function."""
    if isinstance(target, str):
        method_target = _method_target(target)
        target = method_target[0] if method_target is not None else resolve(target)
    with _lock:
        entry = _patches.pop(id(target), None)
        if entry is None and isinstance(target, TelemetryWrapper):
            entry = _patches.pop(id(target.__wrapped__), None)
        for patch in reversed(entry[1] if entry else []):
            if patch.previous is _MISSING:
                _safe_delattr(patch.owner, patch.name)
            else:
                setattr(patch.owner, patch.name, patch.previous)
    if inspect.ismodule(target):  # instrument(module) instrumented the classes defined there too
        for value in list(vars(target).values()):
            if inspect.isclass(value) and getattr(value, "__module__", None) == target.__name__:
                uninstrument(value)
    if isinstance(target, TelemetryWrapper):
        return target.__wrapped__
    return target


def uninstrument_all() -> None:
    """Restore everything instrumented in this process."""
    with _lock:
        targets = [target for target, _ in _patches.values()]
    for target in targets:
        uninstrument(target)


def is_instrumented(obj: Any) -> bool:
    """True when `obj` is an sdk-telemetry wrapper."""
    return isinstance(obj, TelemetryWrapper)


def _method_target(path: str) -> tuple[type, str] | None:
    """The class and the method name of a `"pkg.module:Class.method"` path; None for other paths."""
    module_name, attributes = split_target(path)
    if len(attributes) < 2:
        return None
    owner = walk(importlib.import_module(module_name), attributes[:-1])
    return (owner, attributes[-1]) if inspect.isclass(owner) else None


# --- targets ---------------------------------------------------------------------------------


def _instrument(target: Any, options: _Options, name: str | None) -> Any:
    if not instrumentation_allowed():
        return target
    try:
        if isinstance(target, str):
            method_target = _method_target(target)
            if method_target is not None:  # that one method, patched on its class
                owner, method = method_target
                _record(owner, _instrument_class(owner, _Options((method,), (), options.prefix, options.capture_args)))
                return getattr(owner, method)
            target = resolve(target)
        if isinstance(target, TelemetryWrapper):
            return target
        if inspect.isclass(target):
            _record(target, _instrument_class(target, options))
        elif inspect.ismodule(target):
            _record(target, _instrument_module(target, options))
        elif _is_plain_function(target):
            return _instrument_function(target, options, name)
        elif callable(target) and not hasattr(target, "__dict__"):
            _logger.warning("sdk-telemetry: cannot instrument %r: not a class, instance, module or function", target)
        else:
            _record(target, _instrument_instance(target, options))
    except Exception:  # a failure to instrument must never break the host program
        _logger.exception("sdk-telemetry: instrumenting %r failed; it runs uninstrumented", target)
    return target


def _instrument_class(cls: type, options: _Options) -> list[_Patch]:
    patches = []
    prefix = options.prefix or cls.__name__
    for attribute in dir(cls):
        if not options.wanted(attribute):
            continue
        owner, raw = _lookup(cls, attribute)
        if owner is None or owner is object or (isinstance(owner, type(type)) and owner.__module__ == "builtins"):
            continue
        if isinstance(raw, TelemetryWrapper):
            if owner is cls:
                continue  # already instrumented here
            raw = raw.__wrapped__  # inherited from an instrumented base: wrap the original, once
        function = _underlying_function(raw)
        if function is None:
            continue
        spec = _spec(f"{prefix}.{attribute}", function, options)
        patches.append(_Patch(cls, attribute, cls.__dict__.get(attribute, _MISSING)))
        setattr(cls, attribute, TelemetryWrapper(raw, spec, function))
    return patches


def _instrument_instance(obj: Any, options: _Options) -> list[_Patch]:
    patches = []
    cls = type(obj)
    prefix = options.prefix or cls.__name__
    own = vars(obj)
    for attribute in dir(obj):
        if not options.wanted(attribute) or (attribute in own and isinstance(own[attribute], TelemetryWrapper)):
            continue
        _, raw = _lookup(cls, attribute)
        if isinstance(raw, TelemetryWrapper):
            continue  # its class is instrumented already
        bound = getattr(obj, attribute, None)
        function = _underlying_function(getattr(bound, "__func__", bound))
        if function is None or not callable(bound):
            continue
        spec = _spec(f"{prefix}.{attribute}", function, options)
        patches.append(_Patch(obj, attribute, own.get(attribute, _MISSING)))
        setattr(obj, attribute, TelemetryWrapper(bound, spec, function))
    return patches


def _instrument_module(module: types.ModuleType, options: _Options) -> list[_Patch]:
    patches = []
    prefix = options.prefix or module.__name__.rsplit(".", 1)[-1]
    for attribute, value in list(vars(module).items()):
        if not options.wanted(attribute) or getattr(value, "__module__", None) != module.__name__:
            continue
        if isinstance(value, TelemetryWrapper):
            continue  # instrumented already: as a function, by a decorator or by an earlier call
        if inspect.isclass(value):
            _record(value, _instrument_class(value, _Options((), (), None, options.capture_args)))
        elif _is_plain_function(value):
            spec = _spec(f"{prefix}.{attribute}", value, options)
            patches.append(_Patch(module, attribute, value))
            setattr(module, attribute, TelemetryWrapper(value, spec, value))
    return patches


def _instrument_function(function: Callable[..., Any], options: _Options, name: str | None) -> Any:
    spec = _spec(name or _function_span_name(function, options.prefix), function, options)
    wrapper = TelemetryWrapper(function, spec, function)
    module = inspect.getmodule(function)
    attribute = function.__name__
    if module is not None and getattr(module, attribute, None) is function:
        # Also patch the module attribute, as instrumenting "pkg.module:function" by path does.
        _record(function, [_Patch(module, attribute, function)])
        setattr(module, attribute, wrapper)
    return wrapper


# --- helpers ---------------------------------------------------------------------------------


def _record(target: Any, patches: list[_Patch]) -> None:
    if not patches:
        return
    with _lock:
        _, existing = _patches.setdefault(id(target), (target, []))
        existing.extend(patches)


def _lookup(cls: type, attribute: str) -> tuple[type | None, Any]:
    for klass in inspect.getmro(cls):
        if attribute in klass.__dict__:
            return klass, klass.__dict__[attribute]
    return None, None


def _underlying_function(raw: Any) -> Callable[..., Any] | None:
    """The plain function behind a method, staticmethod or classmethod; None for anything else."""
    if isinstance(raw, (staticmethod, classmethod)):
        raw = raw.__func__
    return raw if _is_plain_function(raw) else None


def _is_plain_function(obj: Any) -> bool:
    return isinstance(obj, (types.FunctionType, functools.partial)) or inspect.isbuiltin(obj)


def _function_span_name(function: Callable[..., Any], prefix: str | None) -> str:
    """`Class.method` for a function defined in a class body, else `module.function`."""
    parts = getattr(function, "__qualname__", function.__name__).split(".")
    if prefix:
        return f"{prefix}.{parts[-1]}"
    if len(parts) >= 2 and parts[-2] != "<locals>":
        return f"{parts[-2]}.{parts[-1]}"
    module = getattr(function, "__module__", None) or "function"
    return f"{module.rsplit('.', 1)[-1]}.{parts[-1]}"


def _spec(name: str, function: Callable[..., Any], options: _Options) -> CallSpec:
    capture = options.capture_args if options.capture_args is not None else capture_args_default()
    module = getattr(function, "__module__", None) or ""
    qualname = getattr(function, "__qualname__", getattr(function, "__name__", name))
    return CallSpec(name, f"{module}.{qualname}" if module else qualname, function, capture)


def _dispatcher(spec: CallSpec, function: Callable[..., Any]) -> Callable[..., Any]:
    """The wrapt wrapper for one function, chosen once by the function's flavour."""
    call: Callable[..., Any]
    if inspect.isasyncgenfunction(function):
        call = _calls.call_async_generator
    elif inspect.iscoroutinefunction(function):
        call = _calls.call_async
    elif inspect.isgeneratorfunction(function):
        call = _calls.call_generator
    else:
        call = _calls.call_sync

    # A partial (C-level) rather than a closure: one Python frame fewer on every call.
    return functools.partial(call, spec)


def _patterns(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _safe_delattr(owner: Any, attribute: str) -> None:
    with contextlib.suppress(AttributeError):
        delattr(owner, attribute)
