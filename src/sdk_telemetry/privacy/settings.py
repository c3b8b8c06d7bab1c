"""The privacy settings: what may leave the process and how much of it, resolved from
`configure_telemetry()` arguments, then the environment (as passed in), then defaults."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sdk_telemetry_exporters.config import parse_bool, parse_list

from sdk_telemetry.privacy.sampling import SamplingArguments, SamplingSettings
from sdk_telemetry.privacy.scrubber import DEFAULT_SAFE_KEYS, MAX_STRING, Scrubber, ScrubCallback

_logger = logging.getLogger(__name__)

ENV_SCRUBBING = "SDK_TELEMETRY_SCRUBBING"
ENV_PATTERNS = "SDK_TELEMETRY_SCRUB_PATTERNS"
ENV_SAFE_KEYS = "SDK_TELEMETRY_SCRUB_SAFE_KEYS"
ENV_EXCLUDED = "SDK_TELEMETRY_EXCLUDED_FIELDS"
ENV_ALLOWED = "SDK_TELEMETRY_ALLOWED_ATTRIBUTES"
ENV_MINIMAL = "SDK_TELEMETRY_MINIMAL_DATA"
ENV_MAX_STRING = "SDK_TELEMETRY_MAX_STRING_LENGTH"
ENV_CONSENT = "SDK_TELEMETRY_CONSENT_REQUIRED"


class PrivacyArguments(SamplingArguments, total=False):
    """`configure_telemetry()` arguments about privacy, sampling and consent."""

    scrubbing: bool | None
    scrub_patterns: Sequence[str] | Mapping[str, str] | None
    scrub_safe_keys: Sequence[str] | None
    scrub_callback: ScrubCallback | None
    excluded_fields: Sequence[str] | None
    allowed_attributes: Sequence[str] | None
    minimal_data: bool | None
    max_string_length: int | None
    consent_required: bool | None


def _patterns(arguments: Mapping[str, Any], environ: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """Extra rules: from the argument (a bad regex raises `ValueError`), else the environment (a
    bad regex is logged and matched literally, so that it still scrubs)."""
    if "scrub_patterns" in arguments:
        given = arguments["scrub_patterns"]
        pairs = list(given.items()) if isinstance(given, Mapping) else [(p, p) for p in parse_list(given)]
        for _, pattern in pairs:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"scrub_patterns: {pattern!r} is not a regular expression ({exc})") from None
        return tuple((str(name), str(pattern)) for name, pattern in pairs)
    rules = []
    for pattern in parse_list(environ.get(ENV_PATTERNS)):
        try:
            re.compile(pattern)
            rules.append((pattern, pattern))
        except re.error as exc:
            _logger.warning(
                "sdk-telemetry: %s: %r is not a regular expression (%s); matched literally", ENV_PATTERNS, pattern, exc
            )
            rules.append((pattern, re.escape(pattern)))
    return tuple(rules)


def _flag(arguments: Mapping[str, Any], name: str, environ: Mapping[str, str], variable: str, default: bool) -> bool:
    if name in arguments:
        return bool(arguments[name])
    parsed = parse_bool(environ.get(variable))
    return default if parsed is None else parsed


@dataclass(frozen=True)
class PrivacySettings:
    """What may leave the process, and how much of it."""

    scrubbing: bool = True
    patterns: tuple[tuple[str, str], ...] = ()
    safe_keys: tuple[str, ...] = DEFAULT_SAFE_KEYS
    callback: ScrubCallback | None = None
    excluded_fields: tuple[str, ...] = ()
    allowed_attributes: tuple[str, ...] | None = None
    minimal: bool = False
    max_string_length: int = MAX_STRING
    consent_required: bool = False
    sampling: SamplingSettings = field(default_factory=SamplingSettings)

    @classmethod
    def resolve(cls, arguments: Mapping[str, Any], environ: Mapping[str, str]) -> PrivacySettings:
        """From `configure_telemetry()` arguments (already without Nones), then `environ`, then defaults."""
        callback = arguments.get("scrub_callback")
        if callback is not None and not callable(callback):
            raise TypeError(f"scrub_callback must be callable, not {callback!r}")
        if "max_string_length" in arguments:
            length = arguments["max_string_length"]
            if isinstance(length, bool) or not isinstance(length, int) or length < 16:
                raise ValueError(f"max_string_length must be an integer of at least 16, not {length!r}")
        else:
            length = MAX_STRING
            text = (environ.get(ENV_MAX_STRING) or "").strip()
            if text:
                try:
                    length = int(text)
                    if length < 16:
                        raise ValueError
                except ValueError:
                    _logger.warning(
                        "sdk-telemetry: %s=%r is not an integer >= 16; using %d", ENV_MAX_STRING, text, MAX_STRING
                    )
                    length = MAX_STRING
        allowed: tuple[str, ...] | None
        if "allowed_attributes" in arguments:
            allowed = parse_list(arguments["allowed_attributes"])
        else:
            allowed = parse_list(environ.get(ENV_ALLOWED)) if (environ.get(ENV_ALLOWED) or "").strip() else None
        safe = arguments["scrub_safe_keys"] if "scrub_safe_keys" in arguments else environ.get(ENV_SAFE_KEYS)
        excluded = arguments["excluded_fields"] if "excluded_fields" in arguments else environ.get(ENV_EXCLUDED)
        return cls(
            scrubbing=_flag(arguments, "scrubbing", environ, ENV_SCRUBBING, True),
            patterns=_patterns(arguments, environ),
            safe_keys=tuple(dict.fromkeys(DEFAULT_SAFE_KEYS + parse_list(safe))),
            callback=callback,
            excluded_fields=parse_list(excluded),
            allowed_attributes=allowed,
            minimal=_flag(arguments, "minimal_data", environ, ENV_MINIMAL, False),
            max_string_length=length,
            consent_required=_flag(arguments, "consent_required", environ, ENV_CONSENT, False),
            sampling=SamplingSettings.resolve(arguments, environ),
        )

    @cached_property
    def scrubber(self) -> Scrubber:
        """These settings compiled."""
        return Scrubber(self)
