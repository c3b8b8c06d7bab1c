"""The invocation metrics: a call counter, an error counter and a duration histogram."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import NoOpMeterProvider

from sdk_telemetry import otel_compat as _compat
from sdk_telemetry._version import __version__

FUNCTION = "function.name"
OUTCOME = "outcome"
ERROR_TYPE = "error.type"

_checked: tuple[Any, bool] = (None, False)  # the global MeterProvider last looked at, and the answer
# `_meter_state[_meter_key]`: the MeterProvider the application set, None while there is none.
_meter_state: Mapping[str, object]
_meter_key: str


def bind() -> None:
    """Take where the global MeterProvider is from `otel_compat` (at import, and again when told)."""
    global _meter_state, _meter_key
    _meter_state, _meter_key = _compat.meter_provider_slot()


bind()


def metrics_recorded() -> bool:
    """False while the global MeterProvider is unset (the API's proxy) or a no-op one.

    Instruments made through the proxy do nothing until a real provider is set, and then follow
    it; so skipping the calls meanwhile changes nothing but their cost.
    """
    global _checked
    provider = _meter_state[_meter_key]
    if provider is None:
        return False
    seen, recorded = _checked
    if seen is not provider:
        recorded = not isinstance(provider, NoOpMeterProvider)
        _checked = (provider, recorded)
    return recorded


class InvocationMetrics:
    """Instruments from the global MeterProvider; a no-op until the application installs one."""

    def __init__(self) -> None:
        meter = metrics.get_meter("sdk_telemetry", __version__)
        self.calls = meter.create_counter(
            "sdk_telemetry.invocations",
            unit="{call}",
            description="Instrumented calls, by function and outcome",
        )
        self.errors = meter.create_counter(
            "sdk_telemetry.errors",
            unit="{error}",
            description="Instrumented calls that raised, by error type",
        )
        self.duration = meter.create_histogram(
            "sdk_telemetry.invocation.duration", unit="s", description="Duration of instrumented calls"
        )

    def record(self, attributes: dict[str, str], seconds: float, error_type: str | None) -> None:
        """Record one finished call; `attributes` holds the function name and outcome."""
        self.calls.add(1, attributes)
        self.duration.record(seconds, attributes)
        if error_type is not None:
            self.errors.add(1, {FUNCTION: attributes[FUNCTION], ERROR_TYPE: error_type})
