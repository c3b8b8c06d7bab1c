"""The OpenTelemetry entry points that make `opentelemetry-instrument` set up sdk-telemetry.

- distro `sdk_telemetry`: selects our configurator unless the user chose another;
- configurator `sdk_telemetry`: runs `configure_telemetry()` from the environment;
- instrumentor `sdk_telemetry`: instruments the targets named in `SDK_TELEMETRY_INSTRUMENT`.

None of them ever raises: a failure is logged and the application runs uninstrumented.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.sdk._configuration import _BaseConfigurator

from sdk_telemetry.config import current_settings
from sdk_telemetry.instrument import instrument, uninstrument, when_importable
from sdk_telemetry.telemetry import configure_telemetry

_logger = logging.getLogger(__name__)
ENTRY_POINT_NAME = "sdk_telemetry"


class SdkTelemetryDistro(BaseDistro):  # type: ignore[misc]
    """Makes our configurator the one `opentelemetry-instrument` runs."""

    def _configure(self, **kwargs: Any) -> None:
        os.environ.setdefault("OTEL_PYTHON_CONFIGURATOR", ENTRY_POINT_NAME)


class SdkTelemetryConfigurator(_BaseConfigurator):  # type: ignore[misc]
    """`configure_telemetry()` with every setting taken from the environment."""

    def _configure(self, **kwargs: Any) -> None:
        try:
            configure_telemetry()
        except Exception:
            _logger.exception("sdk-telemetry: configuration failed; telemetry is off")


class SdkTelemetryInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments each `module:attribute` of `SDK_TELEMETRY_INSTRUMENT` when its module is imported."""

    def instrumentation_dependencies(self) -> Collection[str]:
        """Nothing: the targets are the application's own code."""
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        settings = current_settings()
        if not settings.enabled:
            return
        for target in settings.instrument_targets:
            # By path once its module is imported: a "module:Class.method" target is patched on its class.
            when_importable(target, functools.partial(_instrument_path, target))

    def _uninstrument(self, **kwargs: Any) -> None:
        for target in current_settings().instrument_targets:
            try:
                uninstrument(target)
            except Exception:
                _logger.debug("sdk-telemetry: could not uninstrument %s", target, exc_info=True)


def _instrument_path(path: str, _resolved: object) -> None:
    """`instrument(path)`, called once the target's module is imported (so nothing is imported early)."""
    instrument(path)
