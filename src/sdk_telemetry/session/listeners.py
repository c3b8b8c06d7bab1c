"""Who else sees the events a handle records: listeners called with every event, whether telemetry
is on or off (how `sdk_telemetry.testing` captures events in an SDK's own tests)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EventRecord:
    """One event as a handle recorded it: its kind (`GENERIC_EVENT`, `UNHANDLED_EXCEPTION`), name,
    severity and data (scrubbed as it would be sent)."""

    kind: str
    name: str
    severity: str
    data: Mapping[str, Any] = field(default_factory=dict)


Listener = Callable[[EventRecord], None]
_lock = threading.Lock()
_listeners: tuple[Listener, ...] = ()


def add_listener(listener: Listener) -> None:
    """Call `listener` with every event recorded from now on."""
    global _listeners
    with _lock:
        _listeners = (*_listeners, listener)


def remove_listener(listener: Listener) -> None:
    global _listeners
    with _lock:
        _listeners = tuple(known for known in _listeners if known is not listener)


def listening() -> bool:
    return bool(_listeners)


def notify(record: EventRecord) -> None:
    """Hand `record` to every listener; a listener's failure is logged, never raised."""
    for listener in _listeners:
        try:
            listener(record)
        except Exception:
            _logger.warning("sdk-telemetry: an event listener failed", exc_info=True)
