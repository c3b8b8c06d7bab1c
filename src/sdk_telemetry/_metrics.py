"""The invocation metrics: a call counter, an error counter and a duration histogram."""

from __future__ import annotations

from opentelemetry import metrics

from sdk_telemetry._version import __version__

FUNCTION = "function.name"
OUTCOME = "outcome"
ERROR_TYPE = "error.type"


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
