"""Warnings about misconfiguration and failing delivery: one line each, at most once a minute per problem.

`warn(key, message, *args)` logs `message` on the `sdk_telemetry` logger at WARNING unless the
same `key` was warned about less than `WARN_INTERVAL` seconds ago. It never raises: a warning
must not stop the host program. Both distributions use it, so the rule is the same everywhere.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

#: The shortest interval (seconds) between two warnings about the same problem.
WARN_INTERVAL = 60.0

_logger = logging.getLogger("sdk_telemetry")
_lock = threading.Lock()
_last: dict[str, float] = {}  # key -> `time.monotonic()` of its last warning


def warn(key: str, message: str, *args: Any) -> bool:
    """Log `"sdk-telemetry: " + message % args` unless `key` was warned about within the interval; True when logged."""
    try:
        now = time.monotonic()
        with _lock:
            last = _last.get(key)
            if last is not None and now - last < WARN_INTERVAL:
                return False
            _last[key] = now
        _logger.warning("sdk-telemetry: " + message, *args)
        return True
    except Exception:  # a broken handler or format must not reach the host
        return False


def reset() -> None:
    """Forget every warning given (a new configuration warns afresh; tests start clean)."""
    with _lock:
        _last.clear()
