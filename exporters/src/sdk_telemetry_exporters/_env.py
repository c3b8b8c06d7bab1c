"""The exporters' settings, read from the environment in this one place.

`sdk_telemetry` reads the same variables through `ExporterSettings.from_env` and passes the
result down; an exporter built with no arguments (as OpenTelemetry's configurator builds it)
calls the same function itself.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote

_logger = logging.getLogger(__name__)

ENDPOINT = "SDK_TELEMETRY_ENDPOINT"
API_KEY = "SDK_TELEMETRY_API_KEY"
HEADERS = "SDK_TELEMETRY_HEADERS"
TIMEOUT = "SDK_TELEMETRY_TIMEOUT"
OTLP_FALLBACK = "SDK_TELEMETRY_OTLP_FALLBACK"
OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
OTLP_TRACES_ENDPOINT = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"

DEFAULT_TIMEOUT = 5.0
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_bool(value: str | None) -> bool | None:
    """`True`/`False` for the usual spellings, `None` when unset or not a boolean."""
    if value is None:
        return None
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def parse_headers(value: str | None) -> dict[str, str]:
    """Headers in the `OTEL_EXPORTER_OTLP_HEADERS` form: `key=value,key2=value2`, URL-encoded."""
    headers: dict[str, str] = {}
    for item in (value or "").split(","):
        if not item.strip():
            continue
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            _logger.warning("sdk-telemetry: ignoring malformed header %r (expected key=value)", item)
            continue
        headers[unquote(key.strip())] = unquote(val.strip())
    return headers


def parse_seconds(value: str | None, default: float, name: str) -> float:
    """A finite positive number (in the unit of variable `name`), else `default` (with a warning)."""
    if value is None or not value.strip():
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not math.isfinite(seconds) or seconds <= 0:
        _logger.warning("sdk-telemetry: %s=%r is not a positive number; using the default", name, value)
        return default
    return seconds


@dataclass(frozen=True)
class ExporterSettings:
    """Where and how the HTTP exporters send."""

    endpoint: str | None = None
    api_key: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT
    otlp_fallback: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ExporterSettings:
        """Settings from the environment; never raises."""
        env = os.environ if environ is None else environ
        return cls(
            endpoint=(env.get(ENDPOINT) or "").strip() or None,
            api_key=(env.get(API_KEY) or "").strip() or None,
            headers=parse_headers(env.get(HEADERS)),
            timeout=parse_seconds(env.get(TIMEOUT), DEFAULT_TIMEOUT, TIMEOUT),
            otlp_fallback=parse_bool(env.get(OTLP_FALLBACK)) is not False,
        )


def otlp_endpoint_configured(environ: Mapping[str, str] | None = None) -> bool:
    """Whether an OTLP endpoint is set, so that the OTLP fallback has somewhere to send."""
    env = os.environ if environ is None else environ
    return bool((env.get(OTLP_TRACES_ENDPOINT) or env.get(OTLP_ENDPOINT) or "").strip())
