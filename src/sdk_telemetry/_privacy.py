"""What may leave the process: scrubbing secrets and truncating long values.

Call arguments are only captured when asked for; when they are, secret-looking keys are
replaced and long values are cut, with a marker, before they are attached to a span.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from typing_extensions import TypedDict

SECRET_KEY = re.compile(
    r"pass(word|wd)?|secret|token|api[-_ ]?key|apikey|authori[sz]ation|auth(?!or)|credential|private[-_ ]?key|"
    r"cookie|session|csrf|xsrf|jwt|ssn|credit[-_ ]?card",
    re.IGNORECASE,
)
REDACTED = "[REDACTED]"
MAX_STRING = 1024
MAX_ITEMS = 50
MAX_DEPTH = 4
TRUNCATED = "…[truncated]"

# Free-text patterns: URL query strings, Bearer/Basic credentials, secret key=value pairs.
_TEXT_RULES = (
    (re.compile(r"(https?://[^\s?#]+)\?[^\s#]*"), r"\1?[REDACTED]"),
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE), r"\1 [REDACTED]"),
    (
        re.compile(
            # The key is a whole run of [\w.-] holding a secret word; matching starts only where such a
            # run starts and looks ahead for the word, which keeps the cost linear in the text.
            r"""(?<![\w.-])(["']?(?=[\w.-]*?(?:pass(?:word|wd)?|secret|token|api[-_]?key|authori[sz]ation|"""
            r"""auth(?!or)|credential))[\w.-]*["']?\s*[:=]\s*)(["']?)[^\s"',;&]+\2""",
            re.IGNORECASE,
        ),
        r"\1\2[REDACTED]\2",
    ),
)


def redact_text(text: str) -> str:
    """`text` with credentials in URLs, auth headers and secret `key=value` pairs replaced."""
    for pattern, replacement in _TEXT_RULES:
        text = pattern.sub(replacement, text)
    return text


def sanitize(value: Any, depth: int = 0) -> Any:
    """A JSON-ready copy of `value`: secret keys replaced, strings and collections truncated."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        if len(value) <= MAX_STRING:
            return redact_text(value)
        return redact_text(value[:MAX_STRING]) + TRUNCATED
    if depth >= MAX_DEPTH:
        return TRUNCATED
    if isinstance(value, Mapping):
        result: dict[str, Any] = {}
        for index, (key, item) in enumerate(value.items()):
            if index >= MAX_ITEMS:
                result[TRUNCATED] = len(value) - MAX_ITEMS
                break
            name = str(key)
            result[name] = REDACTED if SECRET_KEY.search(name) else sanitize(item, depth + 1)
        return result
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [sanitize(item, depth + 1) for item in list(value)[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            items.append(f"{TRUNCATED} {len(value) - MAX_ITEMS} more")
        return items
    return sanitize(f"<{type(value).__name__}>" if _is_opaque(value) else repr(value), depth)


def _is_opaque(value: Any) -> bool:
    """Objects whose repr may hold anything (clients, files, sessions): recorded by type only."""
    return getattr(type(value), "__repr__", None) is getattr(object, "__repr__", None)


class PrivacyArguments(TypedDict, total=False):
    """`configure_telemetry()` arguments about privacy and sampling."""


@dataclass(frozen=True)
class PrivacySettings:
    """What may leave the process, and how much of it."""

    @classmethod
    def resolve(cls, arguments: Mapping[str, Any], environ: Mapping[str, str]) -> PrivacySettings:
        """From `configure_telemetry()` arguments (already without Nones), then `environ`, then defaults."""
        return cls()
