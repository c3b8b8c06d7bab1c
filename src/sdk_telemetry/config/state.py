"""The one owner of process-wide state: the settings of the active setup (the last
`configure_telemetry()`), its consent mode, and the scrubber for code that has no handle at hand
(the error text of instrumented calls, `instrument()`'s defaults)."""

from __future__ import annotations

import threading

from sdk_telemetry.config.settings import Settings, resolve_settings
from sdk_telemetry.privacy import Scrubber, set_required

_lock = threading.Lock()
_active: Settings | None = None
_fallback_scrubber: Scrubber | None = None  # from the environment alone, while nothing is active
_testing = False  # `sdk_telemetry.testing` is on: instrument even where telemetry is off


def activate(settings: Settings | None) -> None:
    """Make `settings` the active setup's: its privacy rules and consent mode (None: unconfigured)."""
    global _active, _fallback_scrubber
    with _lock:
        _active = settings
        _fallback_scrubber = None
    set_required(settings.privacy.consent_required if settings is not None else False)


def current_settings() -> Settings:
    """The configured settings, or what the environment alone says before any configuration."""
    with _lock:
        active = _active
    return active if active is not None else resolve_settings()


def scrubber() -> Scrubber:
    """The active setup's scrubber (before any setup: the environment's rules, compiled once)."""
    global _fallback_scrubber
    active = _active
    if active is not None:
        return active.privacy.scrubber
    fallback = _fallback_scrubber
    if fallback is None:
        fallback = _fallback_scrubber = resolve_settings().privacy.scrubber
    return fallback


def instrumentation_allowed() -> bool:
    """False when telemetry is off for this process, so that nothing gets patched (unless an SDK's
    tests capture its telemetry with `sdk_telemetry.testing`)."""
    return _testing or current_settings().enabled


def allow_instrumentation_for_tests(allowed: bool) -> bool:
    """`instrument()` wraps even while telemetry is off (`sdk_telemetry.testing`); returns the previous value."""
    global _testing
    previous, _testing = _testing, allowed
    return previous


def capture_args_default() -> bool:
    """Whether call arguments are recorded when `instrument()` was not told."""
    return current_settings().capture_args
