"""Sampling of successful invocations: a rate overall and per function, decided when a call ends.

Failed and cancelled calls are always kept. A kept span sampled at a rate below 1 carries the
rate as `sdk_telemetry.sample_rate`, so that stored counts can be scaled back by 1 / rate.
"""

from __future__ import annotations

import fnmatch
import logging
import math
import random
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode
from sdk_telemetry_exporters.config import parse_list
from typing_extensions import TypedDict

_logger = logging.getLogger(__name__)

SAMPLE_RATE = "SDK_TELEMETRY_SAMPLE_RATE"
SAMPLE_RATES = "SDK_TELEMETRY_SAMPLE_RATES"
#: Span attribute set when a call was cancelled (KeyboardInterrupt, CancelledError, ...).
CANCELLED = "sdk_telemetry.cancelled"

_lock = threading.Lock()
_sampled_out = 0


class SamplingArguments(TypedDict, total=False):
    """`configure_telemetry()` arguments about sampling."""

    sample_rate: float | None
    sample_rates: Mapping[str, float] | None


def _rate(value: Any, name: str) -> float:
    """`value` as a rate in [0, 1]; `ValueError` naming `name` otherwise."""
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number between 0 and 1, not {value!r}") from None
    if not math.isfinite(rate) or not 0.0 <= rate <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, not {value!r}")
    return rate


def _rates_from_env(value: str) -> tuple[tuple[str, float], ...]:
    """`Name=rate,Glob.*=rate` from the environment; malformed items are logged and skipped."""
    rates: list[tuple[str, float]] = []
    for item in parse_list(value):
        pattern, sep, rate = item.rpartition("=")
        try:
            if not sep or not pattern.strip():
                raise ValueError("expected Function=rate")
            rates.append((pattern.strip(), _rate(rate.strip(), f"{SAMPLE_RATES} item {item!r}")))
        except ValueError as exc:
            _logger.warning("sdk-telemetry: ignoring %s item %r: %s", SAMPLE_RATES, item, exc)
    return tuple(rates)


@dataclass(frozen=True)
class SamplingSettings:
    """The rate at which successful invocations are kept: overall, and per function name or glob."""

    rate: float = 1.0
    rates: tuple[tuple[str, float], ...] = ()

    @classmethod
    def resolve(cls, arguments: Mapping[str, Any], environ: Mapping[str, str]) -> SamplingSettings:
        """From `configure_telemetry()` arguments (a bad one raises `ValueError`), then `environ`
        (a bad value is logged and ignored), then defaults (keep everything)."""
        if "sample_rate" in arguments:
            rate = _rate(arguments["sample_rate"], "sample_rate")
        else:
            rate = 1.0
            text = (environ.get(SAMPLE_RATE) or "").strip()
            if text:
                try:
                    rate = _rate(text, SAMPLE_RATE)
                except ValueError as exc:
                    _logger.warning("sdk-telemetry: %s; keeping every call", exc)
        if "sample_rates" in arguments:
            given = arguments["sample_rates"]
            if not isinstance(given, Mapping):
                raise TypeError(f"sample_rates must be a mapping of function name (or glob) to rate, not {given!r}")
            rates = tuple((str(name), _rate(value, f"sample_rates[{name!r}]")) for name, value in given.items())
        else:
            rates = _rates_from_env(environ.get(SAMPLE_RATES) or "")
        return cls(rate=rate, rates=rates)

    @cached_property
    def _exact(self) -> dict[str, float]:
        return {name: rate for name, rate in self.rates if not _is_glob(name)}

    @cached_property
    def _globs(self) -> tuple[tuple[re.Pattern[str], float], ...]:
        return tuple((re.compile(fnmatch.translate(name)), rate) for name, rate in self.rates if _is_glob(name))

    @cached_property
    def _cache(self) -> dict[str, float]:
        return {}

    @cached_property
    def active(self) -> bool:
        """False when every call is kept (the default); computed once, it is asked for every span."""
        return self.rate < 1.0 or any(rate < 1.0 for _, rate in self.rates)

    def rate_for(self, function: str) -> float:
        """The rate for `function`: an exact name first, then the first matching glob, then the overall rate."""
        cache = self._cache
        rate = cache.get(function)
        if rate is None:
            rate = self._exact.get(function)
            if rate is None:
                rate = next((r for pattern, r in self._globs if pattern.fullmatch(function)), self.rate)
            if len(cache) >= 4096:
                cache.clear()
            cache[function] = rate
        return rate


def _is_glob(name: str) -> bool:
    return any(char in name for char in "*?[")


def decide(span: ReadableSpan, settings: SamplingSettings) -> float | None:
    """The rate a finished invocation span is kept at, or None to drop it (errors are always kept)."""
    if not settings.active:
        return 1.0
    if span.status.status_code is StatusCode.ERROR or (span.attributes or {}).get(CANCELLED):
        return 1.0
    rate = settings.rate_for(span.name)
    if rate >= 1.0:
        return 1.0
    if rate > 0.0 and random.random() < rate:
        return rate
    global _sampled_out
    with _lock:
        _sampled_out += 1
    return None


def stats() -> dict[str, int]:
    """Successful invocations dropped by sampling in this process."""
    return {"sampled_out": _sampled_out}
