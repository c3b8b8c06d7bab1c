"""Process-wide state: the active settings, consulted by `instrument()` before it patches anything."""

from __future__ import annotations

import threading

from sdk_telemetry.config.settings import Settings, resolve_settings

_lock = threading.Lock()
_active: Settings | None = None


def set_active(settings: Settings | None) -> None:
    """Remember the settings of the current `configure_telemetry()` (None after shutdown)."""
    global _active
    with _lock:
        _active = settings


def current_settings() -> Settings:
    """The configured settings, or what the environment alone says before any configuration."""
    with _lock:
        active = _active
    return active if active is not None else resolve_settings()


def instrumentation_allowed() -> bool:
    """False when telemetry is off for this process, so that nothing gets patched."""
    return current_settings().enabled


def capture_args_default() -> bool:
    """Whether call arguments are recorded when `instrument()` was not told."""
    return current_settings().capture_args
