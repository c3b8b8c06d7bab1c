"""Explicit consent: when an SDK chooses it, nothing leaves the process until the user grants it.

Consent is process-wide (every thread, whenever started) and held in memory only: an SDK that
asks its users stores their answer itself and calls `grant_consent()` at start-up. Spans and
events recorded while consent is withheld are discarded, never sent later. The opt-out
variables (`DO_NOT_TRACK`, ...) win over a grant: with one set, telemetry is off.
"""

from __future__ import annotations

import threading

_lock = threading.Lock()
_granted = False
_required = False
_withheld = 0


def grant_consent() -> None:
    """Allow telemetry recorded from now on to leave the process (in consent-required mode)."""
    global _granted
    _granted = True


def revoke_consent() -> None:
    """Stop telemetry from leaving the process again (in consent-required mode).

    What was recorded before, with consent, and is still queued may be sent within the batch interval.
    """
    global _granted
    _granted = False


def consent_granted() -> bool:
    """True once `grant_consent()` has been called (and not revoked since)."""
    return _granted


def set_required(required: bool) -> None:
    """Record whether the active setup requires consent (done when settings are activated)."""
    global _required
    _required = required


def withheld() -> bool:
    """True when the active setup requires consent and it has not been granted: send nothing."""
    return _required and not _granted


def count_withheld() -> None:
    """Count one span or event discarded for want of consent."""
    global _withheld
    with _lock:
        _withheld += 1


def reset() -> None:
    """Forget the grant and the mode (for tests)."""
    global _granted, _required
    _granted = False
    _required = False


def stats() -> dict[str, object]:
    """Whether consent is required and granted, and how much was discarded for want of it."""
    return {"consent_required": _required, "consent_granted": _granted, "withheld_no_consent": _withheld}
