"""sdk-telemetry: every call of an SDK's public methods as OpenTelemetry spans and metrics.

    from sdk_telemetry import configure_telemetry, instrument

    telemetry = configure_telemetry(service_name="acme-sdk")
    instrument(AcmeClient)

The whole public API is listed here; modules whose names start with `_` may change.
"""

from sdk_telemetry._batch import BatchSpanProcessor
from sdk_telemetry._instrument import instrument, is_instrumented, uninstrument, uninstrument_all
from sdk_telemetry._settings import Settings
from sdk_telemetry._setup import Telemetry, configure_telemetry, current_telemetry
from sdk_telemetry._version import __version__

__all__ = [
    "BatchSpanProcessor",
    "Settings",
    "Telemetry",
    "__version__",
    "configure_telemetry",
    "current_telemetry",
    "instrument",
    "is_instrumented",
    "uninstrument",
    "uninstrument_all",
]
