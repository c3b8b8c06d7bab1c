"""`module:attribute` targets: naming an object by its import path, now (`resolve`) or once its
module is imported, without importing it early (`when_importable`)."""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable
from typing import Any

import wrapt

_logger = logging.getLogger(__name__)


def split_target(path: str) -> tuple[str, tuple[str, ...]]:
    """`"pkg.module:Class.attr"` as `("pkg.module", ("Class", "attr"))` (no attributes for a module)."""
    module_name, _, attribute = path.partition(":")
    return module_name.strip(), tuple(filter(None, attribute.strip().split(".")))


def walk(obj: Any, attributes: tuple[str, ...]) -> Any:
    """`obj.a.b…` for the attribute names given."""
    for name in attributes:
        obj = getattr(obj, name)
    return obj


def resolve(path: str) -> Any:
    """The object named by `"pkg.module"` or `"pkg.module:Attr.attr"` (imports the module)."""
    module_name, attributes = split_target(path)
    return walk(importlib.import_module(module_name), attributes)


def when_importable(target: str, action: Callable[[Any], Any]) -> None:
    """Call `action(obj)` for the object named by `target` now if its module is loaded, else at its import.

    Waiting for the import keeps start-up free of the application's side effects and works
    before the script's directory is on `sys.path`.
    """
    module_name, attributes = split_target(target)
    if not module_name:
        _logger.error("sdk-telemetry: %r is not a 'module:attribute' target", target)
        return

    def on_import(module: Any) -> None:
        try:
            obj = walk(module, attributes)
        except AttributeError:
            _logger.error("sdk-telemetry: %s has no attribute %r; not instrumented", module_name, ".".join(attributes))
            return
        except Exception:  # a module's own __getattr__ failed: the host's import must still succeed
            _logger.exception("sdk-telemetry: looking up %s failed; not instrumented", target)
            return
        try:
            action(obj)
        except Exception:
            _logger.exception("sdk-telemetry: instrumenting %s failed", target)

    if module_name in sys.modules:
        on_import(sys.modules[module_name])
    else:
        wrapt.register_post_import_hook(on_import, module_name)
