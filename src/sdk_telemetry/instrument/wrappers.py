"""The objects `instrument()` installs: a callable's wrapper (`TelemetryWrapper`), its bound form
(`BoundTelemetryWrapper`), the descriptor a class gets for a method it inherits (`InheritedMethod`),
and how each of them survives `pickle`, `copy` and `copy.deepcopy` as the callable it wraps would.
"""

from __future__ import annotations

import copy
import functools
import inspect
import sys
import types
from collections.abc import Callable
from typing import Any

import wrapt

from sdk_telemetry.instrument import calls as _calls
from sdk_telemetry.instrument.calls import CallSpec

_MISSING: Any = object()


def make_spec(name: str, function: Callable[..., Any], capture_args: bool) -> CallSpec:
    """The spec of every call of `function` recorded under the span name `name`."""
    module = getattr(function, "__module__", None) or ""
    qualname = getattr(function, "__qualname__", None) or getattr(function, "__name__", None) or name
    return CallSpec(name, f"{module}.{qualname}" if module else qualname, function, capture_args)


def underlying_function(raw: Any) -> Callable[..., Any] | None:
    """The plain function behind a method, staticmethod or classmethod; None for anything else."""
    if issubclass(type(raw), (staticmethod, classmethod)):
        raw = raw.__func__
    return raw if is_plain_function(raw) else None


def is_plain_function(obj: Any) -> bool:
    """A Python function, a `functools.partial` or a builtin: what a wrapper can be made for.
    By the real type (neither a wrapper nor a host's lazy proxy passes for one through `__class__`)."""
    return issubclass(type(obj), (types.FunctionType, functools.partial, types.BuiltinFunctionType))


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


class BoundTelemetryWrapper(wrapt.BoundFunctionWrapper):  # type: ignore[misc,type-arg]
    """An instrumented method as reached through its instance or class (wrapt binds it on access).

    Pickled and deep-copied as a bound method is: the instance (or class) and the attribute name.
    """

    def _attribute(self) -> str:
        return self._self_parent._self_attribute or self.__wrapped__.__name__  # type: ignore[no-any-return]

    def _target(self) -> Any:
        return self._self_instance if self._self_instance is not None else self._self_owner

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return getattr(copy.deepcopy(self._target(), memo), self._attribute())

    def __reduce_ex__(self, protocol: Any) -> Any:
        return getattr, (self._target(), self._attribute())

    def __reduce__(self) -> Any:
        return self.__reduce_ex__(2)


class TelemetryWrapper(wrapt.FunctionWrapper):  # type: ignore[misc,type-arg]
    """A `wrapt.FunctionWrapper` that marks a callable as instrumented by sdk-telemetry.

    `attribute` is the name it was installed under in a class or instance (None for a function).
    Copies are the wrapper itself (functions are immutable). Pickled: a module-level function by
    reference when its module attribute is this wrapper (so it loads as the instrumented one), a
    method wrapped on one instance as that instance's method, anything else as its wrapped
    callable and the span name, wrapped again when loaded.
    """

    __bound_function_wrapper__ = BoundTelemetryWrapper

    def __init__(
        self, wrapped: Any, spec: CallSpec, function: Callable[..., Any], attribute: str | None = None
    ) -> None:
        super().__init__(wrapped, _dispatcher(spec, function))
        self._self_spec = spec
        self._self_attribute = attribute

    @property
    def telemetry_name(self) -> str:
        """The span name of this callable's calls."""
        return str(self._self_spec.name)

    def __set_name__(self, owner: type, name: str) -> None:
        self._self_attribute = name  # `@instrument` in a class body: the name the method is reached by
        super().__set_name__(owner, name)  # type: ignore[misc]

    def _bound_instance(self) -> Any:
        """The instance whose method this wraps (a wrapper installed on one instance), else None."""
        wrapped = self.__wrapped__
        if type(wrapped) is types.MethodType and not issubclass(type(wrapped.__self__), type):
            return wrapped.__self__
        return None

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        instance = self._bound_instance()
        if instance is None:
            return self
        spec = self._self_spec
        return instance_method(copy.deepcopy(instance, memo), self._attribute(), spec.name, spec.capture_args)

    def __reduce_ex__(self, protocol: Any) -> Any:
        spec = self._self_spec
        instance = self._bound_instance()
        if instance is not None:
            return instance_method, (instance, self._attribute(), spec.name, spec.capture_args)
        qualname = self._global_name()
        if qualname is not None:
            return qualname  # pickle stores a reference to the module attribute: this wrapper
        return function_wrapper, (self.__wrapped__, spec.name, spec.capture_args)

    def __reduce__(self) -> Any:
        return self.__reduce_ex__(2)

    def _attribute(self) -> str:
        return self._self_attribute or self.__wrapped__.__name__  # type: ignore[no-any-return]

    def _global_name(self) -> str | None:
        """The qualified name under which this wrapper is its module's attribute, if it is."""
        wrapped = self.__wrapped__
        module = sys.modules.get(getattr(wrapped, "__module__", None) or "")
        qualname = getattr(wrapped, "__qualname__", None)
        if module is None or not isinstance(qualname, str) or "<locals>" in qualname:
            return None
        # Only a module's own attribute: in a class, pickle's `getattr` would find a bound wrapper.
        return qualname if "." not in qualname and vars(module).get(qualname) is self else None


# The wrapper's C-level binding, called directly: `wrapper.__get__` through the proxy costs 2-3x more.
_bind = TelemetryWrapper.__get__


class InheritedMethod:
    """In a class that inherits a method: the inherited implementation, looked up past that class
    at each access (so that replacing it on the base, as `mock.patch.object(Base, ...)` does, is
    honoured) and run inside a span named after this class.

    To what inspects the class's own attribute it passes for that implementation (its class,
    `__wrapped__`, name, signature; called, it runs as the function would), so that
    `mock.patch.object(Sub, name, autospec=True)` and `inspect.signature` work as before.
    """

    __slots__ = ("_capture_args", "_last", "_mro", "_name", "_namespaces", "_owner", "_span_name")

    def __init__(self, owner: type, name: str, span_name: str, capture_args: bool) -> None:
        self._owner = owner
        self._name = name
        self._span_name = span_name
        self._capture_args = capture_args
        self._mro = owner.__mro__
        # Live views of the bases' dicts, made once: `klass.__dict__` makes a new view at each access.
        self._namespaces = tuple(vars(klass) for klass in self._mro[1:])
        self._last: tuple[Any, Any] = (_MISSING, None)  # (implementation found, its wrapper)

    @property
    def telemetry_name(self) -> str:
        """The span name of this method's calls."""
        return self._span_name

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if owner is None:
            owner = type(instance)
        name = self._name
        for namespace in self._namespaces if owner.__mro__ is self._mro else self._namespaces_for(owner):
            raw = namespace.get(name, _MISSING)
            if raw is not _MISSING and type(raw) is not InheritedMethod:
                break
        else:
            raise AttributeError(name)
        last_raw, wrapper = self._last
        if raw is not last_raw:
            wrapper = self._wrap(raw)
            self._last = (raw, wrapper)
        if wrapper is None:  # not a callable we trace (say, replaced by a property): as it is
            get = getattr(type(raw), "__get__", None)
            return raw if get is None else get(raw, instance, owner)
        return _bind(wrapper, instance, owner)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Called straight from the class dict (`vars(Sub)[name](obj, ...)`): as the function would be."""
        return self.__get__(None, self._owner)(*args, **kwargs)

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # what `isinstance` sees: the implementation's class
        return type(self.implementation())

    @property
    def __wrapped__(self) -> Any:
        return self.implementation()

    def __getattr__(self, name: str) -> Any:  # `__name__`, `__module__`, `__defaults__`…: the implementation's
        return getattr(self.implementation(), name)

    def __reduce__(self) -> Any:  # a class pickled by value (cloudpickle) carries it
        return InheritedMethod, (self._owner, self._name, self._span_name, self._capture_args)

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return self

    def _namespaces_for(self, owner: type) -> list[Any]:
        """Reached through a subclass (or the bases changed): the classes past this one in its MRO."""
        mro = owner.__mro__
        return [vars(klass) for klass in (mro[mro.index(self._owner) + 1 :] if self._owner in mro else mro)]

    def implementation(self) -> Any:
        """The implementation this class inherits now (unwrapped), or None."""
        return _implementation(self._namespaces_for(self._owner), self._name)

    def _wrap(self, raw: Any) -> TelemetryWrapper | None:
        if type(raw) is TelemetryWrapper:  # the base is instrumented too: one span, this class's
            raw = raw.__wrapped__
        function = underlying_function(raw)
        if function is None:
            if not callable(raw) or isinstance(raw, (property, type)):
                return None
            function = raw  # a stand-in such as a mock: traced as a plain call
        return TelemetryWrapper(raw, make_spec(self._span_name, function, self._capture_args), function, self._name)

    def __repr__(self) -> str:
        return f"<sdk-telemetry inherited method {self._span_name}>"


def _implementation(namespaces: Any, name: str) -> Any:
    """The first implementation of `name` in `namespaces` (class dicts in MRO order), unwrapped."""
    for namespace in namespaces:
        raw = namespace.get(name, _MISSING)
        if raw is not _MISSING and type(raw) is not InheritedMethod:
            return raw.__wrapped__ if type(raw) is TelemetryWrapper else raw
    return None


def function_wrapper(wrapped: Callable[..., Any], span_name: str, capture_args: bool) -> TelemetryWrapper:
    """A wrapper of `wrapped` (what a pickled wrapper that is no module attribute loads as)."""
    function = underlying_function(wrapped) or wrapped
    return TelemetryWrapper(wrapped, make_spec(span_name, function, capture_args), function)


def instance_method(instance: Any, attribute: str, span_name: str, capture_args: bool) -> Any:
    """`instance`'s method `attribute`, wrapped (what a method instrumented on one instance loads
    as, bound to the loaded instance). Found statically in the instance's class."""
    for klass in type(instance).__mro__:
        raw = klass.__dict__.get(attribute, _MISSING)
        if raw is _MISSING:
            continue
        if type(raw) is InheritedMethod:
            raw = raw.implementation()
        elif type(raw) is TelemetryWrapper:
            raw = raw.__wrapped__
        function = underlying_function(raw)
        if function is None:
            break
        bound = function if type(raw) is staticmethod else raw.__get__(instance, type(instance))
        return TelemetryWrapper(bound, make_spec(span_name, function, capture_args), function, attribute)
    raise AttributeError(f"{type(instance).__name__!r} has no method {attribute!r}")
