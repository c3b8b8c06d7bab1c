"""Re-initialising objects in a forked child: fresh locks, no state shared with the parent."""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from typing import Any


def reinit_after_fork(obj: Any, method: Callable[[Any], None]) -> None:
    """Call `method(obj)` in every forked child while `obj` is alive (a weak reference: no leak)."""
    if not hasattr(os, "register_at_fork"):
        return
    ref = weakref.ref(obj)

    def in_child() -> None:
        target = ref()
        if target is not None:
            method(target)

    os.register_at_fork(after_in_child=in_child)
