"""Threshold rules, read from a YAML or TOML file and checked whole before anything runs.

    interval: 15s                 # how often the rules are evaluated (default 30s)
    webhook: https://hooks.example.com/telemetry   # default for every rule (optional)
    webhook_timeout: 5s
    rules:
      - name: slow-execute
        function: Tools.execute   # omit for every function together
        metric: p95               # p50 p95 p99 mean max (ms), error_rate, calls, errors, throughput (calls/s)
        above: 500ms              # or `below:`
        window: 5m                # the period each evaluation looks back over
        for: 1m                   # how long the condition must hold before the alert fires (default 0)
        min_calls: 5              # fewer calls in the window means no verdict (default 1)
        severity: warning

A bad file raises `MonitorConfigError`, whose message names the rule and the problem.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from sdk_telemetry.analytics import AnalyticsError, parse_duration

LATENCY_METRICS = ("p50", "p95", "p99", "mean", "max")
METRICS = (*LATENCY_METRICS, "error_rate", "calls", "errors", "throughput")
UNITS = {
    **dict.fromkeys(LATENCY_METRICS, "ms"),
    "error_rate": "",
    "calls": " calls",
    "errors": " errors",
    "throughput": "/s",
}
LABELS = {"error_rate": "error rate"}
SEVERITIES = ("info", "warning", "critical")
RULE_KEYS = frozenset(
    {"name", "description", "function", "service", "metric", "above", "below", "window", "for", "min_calls",
     "severity", "webhook"}
)  # fmt: skip
FILE_KEYS = frozenset({"interval", "webhook", "webhook_timeout", "rules"})
DEFAULT_INTERVAL = 30.0
DEFAULT_WEBHOOK_TIMEOUT = 5.0
_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


class MonitorConfigError(ValueError):
    """A monitors file that cannot be used; the message names the file, the rule and the problem."""


@dataclass(frozen=True)
class Rule:
    """One threshold: `metric` of `function` compared with `threshold` over the last `window` seconds."""

    name: str
    metric: str
    threshold: float
    above: bool = True
    window: float = 300.0
    for_seconds: float = 0.0
    function: str | None = None
    service: str | None = None
    min_calls: int = 1
    severity: str = "warning"
    webhook: str | None = None
    description: str = ""

    def breached(self, value: float) -> bool:
        """Whether `value` is past the threshold."""
        return value > self.threshold if self.above else value < self.threshold

    def describe(self) -> str:
        """The rule in words: `p95 of Tools.execute above 500 ms over 5m`."""
        target = self.function
        if self.metric in ("calls", "errors", "throughput"):
            preposition = {"calls": "to", "errors": "in", "throughput": "of"}[self.metric]
            subject = f"{self.metric} {preposition} {target}" if target else self.metric
            limit = f"{self.threshold:g}{'/s' if self.metric == 'throughput' else ''}"
        else:
            metric = LABELS.get(self.metric, self.metric)
            subject = f"{metric} of {target}" if target else f"{metric} of all calls"
            limit = format_value(self.metric, self.threshold)
        comparison = "above" if self.above else "below"
        return f"{subject} {comparison} {limit} over {_span(self.window)}"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready description."""
        return {
            "name": self.name,
            "description": self.description or self.describe(),
            "function": self.function,
            "service": self.service,
            "metric": self.metric,
            "comparison": "above" if self.above else "below",
            "threshold": self.threshold,
            "window_seconds": self.window,
            "for_seconds": self.for_seconds,
            "min_calls": self.min_calls,
            "severity": self.severity,
        }


@dataclass(frozen=True)
class MonitorConfig:
    """Every rule of a file, and how and where alerts are evaluated and delivered."""

    rules: tuple[Rule, ...] = ()
    interval: float = DEFAULT_INTERVAL
    webhook: str | None = None
    webhook_timeout: float = DEFAULT_WEBHOOK_TIMEOUT
    source: str = "<config>"
    extra: dict[str, Any] = field(default_factory=dict)


def format_value(metric: str, value: float | None) -> str:
    """A metric value with its unit: `512 ms`, `7.5%`, `3.2/s`."""
    if value is None:
        return "no data"
    if metric == "error_rate":
        return f"{value:.1%}"
    if metric in LATENCY_METRICS:
        return f"{value:,.0f} ms" if value >= 100 else f"{value:.3g} ms"
    return f"{value:,.4g}{UNITS.get(metric, '')}"


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _threshold(metric: str, raw: Any) -> float:
    """A threshold in the metric's unit: ms for latencies (`500ms`, `0.5s`, `500`), a share for
    error_rate (`5%` or `0.05`), a number otherwise."""
    if isinstance(raw, bool) or raw is None:
        raise ValueError(f"threshold must be a number, got {raw!r}")
    text = str(raw).strip()
    if metric in LATENCY_METRICS:
        if isinstance(raw, (int, float)):
            return float(raw)
        try:
            return parse_duration(text, "threshold") * 1000
        except AnalyticsError:
            raise ValueError(f"threshold for {metric} must be a latency such as 500ms or 0.5s, got {raw!r}") from None
    if metric == "error_rate":
        if text.endswith("%"):
            value = _number(text[:-1]) / 100
        else:
            value = _number(text)
            if value > 1:
                raise ValueError(f"error_rate threshold {raw!r} is above 1: write 5% or 0.05")
        if not 0 <= value <= 1:
            raise ValueError(f"error_rate threshold must be between 0% and 100%, got {raw!r}")
        return value
    return _number(text)


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"threshold must be a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"threshold must be finite, got {text!r}")
    return value


def _url(value: Any, what: str) -> str:
    text = str(value)
    parsed = urlparse(text)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"{what} must be an http(s) URL, got {value!r}")
    return text


def _rule(raw: Any, default_webhook: str | None) -> Rule:
    if not isinstance(raw, Mapping):
        raise ValueError(f"expected a table of settings, got {type(raw).__name__}")
    unknown = sorted(set(raw) - RULE_KEYS)
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(map(repr, unknown))} (known: {', '.join(sorted(RULE_KEYS))})")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"name must be 1-100 letters, digits or _.:- , got {name!r}")
    metric = raw.get("metric")
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    if ("above" in raw) == ("below" in raw):
        raise ValueError("give exactly one of `above` or `below`")
    above = "above" in raw
    threshold = _threshold(metric, raw["above" if above else "below"])
    try:
        window = parse_duration(raw.get("window", "5m"), "window")
        for_seconds = 0.0 if raw.get("for") in (None, 0, "0", "0s") else parse_duration(raw["for"], "for")
    except AnalyticsError as exc:
        raise ValueError(str(exc)) from None
    min_calls = raw.get("min_calls", 1)
    if isinstance(min_calls, bool) or not isinstance(min_calls, int) or min_calls < 0:
        raise ValueError(f"min_calls must be a whole number ≥ 0, got {min_calls!r}")
    severity = raw.get("severity", "warning")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, got {severity!r}")
    function = raw.get("function")
    if function is not None and (not isinstance(function, str) or not function):
        raise ValueError(f"function must be a function name such as Tools.execute, got {function!r}")
    webhook = _url(raw["webhook"], "webhook") if raw.get("webhook") else default_webhook
    return Rule(
        name=name,
        metric=metric,
        threshold=threshold,
        above=above,
        window=window,
        for_seconds=for_seconds,
        function=function,
        service=raw.get("service"),
        min_calls=min_calls,
        severity=severity,
        webhook=webhook,
        description=str(raw.get("description") or ""),
    )


def parse_config(data: Any, source: str = "<config>") -> MonitorConfig:
    """A `MonitorConfig` from already-decoded YAML or TOML; raises `MonitorConfigError` naming the bad rule."""
    if not isinstance(data, Mapping):
        raise MonitorConfigError(f"{source}: expected a table with `rules`, got {type(data).__name__}")
    unknown = sorted(set(data) - FILE_KEYS)
    if unknown:
        raise MonitorConfigError(f"{source}: unknown setting(s) {', '.join(map(repr, unknown))}")
    try:
        interval = parse_duration(data.get("interval", DEFAULT_INTERVAL), "interval")
        timeout = parse_duration(data.get("webhook_timeout", DEFAULT_WEBHOOK_TIMEOUT), "webhook_timeout")
        webhook = _url(data["webhook"], "webhook") if data.get("webhook") else None
    except (AnalyticsError, ValueError) as exc:
        raise MonitorConfigError(f"{source}: {exc}") from None
    raw_rules = data.get("rules", [])
    if not isinstance(raw_rules, list):
        raise MonitorConfigError(f"{source}: `rules` must be a list of rules")
    rules: list[Rule] = []
    for index, raw in enumerate(raw_rules, start=1):
        label = f"rule {index}" + (f" ({raw['name']!r})" if isinstance(raw, Mapping) and raw.get("name") else "")
        try:
            rule = _rule(raw, webhook)
        except ValueError as exc:
            raise MonitorConfigError(f"{source}: {label}: {exc}") from None
        if any(other.name == rule.name for other in rules):
            raise MonitorConfigError(f"{source}: {label}: the name {rule.name!r} is used by an earlier rule")
        rules.append(rule)
    return MonitorConfig(tuple(rules), interval, webhook, timeout, source)


def load_config(path: str | Path) -> MonitorConfig:
    """Read and check a `.yaml`/`.yml` or `.toml` monitors file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise MonitorConfigError(f"{file}: cannot read the monitors file: {exc.strerror or exc}") from None
    suffix = file.suffix.lower()
    try:
        if suffix == ".toml":
            try:
                toml = importlib.import_module("tomllib")
            except ImportError:  # pragma: no cover - Python 3.10
                raise MonitorConfigError(f"{file}: TOML monitors files need Python 3.11+: write YAML instead") from None
            data: Any = toml.loads(text)
        elif suffix in (".yaml", ".yml"):
            try:
                import yaml  # type: ignore[import-untyped]
            except ImportError:  # pragma: no cover - pyyaml is in the server extra
                raise MonitorConfigError(f"{file}: YAML monitors files need pyyaml (pip install pyyaml)") from None
            data = yaml.safe_load(text)
        else:
            raise MonitorConfigError(f"{file}: expected a .yaml, .yml or .toml file")
    except MonitorConfigError:
        raise
    except Exception as exc:  # the parsers' own errors say where the syntax broke
        raise MonitorConfigError(f"{file}: not valid {suffix.lstrip('.').upper()}: {exc}") from None
    return parse_config(data if data is not None else {}, str(file))
