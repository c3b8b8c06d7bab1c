"""`instrument()` and `uninstrument()`: which callables of a target get wrapped, how they are
patched, and how to undo it.

Targets are classes (public methods, inherited ones included), instances, modules and packages
(their public client surface, see `surface`) and functions. Patches are written straight into
the namespace that owns them (`type.__setattr__`, a module's or an instance's `__dict__`), never
through a host's own `__setattr__`, and each is recorded before it is made, so that `uninstrument`
can undo whatever was done even when instrumenting stopped half-way. A method a class inherits is
not copied into it: the class gets an `InheritedMethod`, which finds the base's implementation at
each access (a mock patched onto the base is what runs). Wrapping is idempotent: a callable that
already runs inside an sdk-telemetry wrapper is never wrapped a second time.
"""

from __future__ import annotations

import contextlib
import fnmatch
import importlib
import logging
import sys
import threading
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

import wrapt

from sdk_telemetry.config import capture_args_default, instrumentation_allowed
from sdk_telemetry.instrument.imports import resolve, split_target, walk
from sdk_telemetry.instrument.surface import Package, is_loading, surface_of
from sdk_telemetry.instrument.wrappers import (
    BoundTelemetryWrapper,
    InheritedMethod,
    TelemetryWrapper,
    is_plain_function,
    make_spec,
    underlying_function,
)

_logger = logging.getLogger(__name__)
_T = TypeVar("_T")
_MISSING: Any = object()


@dataclass
class _Patch:
    """One attribute replaced in a class, module or instance: what was there, and what we put."""

    owner: Any
    name: str
    previous: Any  # the owner's own attribute before patching, or _MISSING
    installed: Any

    def undo(self) -> None:
        """Put back what was there, unless someone replaced our attribute since (then it is theirs)."""
        if _own(self.owner, self.name) is not self.installed:
            return
        if self.previous is _MISSING:
            _delete(self.owner, self.name)
        else:
            _write(self.owner, self.name, self.previous)


@dataclass
class _Entry:
    """What instrumenting one target did: its patches, the targets instrumented on its behalf (a
    module's classes) and, for a package, the watch that instruments submodules as they load."""

    target: Any
    patches: list[_Patch] = field(default_factory=list)
    members: list[Any] = field(default_factory=list)
    watch: _PackageWatch | None = None


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

    def capture(self) -> bool:
        return self.capture_args if self.capture_args is not None else capture_args_default()


_WRAPPERS = (TelemetryWrapper, BoundTelemetryWrapper, InheritedMethod)
_entries: dict[int, _Entry] = {}
_lock = threading.RLock()


@overload
def instrument(
    target: None = None,
    *,
    include: str | Iterable[str] | None = None,
    exclude: str | Iterable[str] | None = None,
    prefix: str | None = None,
    name: str | None = None,
    capture_args: bool | None = None,
) -> Callable[[_T], _T]: ...


@overload
def instrument(
    target: str,
    *,
    include: str | Iterable[str] | None = None,
    exclude: str | Iterable[str] | None = None,
    prefix: str | None = None,
    name: str | None = None,
    capture_args: bool | None = None,
) -> Any: ...


@overload
def instrument(
    target: _T,
    *,
    include: str | Iterable[str] | None = None,
    exclude: str | Iterable[str] | None = None,
    prefix: str | None = None,
    name: str | None = None,
    capture_args: bool | None = None,
) -> _T: ...


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

    `target` is a class, an instance, a module or package, a function or an importable path
    (`"pkg.module:Client"`). With no target, returns a decorator. The result has the type of
    `target` (a function keeps its signature for type checkers). `include`/`exclude` take names
    or glob patterns; `prefix` replaces the class or module part of span names; `name` sets the
    whole span name of a single function; `capture_args` records the call arguments, scrubbed and
    truncated, as `props`. When telemetry is disabled, nothing is wrapped and `target` is returned
    unchanged.
    """
    options = _Options(_patterns(include), _patterns(exclude), prefix, capture_args)
    if target is None:
        return lambda decorated: _instrument(decorated, options, name)
    return _instrument(target, options, name)


def uninstrument(target: Any) -> Any:
    """Restore what `instrument(target)` replaced; returns the original of a wrapped function."""
    if type(target) is str:
        method_target = _method_target(target)
        target = method_target[0] if method_target is not None else resolve(target)
    with _lock:
        entry = _entries.pop(id(target), None)
        if entry is None and issubclass(type(target), TelemetryWrapper):
            entry = _entries.pop(id(target.__wrapped__), None)
    if entry is not None:
        if entry.watch is not None:
            entry.watch.active = False
        for patch in reversed(entry.patches):
            patch.undo()
        for member in entry.members:
            uninstrument(member)
    elif issubclass(type(target), TelemetryWrapper):
        _restore_global(target)  # a decorated function: its module attribute is the wrapper
    elif not issubclass(type(target), (type, types.ModuleType)) and not is_instrumented(target):
        _strip_instance(target)  # an instance instrumented elsewhere and unpickled or deep-copied here
    if issubclass(type(target), TelemetryWrapper):
        return target.__wrapped__
    return target


def uninstrument_all() -> None:
    """Restore everything instrumented in this process."""
    with _lock:
        targets = [entry.target for entry in _entries.values()]
    for target in targets:
        uninstrument(target)


def is_instrumented(obj: Any) -> bool:
    """True when `obj` is an sdk-telemetry wrapper (of a function, a method or an inherited method)."""
    return issubclass(type(obj), _WRAPPERS)  # by the real type: a host's proxy's `__class__` never runs


def _method_target(path: str) -> tuple[type, str] | None:
    """The class and the method name of a `"pkg.module:Class.method"` path; None for other paths."""
    module_name, attributes = split_target(path)
    if len(attributes) < 2:
        return None
    owner = walk(importlib.import_module(module_name), attributes[:-1])
    return (owner, attributes[-1]) if isinstance(owner, type) else None


# --- targets ---------------------------------------------------------------------------------


def _instrument(target: Any, options: _Options, name: str | None) -> Any:
    if not instrumentation_allowed():
        return target
    try:
        if type(target) is str:
            method_target = _method_target(target)
            if method_target is not None:  # that one method, patched on its class
                owner, method = method_target
                only = _Options((method,), (), options.prefix, options.capture_args)
                _instrument_class(owner, only, _entry(owner))
                return getattr(owner, method)
            target = resolve(target)
        kind = type(target)  # the real type: an object's own `__class__` may be a property
        if kind in (TelemetryWrapper, BoundTelemetryWrapper):
            return target
        if issubclass(kind, type):
            _instrument_class(target, options, _entry(target))
        elif issubclass(kind, types.ModuleType):
            _instrument_module(target, options, _entry(target))
        elif is_plain_function(target):
            return _instrument_function(target, options, name)
        elif not _has_instance_dict(target):
            _logger.warning("sdk-telemetry: cannot instrument %r: not a class, instance, module or function", target)
        else:
            _instrument_instance(target, options, _entry(target))
    except Exception:  # a failure to instrument must never break the host program
        _logger.exception("sdk-telemetry: instrumenting %r failed; it runs uninstrumented", target)
    return target


def _instrument_class(cls: type, options: _Options, entry: _Entry, package: Package | None = None) -> None:
    """Wrap the public methods `cls` defines; give it an `InheritedMethod` for each it inherits.
    With `package`, only methods defined in the package's own classes (not a framework's)."""
    prefix = options.prefix or cls.__name__
    capture = options.capture()
    seen: set[str] = set()
    for klass in cls.__mro__:
        builtin = klass.__module__ == "builtins"
        foreign = package is not None and not package.defines(klass)
        for attribute, raw in list(vars(klass).items()):
            if attribute in seen:
                continue
            seen.add(attribute)
            if builtin or foreign or not options.wanted(attribute):
                continue
            span_name = f"{prefix}.{attribute}"
            if klass is cls:
                function = None if is_instrumented(raw) else underlying_function(raw)
                if function is not None:
                    spec = make_spec(span_name, function, capture)
                    _apply(entry, cls, attribute, TelemetryWrapper(raw, spec, function, attribute))
            elif underlying_function(_implementation(raw)) is not None:
                _apply(entry, cls, attribute, InheritedMethod(cls, attribute, span_name, capture))


def _instrument_instance(obj: Any, options: _Options, entry: _Entry) -> None:
    """Wrap `obj`'s public methods in its own `__dict__`, found statically: no property,
    `__getattr__` or `__setattr__` of the host runs."""
    own: dict[str, Any] = object.__getattribute__(obj, "__dict__")
    cls = type(obj)
    prefix = options.prefix or cls.__name__
    capture = options.capture()
    defined: dict[str, tuple[type, Any]] = {}
    for klass in cls.__mro__:
        for attribute, raw in vars(klass).items():
            defined.setdefault(attribute, (klass, raw))
    for attribute in [*own, *(name for name in defined if name not in own)]:
        if not options.wanted(attribute):
            continue
        klass, raw = defined.get(attribute, (object, _MISSING))
        if is_instrumented(raw) or _is_data_descriptor(raw):
            continue  # its class is instrumented, or a property (the class's, whatever the instance holds)
        if attribute in own:  # an instance attribute holding a function or a bound method
            wrapped = own[attribute]
            if not (is_plain_function(wrapped) or type(wrapped) is types.MethodType):
                continue
            function = underlying_function(getattr(wrapped, "__func__", wrapped))
        else:
            function = None if klass.__module__ == "builtins" else underlying_function(raw)
            wrapped = function if type(raw) is staticmethod else raw.__get__(obj, cls) if function else None
        if function is not None:
            spec = make_spec(f"{prefix}.{attribute}", function, capture)
            _apply(entry, obj, attribute, TelemetryWrapper(wrapped, spec, function, attribute))


def _instrument_module(module: types.ModuleType, options: _Options, entry: _Entry) -> None:
    if entry.watch is None:
        entry.watch = _PackageWatch(entry, module, options)
    entry.watch.active = True
    entry.watch.scan()


def _instrument_function(function: Callable[..., Any], options: _Options, name: str | None) -> Any:
    spec = make_spec(name or _function_span_name(function, options.prefix), function, options.capture())
    wrapper = TelemetryWrapper(function, spec, function)
    module = sys.modules.get(getattr(function, "__module__", None) or "")
    attribute = getattr(function, "__name__", "")
    if module is not None and vars(module).get(attribute) is function:
        # Also patch the module attribute, as instrumenting "pkg.module:function" by path does.
        _apply(_entry(function), module, attribute, wrapper)
    return wrapper


class _PackageWatch:
    """Instruments the public surface of a module, or of a package and its public submodules:
    those imported now at once, the others when the host imports them (discovery imports nothing)."""

    def __init__(self, entry: _Entry, module: types.ModuleType, options: _Options) -> None:
        self.entry = entry
        self.module = module
        self.package = Package(module)
        self.options = options
        self.active = True
        self.scanned: set[str] = set()
        self.waiting: set[str] = set()  # submodules with an import hook registered
        self.checked: set[str] | None = None  # modules looked at for copies of our wrappers
        self.classes: set[int] = set()
        self.functions: dict[int, TelemetryWrapper] = {}

    def scan(self, imported: types.ModuleType | None = None) -> None:
        """Instrument the modules not seen yet; `imported`: the one whose import just finished
        executing (a post-import hook runs before the import system marks it loaded)."""
        with _lock:
            modules = [self.module]
            if self.package.is_package:
                loaded = self.package.loaded_modules()
                self._record_copies(loaded, imported)
                modules += [module for module in loaded if self.package.is_public_module(module.__name__)]
            for module in modules:
                if module.__name__ in self.scanned:
                    continue
                if module is not imported and module is not self.module and is_loading(module):
                    continue  # a submodule still being imported: scanned at the next hook (its own or a parent's)
                self.scanned.add(module.__name__)
                self._instrument_surface(module)
                if self.package.is_package:
                    self._wait_for_children(module)

    def _record_copies(self, loaded: list[types.ModuleType], imported: types.ModuleType | None) -> None:
        """Record the wrappers that modules imported since copied (`from .x import f`), so that
        `uninstrument` gives them the original back too."""
        if self.checked is None:  # the first scan: nothing was wrapped before, nothing copied
            self.checked = {module.__name__ for module in loaded}
            return
        ours = {id(wrapper): wrapper for wrapper in self.functions.values()}
        for module in loaded:
            if module.__name__ in self.checked or (module is not imported and is_loading(module)):
                continue
            self.checked.add(module.__name__)
            for attribute, value in list(vars(module).items()):
                if ours.get(id(value), _MISSING) is value:
                    self.entry.patches.append(_Patch(module, attribute, value.__wrapped__, value))

    def on_import(self, module: types.ModuleType) -> None:
        """Post-import hook of a submodule: instrument what it (and what it imported) brought."""
        if not self.active:
            return
        try:
            self.scan(module)
        except Exception:  # the host's import must succeed whatever happens here
            _logger.exception("sdk-telemetry: instrumenting %s failed", getattr(module, "__name__", module))

    def _instrument_surface(self, module: types.ModuleType) -> None:
        prefix = self.options.prefix or module.__name__.rsplit(".", 1)[-1]
        class_options = _Options((), (), None, self.options.capture_args)
        for attribute, value in surface_of(module, self.package):
            if not self.options.wanted(attribute):
                continue
            if isinstance(value, type):
                if id(value) not in self.classes:
                    self.classes.add(id(value))
                    self.entry.members.append(value)
                    _instrument_class(value, class_options, _entry(value), self.package)
                continue
            wrapper = self.functions.get(id(value))
            if wrapper is None:
                spec = make_spec(f"{prefix}.{attribute}", value, self.options.capture())
                wrapper = self.functions[id(value)] = TelemetryWrapper(value, spec, value)
                home, own_name = sys.modules.get(value.__module__ or ""), str(value.__name__)
                if home is not None and home is not module and vars(home).get(own_name) is value:
                    _apply(self.entry, home, own_name, wrapper)  # so a pickled reference loads as this wrapper
            _apply(self.entry, module, attribute, wrapper)

    def _wait_for_children(self, module: types.ModuleType) -> None:
        for child in self.package.public_children(module):
            if child not in sys.modules and child not in self.waiting:
                self.waiting.add(child)
                wrapt.register_post_import_hook(self.on_import, child)


# --- patching --------------------------------------------------------------------------------


def _entry(target: Any) -> _Entry:
    with _lock:
        entry = _entries.get(id(target))
        if entry is None:
            entry = _entries[id(target)] = _Entry(target)
        return entry


def _apply(entry: _Entry, owner: Any, name: str, value: Any) -> None:
    """Set `owner.name = value`, recorded first (a failure half-way leaves nothing unrecorded)."""
    with _lock:
        entry.patches.append(_Patch(owner, name, _own(owner, name), value))
        _write(owner, name, value)


def _namespace(owner: Any) -> dict[str, Any]:
    """A module's or an instance's own `__dict__`, read without its class's attribute machinery."""
    namespace: dict[str, Any] = object.__getattribute__(owner, "__dict__")
    return namespace


def _own(owner: Any, name: str) -> Any:
    if isinstance(owner, type):
        return vars(owner).get(name, _MISSING)
    return _namespace(owner).get(name, _MISSING)


def _write(owner: Any, name: str, value: Any) -> None:
    if isinstance(owner, type):
        type.__setattr__(owner, name, value)  # not a metaclass's own __setattr__
    else:
        _namespace(owner)[name] = value


def _delete(owner: Any, name: str) -> None:
    if isinstance(owner, type):
        with contextlib.suppress(AttributeError):
            type.__delattr__(owner, name)
    else:
        _namespace(owner).pop(name, None)


def _restore_global(wrapper: TelemetryWrapper) -> None:
    """Give the module attribute that holds `wrapper` (an `@instrument`-decorated function) the
    original function back."""
    wrapped = wrapper.__wrapped__
    module = sys.modules.get(getattr(wrapped, "__module__", None) or "")
    name = getattr(wrapped, "__name__", None)
    if module is not None and isinstance(name, str) and vars(module).get(name) is wrapper:
        vars(module)[name] = wrapped


def _strip_instance(obj: Any) -> None:
    """Remove the wrappers in an unregistered instance's `__dict__`: those of its class's methods
    go, one wrapping an attribute of its own gives that attribute back."""
    if not _has_instance_dict(obj):
        return
    own = _namespace(obj)
    for attribute, value in list(own.items()):
        if type(value) is TelemetryWrapper:
            wrapped = value.__wrapped__
            function = underlying_function(getattr(wrapped, "__func__", wrapped))
            if function is not None and function is underlying_function(_class_attribute(type(obj), attribute)):
                del own[attribute]
            else:
                own[attribute] = wrapped


# --- helpers ---------------------------------------------------------------------------------


def _implementation(raw: Any) -> Any:
    """What an attribute found in a base class runs: unwrapped when the base is instrumented."""
    if type(raw) is InheritedMethod:
        return raw.implementation()
    return raw.__wrapped__ if type(raw) is TelemetryWrapper else raw


def _class_attribute(cls: type, attribute: str) -> Any:
    """The implementation `cls` has for `attribute` (found statically, unwrapped), or None."""
    for klass in cls.__mro__:
        if attribute in vars(klass):
            return _implementation(vars(klass)[attribute])
    return None


def _is_data_descriptor(raw: Any) -> bool:
    kind = type(raw)
    return hasattr(kind, "__set__") or hasattr(kind, "__delete__")


def _has_instance_dict(obj: Any) -> bool:
    try:
        return isinstance(object.__getattribute__(obj, "__dict__"), dict)
    except AttributeError:
        return False


def _function_span_name(function: Callable[..., Any], prefix: str | None) -> str:
    """`Class.method` for a function defined in a class body, else `module.function`."""
    parts = getattr(function, "__qualname__", function.__name__).split(".")
    if prefix:
        return f"{prefix}.{parts[-1]}"
    if len(parts) >= 2 and parts[-2] != "<locals>":
        return f"{parts[-2]}.{parts[-1]}"
    module = getattr(function, "__module__", None) or "function"
    return f"{module.rsplit('.', 1)[-1]}.{parts[-1]}"


def _patterns(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)
