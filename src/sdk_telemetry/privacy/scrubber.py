"""What may leave the process: scrubbing secrets and truncating long values.

Rules match case-insensitively on keys and in string values (password, secret, token, auth but
not author, credential, private key, api key, session, cookie, csrf, xsrf, jwt, ssn, credit
card, plus configured extras). A value under a matching key, or a structured string value
containing a match, is replaced whole by `[REDACTED:<rule>]`. Free text (error messages, stack
traces, status messages, URLs) keeps its words: only URL query strings and credentials,
`Bearer`/`Basic` credentials, secret `key=value` and `"key": "value"` pairs, JWT-shaped strings,
well-known API key shapes (OpenAI, Anthropic, Stripe, GitHub, Slack, AWS, Google) and
card-number-shaped digits are replaced. An exception's type name before its message
(`AuthenticationError: …`, `pkg.SessionExpired: …`) is not taken for a secret key. Long strings,
deep structures and long collections are cut with a marker. Every replacement is counted.
"""

from __future__ import annotations

import fnmatch
import logging
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sdk_telemetry_exporters import attributes as attr

from sdk_telemetry.privacy.sampling import CANCELLED

if TYPE_CHECKING:
    from sdk_telemetry.privacy.settings import PrivacySettings

_logger = logging.getLogger(__name__)

#: The default rules: name -> pattern, matched case-insensitively on keys and string values.
DEFAULT_RULES: tuple[tuple[str, str], ...] = (
    ("password", r"pass(?:word|wd|phrase)|pwd|(?<![a-z])pass(?![a-z])"),
    ("secret", r"secret"),
    ("token", r"token"),
    ("auth", r"auth(?!or(?:s|ed|ing|ship)?(?![a-z]))"),
    ("credential", r"credential"),
    ("private_key", r"private[-_. ]?key"),
    ("api_key", r"api[-_. ]?key|access[-_. ]?key"),
    ("session", r"session"),
    ("cookie", r"cookie"),
    ("csrf", r"csrf"),
    ("xsrf", r"xsrf"),
    ("jwt", r"jwt"),
    ("ssn", r"(?<![a-z])ssn(?![a-z])|social[-_. ]?security"),
    ("credit_card", r"credit[-_. ]?card|card[-_. ]?num(?:ber)?|(?<![a-z])cv[cv]2?(?![a-z])"),
)
#: Words one of which every default rule's match contains (a fast test before the rules themselves).
_RULE_WORDS = re.compile(
    "pass|pwd|secret|token|auth|credential|private|api|access|session|cookie|csrf|xsrf|jwt|ssn|social|credit|card|cv"
)
#: Kept for callers that test a key against the default rules.
SECRET_KEY = re.compile("|".join(f"(?:{pattern})" for _, pattern in DEFAULT_RULES), re.IGNORECASE)
#: Keys never scrubbed by default: our own session id (the `session` rule would hit it).
DEFAULT_SAFE_KEYS = (attr.SESSION_ID,)
#: Attributes written by sdk-telemetry that hold no user data (types, ids, rates, codes, the
#: already-scrubbed props): never scrubbed, and kept in allow-list and minimal modes when marked.
TRUSTED_ATTRIBUTES = frozenset(
    {
        "code.function.name",
        "exception.type",
        "exception.escaped",
        attr.ERROR_TYPE,
        attr.ERROR_ID,
        attr.ERROR_CODE,
        attr.ERROR_PROPAGATED,
        attr.PROPS,
        attr.SAMPLE_RATE,
        attr.GENERATOR_END,
        attr.STREAM_ITEMS,
        attr.STREAM_FIRST_ITEM_MS,
        CANCELLED,
    }
)
#: Kept whatever the allow-list says, and in minimal mode: outcome, error type, ids, sample rate.
STRUCTURAL_ATTRIBUTES = frozenset({attr.ERROR_TYPE, attr.ERROR_ID, attr.ERROR_PROPAGATED, attr.SAMPLE_RATE, CANCELLED})
#: Attributes holding free text (messages, stack traces, URLs): redacted in place, never replaced whole.
FREE_TEXT_ATTRIBUTES = frozenset(
    {"exception.message", "exception.stacktrace", "http.url", "url.full", "http.target", "url.path", "url.query"}
)

REDACTED = "[REDACTED]"
MAX_STRING = 1024
MAX_TEXT = 8192
MAX_ITEMS = 50
MAX_DEPTH = 4
TRUNCATED = "…[truncated]"
_MARKER = re.compile(r"\[REDACTED(?::[^\]\s]{1,64})?\]")
_KEY_SEPARATOR = re.compile(r"""["']?\s*[:=]\s*\[REDACTED""")
#: A `Name: message` key that names an exception type (`AuthenticationError`, `pkg.SessionExpired`,
#: `TokenError`): the start of an error message or a traceback's last line, not a secret key.
_EXCEPTION_NAME = re.compile(
    r"(?:[A-Za-z_]\w*\.)*[A-Z][A-Za-z0-9]*"
    r"(?:Error|Exception|Expired|Failed|Failure|Invalid|Denied|Refused|Rejected|Warning|Timeout|Required|Missing"
    r"|Exceeded|NotFound|Unavailable)"
)
#: Secrets recognisable by their shape wherever they appear: OpenAI/Anthropic (`sk-…`), Stripe
#: (`sk_live_…`, `rk_test_…`), GitHub (`ghp_…`), Slack (`xoxb-…`), AWS access key ids, Google API keys.
_KEY_SHAPES = re.compile(
    r"(?<![\w-])(?P<s>(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{10,}|sk-(?:[a-z]+-)?[A-Za-z0-9_-]{20,}"
    r"|gh[pousr]_[A-Za-z0-9]{30,}|xox[abprs]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{35})"
)
_KEY_SHAPE_WORDS = re.compile(r"sk[-_]|rk_|gh[pousr]_|xox|akia|aiza")
_SCHEME_THEN_MARKER = re.compile(r"(?:Bearer|Basic|Token|Digest)\s+\[REDACTED", re.IGNORECASE)
_CACHE_LIMIT = 4096
_DIGITS = re.compile(r"\d\d\d\d")
#: The value of a `key=value`, `key: value`, `"key": "value"` or `'key': 'value'` pair.
_VALUE = re.compile(
    r""""(?P<dq>(?:[^"\\\n]|\\.)*)"|'(?P<sq>(?:[^'\\\n]|\\.)*)'|(?P<bare>(?!\[REDACTED)[^\s"',;&)}\]]+)"""
)


@dataclass(frozen=True)
class ScrubMatch:
    """A value about to be scrubbed, as shown to a scrub callback.

    `path` is the key path (an attribute key, or the keys down a structure); `value` is the
    value under a matching key, the whole string that matched, or the secret part of free text;
    `rule` names the rule that matched.
    """

    path: tuple[str, ...]
    value: Any
    rule: str


_Locate = Callable[[re.Match[str]], "tuple[int, int, str] | None"]
#: Returns None to scrub as usual, or the value to use instead (`match.value` keeps it).
ScrubCallback = Callable[[ScrubMatch], Any]

# --- counting -----------------------------------------------------------------------------------

_count_lock = threading.Lock()
_counts: Counter[str] = Counter()


def _count(rule: str, times: int = 1) -> None:
    with _count_lock:
        _counts[rule] += times


def stats() -> dict[str, Any]:
    """Values scrubbed in this process, in total and by rule."""
    with _count_lock:
        by_rule = dict(_counts)
    return {"scrubbed": sum(by_rule.values()), "scrubbed_by_rule": by_rule}


# --- the compiled rules --------------------------------------------------------------------------


def _glob(patterns: Iterable[str]) -> re.Pattern[str] | None:
    """One case-insensitive regex matching any of the glob `patterns` (None when there are none)."""
    parts = [fnmatch.translate(pattern.lower()) for pattern in patterns]
    return re.compile("|".join(parts), re.IGNORECASE) if parts else None


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        number = int(char)
        if index % 2:
            number *= 2
            if number > 9:
                number -= 9
        total += number
    return total % 10 == 0


class Scrubber:
    """`PrivacySettings` compiled: the rules as regular expressions, the key lists as matchers."""

    def __init__(self, settings: PrivacySettings) -> None:
        self.settings = settings
        self.enabled = settings.scrubbing
        self.max_string = settings.max_string_length
        self.callback = settings.callback
        rules = DEFAULT_RULES + settings.patterns
        self._rule_names = [name for name, _ in rules]
        self._keys = re.compile(
            "|".join(f"(?P<_r{index}>{pattern})" for index, (_, pattern) in enumerate(rules)), re.IGNORECASE
        )
        self._extra = (
            re.compile("|".join(f"(?P<_x{i}>{p})" for i, (_, p) in enumerate(settings.patterns)), re.IGNORECASE)
            if settings.patterns
            else None
        )
        self._safe = _glob(settings.safe_keys)
        self._excluded = _glob(settings.excluded_fields)
        self._allowed = _glob(settings.allowed_attributes) if settings.allowed_attributes is not None else None
        self.allow_list = settings.allowed_attributes is not None
        # Free-text rules: (a cheap test on the lower-cased text that must pass, the regex, a function
        # from a match to the span of the secret and its rule name, or None to leave the match alone).
        self._text_rules: list[tuple[Callable[[str], bool], re.Pattern[str], _Locate]] = [
            (
                lambda low: "://" in low and "@" in low,
                re.compile(r"\b[a-z][a-z0-9+.-]*://(?P<s>[^\s/?#@\"'<>:]*:[^\s/?#@\"'<>]*)@", re.IGNORECASE),
                lambda m: (m.start("s"), m.end("s"), "url_credentials"),
            ),
            (
                lambda low: "://" in low and "?" in low,
                re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s?#\"'<>]*\?(?P<s>[^\s#\"'<>]+)", re.IGNORECASE),
                lambda m: (m.start("s"), m.end("s"), "url_query"),
            ),
            (
                lambda low: "bearer" in low or "basic" in low or "token" in low or "digest" in low,
                re.compile(
                    r"\b(?P<k>Bearer|Basic)\s+(?P<s>(?!\[REDACTED)[A-Za-z0-9._~+/=-]+)"
                    r"|\b(?P<k2>Token|Digest)\s+(?P<s2>[A-Za-z0-9._~+/=-]{16,})",
                    re.IGNORECASE,
                ),
                self._auth_scheme,
            ),
            (
                lambda low: "=" in low or ":" in low,
                re.compile(
                    # A key is a whole run of [\w.-] (matching starts only where such a run starts, which keeps
                    # the cost linear); `_key_value` keeps the pairs whose key holds a rule's word.
                    r"""(?<![\w.-])["']?(?P<k>[\w.-]++)["']?\s*[:=]\s*"""
                ),
                self._key_value,
            ),
            (
                _KEY_SHAPE_WORDS.search,  # type: ignore[list-item]
                _KEY_SHAPES,
                lambda m: (m.start("s"), m.end("s"), "api_key"),
            ),
            (
                lambda low: "eyj" in low,
                re.compile(r"(?<![\w-])(?P<s>eyJ[\w-]{2,}\.[\w-]{2,}\.[\w-]*)"),
                lambda m: (m.start("s"), m.end("s"), "jwt"),
            ),
            (
                _DIGITS.search,  # type: ignore[list-item]
                re.compile(r"(?<![\w.])(?P<s>[2-6](?:[ -]?\d){12,18})(?![\w])"),
                self._card,
            ),
        ]
        self._key_text_rules = len(self._text_rules)
        if self._extra is not None:
            self._text_rules.append((lambda low: True, self._extra, self._extra_match))
        self._key_cache: dict[str, tuple[str | None]] = {}
        self._clean: dict[str, None] = {}

    # --- rule helpers --------------------------------------------------------------------------

    def _search(self, text: str) -> re.Match[str] | None:
        """The first match of any rule in `text`; a cheap test of literal words runs first."""
        if self._extra is None and _RULE_WORDS.search(text.lower()) is None:
            return None
        return self._keys.search(text)

    def _rule_of(self, match: re.Match[str]) -> str:
        group = match.lastgroup or "_r0"
        return self._rule_names[int(group[2:])] if group.startswith("_r") else "custom"

    def key_rule(self, key: str) -> str | None:
        """The rule a key matches, if any (safe keys match none)."""
        if not self.enabled or self.is_safe(key):
            return None
        match = self._search(key)
        return self._rule_of(match) if match else None

    def is_safe(self, key: str, path: str | None = None) -> bool:
        return self._safe is not None and (
            self._safe.match(key) is not None or (path is not None and self._safe.match(path) is not None)
        )

    def is_excluded(self, path: str) -> bool:
        return self._excluded is not None and self._excluded.match(path) is not None

    def is_allowed(self, key: str) -> bool:
        """In allow-list mode, whether attribute `key` may leave (structural attributes always may)."""
        if not self.allow_list or key in STRUCTURAL_ATTRIBUTES:
            return True
        return self._allowed is not None and self._allowed.match(key) is not None

    def _auth_scheme(self, match: re.Match[str]) -> tuple[int, int, str] | None:
        if match.group("s") is not None:
            return match.start("s"), match.end("s"), match.group("k").lower()
        return match.start("s2"), match.end("s2"), match.group("k2").lower()

    def _key_value(self, match: re.Match[str]) -> tuple[int, int, str] | None:
        key = match.group("k")
        if match.group(0).rstrip().endswith(":") and _EXCEPTION_NAME.fullmatch(key):
            return None  # `AuthenticationError: request for user 42 rejected`: a type name and its message
        found = self._search(key)
        if found is None or self.is_safe(key):
            return None
        rule = self._rule_of(found)
        value = _VALUE.match(match.string, match.end())
        if value is None:
            return None
        for group in ("dq", "sq", "bare"):
            if value.group(group) is not None:
                if _MARKER.fullmatch(value.group(group)):
                    return None
                if group == "bare" and _SCHEME_THEN_MARKER.match(match.string, value.start(group)):
                    return None  # `Authorization: Bearer [REDACTED:bearer]`: the scheme word stays
                return value.start(group), value.end(group), rule
        return None

    def _card(self, match: re.Match[str]) -> tuple[int, int, str] | None:
        digits = re.sub(r"[ -]", "", match.group("s"))
        if 13 <= len(digits) <= 19 and _luhn(digits):
            return match.start("s"), match.end("s"), "credit_card"
        return None

    def _extra_match(self, match: re.Match[str]) -> tuple[int, int, str] | None:
        group = match.lastgroup or "_x0"
        if _MARKER.fullmatch(match.group(0)) or _KEY_SEPARATOR.match(match.string, match.end()):
            return None  # a marker already, or the key of a `key=value` pair (its value is redacted)
        return match.start(), match.end(), self.settings.patterns[int(group[2:])][0]

    def _replace(self, path: tuple[str, ...], value: Any, rule: str) -> Any:
        """The replacement for `value`: the callback's choice, else `[REDACTED:<rule>]`; counted when changed."""
        if self.callback is not None:
            try:
                chosen = self.callback(ScrubMatch(path, value, rule))
            except Exception:
                _logger.warning("sdk-telemetry: scrub callback failed; value redacted", exc_info=True)
                chosen = None
            if chosen is not None:
                if chosen is not value and chosen != value:
                    _count(rule)
                return chosen
        _count(rule)
        return f"[REDACTED:{rule}]"

    # --- free text -----------------------------------------------------------------------------

    def text(self, text: str, path: tuple[str, ...], limit: int = MAX_TEXT, key: bool = False) -> str:
        """Free text with its secret parts replaced (words kept), cut at `limit` characters.

        In a `key`, the extra patterns are not replaced: there they mark the value instead.
        """
        if text in self._clean:  # an output of this method (a message, then its span's copy of it)
            return text
        cut = len(text) > limit
        if cut:
            text = text[:limit]
        if self.enabled:
            rules = self._text_rules[: self._key_text_rules] if key else self._text_rules
            low = text.lower()
            for applies, pattern, locate in rules:
                if applies(low):
                    text = self._sub(pattern, locate, text, path)
        result = text + TRUNCATED if cut else text
        if len(result) >= 128 and not key:
            if len(self._clean) >= 64:
                self._clean.clear()
            self._clean[result] = None
        return result

    def _sub(
        self,
        pattern: re.Pattern[str],
        locate: Callable[[re.Match[str]], tuple[int, int, str] | None],
        text: str,
        path: tuple[str, ...],
    ) -> str:
        parts: list[str] = []
        position = 0
        markers = [m.span() for m in _MARKER.finditer(text)] if "[REDACTED" in text else []
        for match in pattern.finditer(text):
            found = locate(match)
            if found is None:
                continue
            start, end, rule = found
            if start < position or any(start < m_end and m_start < end for m_start, m_end in markers):
                continue  # overlaps what was replaced, or an earlier replacement's marker
            parts.append(text[position:start])
            parts.append(str(self._replace(path, text[start:end], rule)))
            position = end
        if not parts:
            return text
        parts.append(text[position:])
        return "".join(parts)

    # --- structured values ---------------------------------------------------------------------

    def string(self, value: str, path: tuple[str, ...]) -> Any:
        """A structured string value: replaced whole when it contains a rule's word, else redacted as text."""
        cut = len(value) > self.max_string
        if cut:
            value = value[: self.max_string]
        if self.enabled and not _MARKER.fullmatch(value):
            match = self._search(value)
            if match is not None:
                return self._replace(path, value, self._rule_of(match))
            value = self.text(value, path, limit=self.max_string)
        return value + TRUNCATED if cut else value

    def structure(self, value: Any, path: tuple[str, ...] = (), depth: int = 0, scrub: bool = True) -> Any:
        """A JSON-ready copy of `value`: excluded fields left out, secrets replaced, everything truncated."""
        if value is None or isinstance(value, (bool, float)):
            return value
        if isinstance(value, int):
            return value if -(2**63) <= value < 2**64 else str(value)  # JSON encoders take 64-bit integers
        if isinstance(value, str):
            if not scrub:
                return value[: self.max_string] + TRUNCATED if len(value) > self.max_string else value
            return self.string(value, path)
        if depth >= MAX_DEPTH:
            return TRUNCATED
        if isinstance(value, Mapping):
            result: dict[str, Any] = {}
            for index, (key, item) in enumerate(value.items()):
                if index >= MAX_ITEMS:
                    result[TRUNCATED] = len(value) - MAX_ITEMS
                    break
                name = str(key)
                child = (*path, name)
                dotted = ".".join(child)
                if self.is_excluded(dotted):
                    continue
                if not scrub or self.is_safe(name, dotted):
                    result[name] = self.structure(item, child, depth + 1, scrub=False)
                    continue
                rule = self.key_rule(name)
                if self.enabled:
                    name = self.text(name, child, limit=self.max_string, key=True)
                if rule is not None:
                    result[name] = self._replace(child, item, rule)
                else:
                    result[name] = self.structure(item, child, depth + 1)
            return result
        if isinstance(value, (list, tuple, set, frozenset)):
            items = [self.structure(item, path, depth + 1, scrub) for item in list(value)[:MAX_ITEMS]]
            if len(value) > MAX_ITEMS:
                items.append(f"{TRUNCATED} {len(value) - MAX_ITEMS} more")
            return items
        described = f"<{type(value).__name__}>" if _is_opaque(value) else _safe_repr(value)
        return self.structure(described, path, depth, scrub)

    # --- span attributes -----------------------------------------------------------------------

    def attributes(self, attributes: Mapping[str, Any]) -> dict[str, Any] | None:
        """Span or event attributes made safe to export, or None when nothing had to change."""
        result: dict[str, Any] = {}
        changed = False
        for key, value in attributes.items():
            new = self._attribute(key, value)
            if new is None:
                changed = True
                continue
            new_key, new_value = new
            if new_key != key or new_value is not value:
                changed = True
            result[new_key] = new_value
        return result if changed else None

    def _attribute(self, key: str, value: Any) -> tuple[str, Any] | None:
        """`(key, value)` to export, or None to drop the attribute."""
        if self.is_excluded(key) or not self.is_allowed(key):
            return None
        if key in TRUSTED_ATTRIBUTES:
            return key, value
        new_key, rule = self._key(key)
        path = (key,)
        if rule is not None:
            return new_key, self._replace(path, value, rule)
        if isinstance(value, (list, tuple)):
            items = [self._attribute_value(key, item, path) for item in value]
            same = all(a is b for a, b in zip(items, value, strict=True))
            return new_key, value if same else type(value)(items)
        return new_key, self._attribute_value(key, value, path)

    def _attribute_value(self, key: str, value: Any, path: tuple[str, ...]) -> Any:
        """One attribute value (or item of one) made safe; the same object when nothing changed."""
        if isinstance(value, str):
            return self._attribute_string(key, value, path)
        if isinstance(value, Mapping):  # the SDK accepts maps (AnyValue) as attribute values
            return self.structure(value, path, 1, scrub=not self.is_safe(key))
        if isinstance(value, bytes):
            try:
                text = value.decode()
            except UnicodeDecodeError:
                return value
            safe = self._attribute_string(key, text, path)
            return value if safe is text else safe
        return value

    def _attribute_string(self, key: str, value: str, path: tuple[str, ...]) -> Any:
        if key in FREE_TEXT_ATTRIBUTES:
            result = self.text(value, path, limit=MAX_TEXT)
        elif self.is_safe(key):
            return value if len(value) <= self.max_string else value[: self.max_string] + TRUNCATED
        else:
            result = self.string(value, path)
        return value if result == value else result

    def _key(self, key: str) -> tuple[str, str | None]:
        """An attribute key with secrets in it redacted, and the rule its value must be replaced by.

        Keys that need no redaction (nearly all) are cached; the others are redacted, and counted, each time.
        """
        cached = self._key_cache.get(key)
        if cached is not None:
            return key, cached[0]
        rule = self.key_rule(key)
        new_key = key if (not self.enabled or self.is_safe(key)) else self.text(key, (key,), self.max_string, key=True)
        if new_key == key:
            if len(self._key_cache) >= _CACHE_LIMIT:
                self._key_cache.clear()
            self._key_cache[key] = (rule,)
        return new_key, rule


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<{type(value).__name__}>"


def _is_opaque(value: Any) -> bool:
    """Objects whose repr may hold anything (clients, files, sessions): recorded by type only."""
    return getattr(type(value), "__repr__", None) is getattr(object, "__repr__", None)
