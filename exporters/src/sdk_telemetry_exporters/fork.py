"""Re-initialising objects in a forked child: fresh locks, no state shared with the parent.

The one place that registers an after-fork hook (`os.register_at_fork`), for the exporters and
for `sdk_telemetry` alike.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def reinit_after_fork(obj: T, method: Callable[[T], None]) -> None:
    """Call `method(obj)` in every forked child while `obj` is alive (a weak reference: no leak).

    `method` is usually an unbound method, e.g. `reinit_after_fork(self, type(self)._after_fork)`
    (`type(self)`, so that a subclass's override is the one called). Where the platform cannot
    fork (no `os.register_at_fork`) nothing is registered.
    """
    if not hasattr(os, "register_at_fork"):
        return
    ref = weakref.ref(obj)

    def in_child() -> None:
        target = ref()
        if target is not None:
            method(target)

    os.register_at_fork(after_in_child=in_child)
