"""Alert states and their evaluation: once per episode, from `ok` through `pending` to `firing`, then `resolved`.

- `ok`: the condition is false (or there is not enough data to judge);
- `pending`: the condition is true, but has not held for the rule's `for` yet;
- `firing`: it has held long enough; one `firing` notification is sent when the episode starts;
- `resolved`: it cleared after firing; one `resolved` notification is sent. A new breach starts a
  new episode (`pending` again).

Notifications go to the log and, when the rule has one, to a webhook (POST JSON with a timeout,
one attempt: a failed delivery is logged and counted, never retried into a duplicate).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sdk_telemetry_exporters import HttpTransport

from sdk_telemetry.analytics import NS, Location, TimeRange, summary
from sdk_telemetry.monitors.rules import LATENCY_METRICS, MonitorConfig, Rule, format_value
from sdk_telemetry.store import iso

_logger = logging.getLogger("sdk_telemetry.monitors")
OK, PENDING, FIRING, RESOLVED = "ok", "pending", "firing", "resolved"
_WEBHOOK_HEADERS = {"Content-Type": "application/json", "User-Agent": "sdk-telemetry-monitors"}


@dataclass
class AlertState:
    """Where one rule stands."""

    rule: Rule
    state: str = OK
    value: float | None = None
    calls: float = 0.0
    since: float | None = None  # when the current state began (epoch seconds)
    breach_started: float | None = None
    episodes: int = 0
    last_evaluated: float | None = None
    last_fired: float | None = None
    last_resolved: float | None = None
    deliveries: int = 0
    delivery_failures: int = 0
    last_delivery_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""

        def at(moment: float | None) -> str | None:
            return iso(int(moment * NS)) if moment is not None else None

        return {
            "name": self.rule.name,
            "state": self.state,
            "value": self.value,
            "value_text": format_value(self.rule.metric, self.value),
            "calls": self.calls,
            "since": at(self.since),
            "episodes": self.episodes,
            "last_evaluated": at(self.last_evaluated),
            "last_fired": at(self.last_fired),
            "last_resolved": at(self.last_resolved),
            "deliveries": self.deliveries,
            "delivery_failures": self.delivery_failures,
            "last_delivery_error": self.last_delivery_error,
            "rule": self.rule.as_dict(),
        }


@dataclass(frozen=True)
class Notification:
    """One alert event to deliver."""

    rule: Rule
    status: str  # firing or resolved
    value: float | None
    at: float
    episode: int
    message: str

    def payload(self) -> dict[str, Any]:
        """The JSON body POSTed to the webhook."""
        return {
            "alert": self.rule.name,
            "status": self.status,
            "severity": self.rule.severity,
            "message": self.message,
            "metric": self.rule.metric,
            "function": self.rule.function,
            "value": self.value,
            "threshold": self.rule.threshold,
            "comparison": "above" if self.rule.above else "below",
            "window_seconds": self.rule.window,
            "episode": self.episode,
            "at": iso(int(self.at * NS)),
            "rule": self.rule.as_dict(),
        }


def _value(rule: Rule, figures: dict[str, Any], window: float) -> float | None:
    if rule.metric in LATENCY_METRICS:
        value = figures.get(f"{rule.metric}_ms")
        return None if value is None else float(value)
    if rule.metric == "throughput":
        return float(figures["calls"]) / window
    return float(figures[rule.metric])


@dataclass
class Evaluator:
    """Evaluates every rule of a `MonitorConfig` against a store and delivers what changed."""

    config: MonitorConfig
    store_path: Path | Location  # the store file, or ClickHouse
    post: Callable[[str, dict[str, Any], float], None] | None = None
    states: dict[str, AlertState] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._transport: HttpTransport | None = None
        self.states = {rule.name: AlertState(rule) for rule in self.config.rules}

    def evaluate(self, now: float | None = None) -> list[Notification]:
        """Evaluate every rule at `now` (default: the clock), deliver what fired or resolved, and return it."""
        moment = time.time() if now is None else now
        notifications: list[Notification] = []
        store = Location.of(self.store_path)
        if not self.config.rules or not store.exists():
            return notifications
        with store.open() as source:
            for rule in self.config.rules:
                window = TimeRange(int((moment - rule.window) * NS), int(moment * NS))
                figures = summary(source, rule.function, window, rule.service)
                with self._lock:
                    notification = self._step(self.states[rule.name], figures, moment)
                if notification:
                    notifications.append(notification)
        for notification in notifications:
            self.deliver(notification)
        return notifications

    def _step(self, alert: AlertState, figures: dict[str, Any], now: float) -> Notification | None:
        rule = alert.rule
        calls = float(figures.get("calls") or 0.0)
        value = _value(rule, figures, rule.window) if figures.get("stored_calls", 0) >= rule.min_calls else None
        if value is None and rule.metric in ("calls", "throughput") and rule.min_calls == 0:
            value = 0.0
        alert.value, alert.calls, alert.last_evaluated = value, calls, now
        breached = value is not None and rule.breached(value)
        if breached:
            if alert.state in (OK, RESOLVED):
                alert.state, alert.since, alert.breach_started = PENDING, now, now
            if alert.state == PENDING and now - (alert.breach_started or now) >= rule.for_seconds:
                alert.state, alert.since, alert.last_fired = FIRING, now, now
                alert.episodes += 1
                return Notification(rule, FIRING, value, now, alert.episodes, self._message(rule, value, FIRING))
            return None
        if alert.state == FIRING:
            alert.state, alert.since, alert.last_resolved, alert.breach_started = RESOLVED, now, now, None
            return Notification(rule, RESOLVED, value, now, alert.episodes, self._message(rule, value, RESOLVED))
        if alert.state == PENDING:
            alert.state, alert.since, alert.breach_started = OK, now, None
        return None

    @staticmethod
    def _message(rule: Rule, value: float | None, status: str) -> str:
        shown = format_value(rule.metric, value)
        if status == FIRING:
            return f"[{rule.severity}] {rule.name} firing: {rule.describe()} (now {shown})"
        return f"[{rule.severity}] {rule.name} resolved: {rule.describe()} no longer holds (now {shown})"

    def deliver(self, notification: Notification) -> None:
        """Log the notification and POST it to the rule's webhook; failures are logged and counted."""
        log = _logger.warning if notification.status == FIRING else _logger.info
        log("sdk-telemetry alert: %s", notification.message)
        url = notification.rule.webhook
        if not url:
            return
        alert = self.states[notification.rule.name]
        try:
            (self.post or self._post)(url, notification.payload(), self.config.webhook_timeout)
        except Exception as exc:
            with self._lock:
                alert.delivery_failures += 1
                alert.last_delivery_error = f"{type(exc).__name__}: {exc}"
            _logger.warning("sdk-telemetry alert %s: webhook delivery failed: %s", notification.rule.name, exc)
            return
        with self._lock:
            alert.deliveries += 1

    def snapshot(self) -> list[dict[str, Any]]:
        """The current state of every rule."""
        with self._lock:
            return [alert.as_dict() for alert in self.states.values()]

    def close(self) -> None:
        """Close the webhooks' connections (a later notification opens them again)."""
        with self._lock:
            transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()

    def _post(self, url: str, payload: dict[str, Any], timeout: float) -> None:
        """POST `payload` as JSON in one attempt; raises `WebhookError` unless the webhook accepted it (2xx)."""
        with self._lock:
            if self._transport is None:
                self._transport = HttpTransport(_WEBHOOK_HEADERS, timeout=timeout, max_attempts=1)
            transport = self._transport
        result = transport.post(url, orjson.dumps(payload, default=str))
        if not result.ok:
            raise WebhookError(result.error or "not delivered")


class WebhookError(RuntimeError):
    """A webhook that did not accept a notification: the HTTP status or the connection error."""


class MonitorRunner:
    """Runs an `Evaluator` every `config.interval` seconds on a daemon thread until stopped."""

    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator
        self.errors = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start evaluating (no thread when there are no rules)."""
        if self._thread is None and self.evaluator.config.rules:
            self._thread = threading.Thread(target=self._run, name="sdk-telemetry-monitors", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop and wait (bounded) for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.evaluator.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.evaluator.evaluate()
            except Exception as exc:  # a broken evaluation must not end the loop
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                _logger.warning("sdk-telemetry monitors: evaluation failed: %s", exc)
            self._stop.wait(self.evaluator.config.interval)

    def snapshot(self) -> dict[str, Any]:
        """Alert states and the runner's own health."""
        return {
            "interval_seconds": self.evaluator.config.interval,
            "source": self.evaluator.config.source,
            "running": self._thread is not None,
            "evaluation_errors": self.errors,
            "last_error": self.last_error,
            "alerts": self.evaluator.snapshot(),
        }
