"""The public client surface of a module or package: which of its classes and functions a user
reaches and calls (the ones `instrument(package)` wraps), found without running the host's code.

Nothing here calls `getattr` on a host object, imports a module or runs a property: objects are
read from namespaces (`vars()`), kinds from their real `type()` (a lazy proxy's `__class__` is
never asked), and a package's submodules from `sys.modules` and its directories.
"""

from __future__ import annotations

import enum
import os
import pkgutil
import sys
import types
from collections.abc import Iterator
from typing import Any

from typing_extensions import is_typeddict

#: Top-level packages whose classes are data models: a class with one of them in its MRO is data.
_MODEL_FRAMEWORKS = frozenset({"pydantic", "pydantic_core", "attr", "attrs", "msgspec", "marshmallow"})
#: Submodule names that are never part of a client surface (importing them may need test tools).
_NEVER_SURFACE = frozenset({"tests", "test", "testing", "conftest"})


class Package:
    """A package (or plain module) whose surface is wanted: its name and the directories it lives in."""

    def __init__(self, module: types.ModuleType) -> None:
        self.name = module.__name__
        paths = module.__dict__.get("__path__")
        if paths is not None:
            self.directories = tuple(os.path.join(os.path.abspath(str(path)), "") for path in paths)
        else:
            file = module.__dict__.get("__file__")
            self.directories = (os.path.abspath(file),) if isinstance(file, str) else ()
        self.is_package = paths is not None

    def contains_module(self, name: object) -> bool:
        """True when `name` is this package or one of its submodules."""
        return isinstance(name, str) and (name == self.name or name.startswith(self.name + "."))

    def defines(self, obj: Any) -> bool:
        """True when `obj` (a class or function) was defined in this package: by its `__module__`
        (which SDKs rewrite to the public name, e.g. `openai._client.OpenAI` says `openai`), else by
        the file its code lives in."""
        if self.contains_module(_declared_module(obj)):
            return True
        filename = _code_file(obj)
        return filename is not None and bool(self.directories) and filename.startswith(self.directories)

    def loaded_modules(self) -> list[types.ModuleType]:
        """This package and its submodules (private ones too) that are imported now, shallowest first."""
        found = []
        for name, module in list(sys.modules.items()):
            if self.contains_module(name) and isinstance(module, types.ModuleType):
                found.append(module)
        found.sort(key=lambda module: (module.__name__.count("."), module.__name__))
        return found

    def is_public_module(self, name: str) -> bool:
        """A module of this package with no `_`-prefixed component after the package's own name
        (and no test module)."""
        if not self.contains_module(name):
            return False
        parts = name[len(self.name) :].split(".")[1:]
        return not any(part.startswith("_") or part in _NEVER_SURFACE for part in parts)

    def public_children(self, module: types.ModuleType) -> list[str]:
        """The names of `module`'s public direct submodules, listed from its directory (not imported)."""
        paths = module.__dict__.get("__path__")
        if paths is None:
            return []
        try:
            children = [info.name for info in pkgutil.iter_modules(list(paths))]
        except (OSError, TypeError):  # an unusual loader: nothing listed, nothing lost but discovery
            return []
        public = [child for child in children if not child.startswith("_") and child not in _NEVER_SURFACE]
        return [f"{module.__name__}.{child}" for child in public]


def surface_of(module: types.ModuleType, package: Package) -> Iterator[tuple[str, Any]]:
    """(name, object) of the public classes and functions in `module`'s namespace that belong to
    `package` and are not data (models, exceptions, enums, typed dicts, protocols). Public: listed
    in the module's `__all__` when it has one, else declared in a public module of the package
    (a helper imported from a private module is not part of the surface)."""
    namespace = vars(module)
    exported = namespace.get("__all__")
    listed = {name for name in exported if isinstance(name, str)} if isinstance(exported, (list, tuple)) else None
    for name, value in list(namespace.items()):
        if name.startswith("_") or (listed is not None and name not in listed):
            continue
        kind = type(value)  # the real type: never a proxy's `__class__`
        if not (issubclass(kind, type) or kind is types.FunctionType) or not package.defines(value):
            continue
        if listed is None and not package.is_public_module(_declared_module(value)):
            continue
        if kind is types.FunctionType or not is_data_class(value):
            yield name, value


def is_loading(module: types.ModuleType) -> bool:
    """True while `module` is still being executed by its import (its namespace is incomplete)."""
    return bool(getattr(vars(module).get("__spec__"), "_initializing", False))


def is_data_class(cls: type) -> bool:
    """True for classes that hold data rather than call an API: pydantic/attrs/msgspec models,
    dataclasses, typed dicts, named tuples, enums, exceptions and protocols (read from the class
    dicts along its MRO: no metaclass `__getattr__` runs)."""
    namespaces = [vars(klass) for klass in cls.__mro__]
    if any(str(namespace.get("__module__", "")).split(".")[0] in _MODEL_FRAMEWORKS for namespace in namespaces):
        return True
    if issubclass(cls, BaseException) or issubclass(type(cls), enum.EnumMeta) or is_typeddict(cls):
        return True
    if any("__dataclass_fields__" in namespace or "__attrs_attrs__" in namespace for namespace in namespaces):
        return True
    return (issubclass(cls, tuple) and "_fields" in vars(cls)) or bool(vars(cls).get("_is_protocol", False))


def _declared_module(obj: Any) -> str:
    declared = (vars(obj) if isinstance(obj, type) else {}).get("__module__", getattr(obj, "__module__", None))
    return declared if isinstance(declared, str) else ""


def _code_file(obj: Any) -> str | None:
    """The absolute file of a function's code, or of the first function in a class's body."""
    if isinstance(obj, type):
        for value in vars(obj).values():
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            if isinstance(value, types.FunctionType):
                return os.path.abspath(value.__code__.co_filename)
        return None
    code = getattr(obj, "__code__", None) if isinstance(obj, types.FunctionType) else None
    return os.path.abspath(code.co_filename) if code is not None else None
