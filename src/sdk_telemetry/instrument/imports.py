"""Acting on `module:attribute` targets once their module is imported, without importing it early."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import wrapt

_logger = logging.getLogger(__name__)


def when_importable(target: str, action: Callable[[Any], Any]) -> None:
    """Call `action(obj)` for the object named by `target` now if its module is loaded, else at its import.

    Waiting for the import keeps start-up free of the application's side effects and works
    before the script's directory is on `sys.path`.
    """
    module_name, _, attribute = target.partition(":")
    module_name = module_name.strip()
    if not module_name:
        _logger.error("sdk-telemetry: %r is not a 'module:attribute' target", target)
        return

    def on_import(module: Any) -> None:
        try:
            obj = module
            for part in filter(None, attribute.strip().split(".")):
                obj = getattr(obj, part)
            action(obj)
        except AttributeError:
            _logger.error("sdk-telemetry: %s has no attribute %r; not instrumented", module_name, attribute)
        except Exception:
            _logger.exception("sdk-telemetry: instrumenting %s failed", target)

    if module_name in sys.modules:
        on_import(sys.modules[module_name])
    else:
        wrapt.register_post_import_hook(on_import, module_name)
