"""The exporters' settings, read from the environment in this one place, and the parsers of its values.

`sdk_telemetry` reads the same variables through `ExporterSettings.from_env` (or `resolve`) and
passes the result down; an exporter built with no arguments (as OpenTelemetry's configurator
builds it) calls the same function itself. `parse_bool`, `parse_seconds`, `parse_list` and
`parse_headers` are the one way each kind of value is read, on both sides.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from sdk_telemetry_exporters.notices import warn

ENDPOINT = "SDK_TELEMETRY_ENDPOINT"
API_KEY = "SDK_TELEMETRY_API_KEY"
HEADERS = "SDK_TELEMETRY_HEADERS"
TIMEOUT = "SDK_TELEMETRY_TIMEOUT"
OTLP_FALLBACK = "SDK_TELEMETRY_OTLP_FALLBACK"
OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
OTLP_TRACES_ENDPOINT = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
RETRY_BASE = "SDK_TELEMETRY_RETRY_BASE"
RETRY_CAP = "SDK_TELEMETRY_RETRY_CAP"
RETRY_AFTER_MAX = "SDK_TELEMETRY_RETRY_AFTER_MAX"
MAX_ATTEMPTS = "SDK_TELEMETRY_MAX_ATTEMPTS"
SPOOL = "SDK_TELEMETRY_SPOOL"
SPOOL_DIR = "SDK_TELEMETRY_SPOOL_DIR"
SPOOL_MAX_MB = "SDK_TELEMETRY_SPOOL_MAX_MB"
SPOOL_MAX_AGE = "SDK_TELEMETRY_SPOOL_MAX_AGE"
STORE = "SDK_TELEMETRY_STORE"

DEFAULT_TIMEOUT = 5.0
DEFAULT_RETRY_BASE = 0.25
DEFAULT_RETRY_CAP = 4.0
DEFAULT_RETRY_AFTER_MAX = 30.0
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_SPOOL_MAX_MB = 50.0
DEFAULT_SPOOL_MAX_AGE = 48 * 3600.0
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


def read_bool(environ: Mapping[str, str], name: str, instead: str) -> bool | None:
    """Variable `name` as a boolean; a value that is not one is warned about (saying what happens
    `instead`) and read as unset."""
    value = environ.get(name)
    parsed = parse_bool(value)
    if parsed is None and value is not None and value.strip():
        warn(
            f"env:{name}={value}", "%s=%r is not a boolean (1/true/yes/on or 0/false/no/off); %s", name, value, instead
        )
    return parsed


def endpoint_problem(endpoint: str | None) -> str | None:
    """Why `endpoint` cannot be sent to (it is not an http(s) URL with a host), or None when it can."""
    if endpoint is None:
        return None
    try:
        parts = urlsplit(endpoint)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        _ = parts.port  # a port that is not a number raises here
    except ValueError:
        valid = False
    return None if valid else "is not an http(s) URL such as https://telemetry.example.com"


def parse_list(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """The items of a comma list (or of an iterable of strings), stripped, blanks left out."""
    items = value.split(",") if isinstance(value, str) else (value or ())
    return tuple(text for text in (str(item).strip() for item in items) if text)


def parse_headers(value: str | None) -> dict[str, str]:
    """Headers in the `OTEL_EXPORTER_OTLP_HEADERS` form: `key=value,key2=value2`, URL-encoded."""
    headers: dict[str, str] = {}
    for item in parse_list(value):
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            warn(f"header:{item}", "ignoring malformed header %r (expected key=value)", item)
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
        warn(f"env:{name}={value}", "%s=%r is not a positive number; using the default (%s)", name, value, default)
        return default
    return seconds


def default_spool_dir(env: Mapping[str, str]) -> Path:
    """Beside the local store: `<store directory>/spool`, else `$XDG_DATA_HOME/sdk-telemetry/spool`."""
    store = (env.get(STORE) or "").strip()
    if store:
        return Path(store).expanduser().parent / "spool"
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "sdk-telemetry" / "spool"


@dataclass(frozen=True)
class ExporterSettings:
    """Where and how the HTTP exporters send, retry, and spool what they could not send."""

    endpoint: str | None = None
    api_key: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT
    otlp_fallback: bool = True
    #: Attempts per request (the first one included), and the backoff between them.
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    retry_base: float = DEFAULT_RETRY_BASE
    retry_cap: float = DEFAULT_RETRY_CAP
    #: The longest `Retry-After` honoured; a longer one is clamped to this.
    retry_after_max: float = DEFAULT_RETRY_AFTER_MAX
    #: The spool directory (each exporter uses a sub-directory named after it); None turns spooling off.
    spool_dir: Path | None = None
    spool_max_bytes: int = int(DEFAULT_SPOOL_MAX_MB * 1024 * 1024)
    spool_max_age: float = DEFAULT_SPOOL_MAX_AGE

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ExporterSettings:
        """Settings from the environment; never raises."""
        return cls.resolve({}, os.environ if environ is None else environ)

    @classmethod
    def resolve(cls, arguments: Mapping[str, Any], environ: Mapping[str, str]) -> ExporterSettings:
        """From `configure_telemetry()` arguments (already without Nones), then `environ`, then defaults."""
        env = environ
        spool_on = read_bool(env, SPOOL, "spooling stays on") is not False
        spool_dir = (env.get(SPOOL_DIR) or "").strip()
        headers = {**parse_headers(env.get(HEADERS)), **dict(arguments.get("headers") or {})}
        timeout = arguments.get("timeout")
        return cls(
            endpoint=arguments.get("endpoint") or (env.get(ENDPOINT) or "").strip() or None,
            api_key=arguments.get("api_key") or (env.get(API_KEY) or "").strip() or None,
            headers=headers,
            timeout=float(timeout)
            if timeout is not None
            else parse_seconds(env.get(TIMEOUT), DEFAULT_TIMEOUT, TIMEOUT),
            otlp_fallback=read_bool(env, OTLP_FALLBACK, "the OTLP fallback stays on") is not False,
            max_attempts=int(min(100.0, parse_seconds(env.get(MAX_ATTEMPTS), DEFAULT_MAX_ATTEMPTS, MAX_ATTEMPTS))),
            retry_base=parse_seconds(env.get(RETRY_BASE), DEFAULT_RETRY_BASE, RETRY_BASE),
            retry_cap=parse_seconds(env.get(RETRY_CAP), DEFAULT_RETRY_CAP, RETRY_CAP),
            retry_after_max=parse_seconds(env.get(RETRY_AFTER_MAX), DEFAULT_RETRY_AFTER_MAX, RETRY_AFTER_MAX),
            spool_dir=(Path(spool_dir).expanduser() if spool_dir else default_spool_dir(env)) if spool_on else None,
            spool_max_bytes=int(
                min(1e6, parse_seconds(env.get(SPOOL_MAX_MB), DEFAULT_SPOOL_MAX_MB, SPOOL_MAX_MB)) * 1024 * 1024
            ),
            spool_max_age=parse_seconds(env.get(SPOOL_MAX_AGE), DEFAULT_SPOOL_MAX_AGE, SPOOL_MAX_AGE),
        )


def otlp_endpoint_configured(environ: Mapping[str, str] | None = None) -> bool:
    """Whether an OTLP endpoint is set, so that the OTLP fallback has somewhere to send."""
    env = os.environ if environ is None else environ
    return bool((env.get(OTLP_TRACES_ENDPOINT) or env.get(OTLP_ENDPOINT) or "").strip())
