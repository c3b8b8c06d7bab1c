"""sdk-telemetry: every call of an SDK's public methods as OpenTelemetry spans and metrics,
and a session-scoped event log (events and exceptions) beside them.

    from sdk_telemetry import configure_telemetry, instrument

    telemetry = configure_telemetry(service_name="acme-sdk")
    instrument(AcmeClient)
    telemetry.log("client.created", {"region": "eu"})

The whole public API is listed here; modules whose names start with `_` may change.
"""

from sdk_telemetry._version import __version__
from sdk_telemetry.config import Settings, user
from sdk_telemetry.instrument import (
    WRAPPER_PATHS,
    instrument,
    is_instrumented,
    stacklevel,
    uninstrument,
    uninstrument_all,
    warn,
)
from sdk_telemetry.pipeline import BatchSpanProcessor
from sdk_telemetry.privacy import ScrubMatch, consent_granted, grant_consent, revoke_consent
from sdk_telemetry.session import CaptureExceptions, Session
from sdk_telemetry.telemetry import Telemetry, configure_telemetry, create_telemetry, current_telemetry

__all__ = [
    "WRAPPER_PATHS",
    "BatchSpanProcessor",
    "CaptureExceptions",
    "ScrubMatch",
    "Session",
    "Settings",
    "Telemetry",
    "__version__",
    "configure_telemetry",
    "consent_granted",
    "create_telemetry",
    "current_telemetry",
    "grant_consent",
    "instrument",
    "is_instrumented",
    "revoke_consent",
    "stacklevel",
    "uninstrument",
    "uninstrument_all",
    "user",
    "warn",
]
