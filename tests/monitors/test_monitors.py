"""Monitors: rules checked at start-up, an alert's whole life, delivery once to a loopback webhook."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest

from exporters.tests.helpers.loopback import LoopbackServer, Reply
from sdk_telemetry.monitors import (
    FIRING,
    OK,
    PENDING,
    RESOLVED,
    Evaluator,
    MonitorConfigError,
    MonitorRunner,
    MonitorSettings,
    load_config,
    parse_config,
)
from tests.helpers.processes import ROOT
from tests.helpers.spans import BASE, EXECUTE, HOUR, NS, SpanFactory, known_spans, write_spans

#: s6's Tools.execute call (1000 ms) starts here; nothing else runs within ten minutes of it.
SLOW_CALL = (BASE + 2 * 86_400 * NS + 1 * HOUR + 30 * NS) / NS


def test_example_file_is_valid() -> None:
    config = load_config(ROOT / "examples" / "monitors.yaml")
    assert [rule.name for rule in config.rules] == ["slow-execute", "error-rate", "traffic-stopped"]
    slow = config.rules[0]
    assert (slow.metric, slow.threshold, slow.window, slow.for_seconds, slow.function) == (
        "p95",
        500.0,
        300.0,
        60.0,
        EXECUTE,
    )
    assert slow.describe() == "p95 of Tools.execute above 500 ms over 5m"
    assert config.rules[1].threshold == 0.05
    assert config.interval == 15.0


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"name": "a", "metric": "p96", "above": 1}, "rule 1 ('a'): metric must be one of"),
        ({"name": "a", "metric": "p95"}, "rule 1 ('a'): give exactly one of `above` or `below`"),
        ({"name": "a", "metric": "p95", "above": "fast"}, "rule 1 ('a'): threshold for p95 must be a latency"),
        ({"name": "a", "metric": "error_rate", "above": 5}, "rule 1 ('a'): error_rate threshold 5 is above 1"),
        ({"name": "a", "metric": "calls", "above": 1, "window": "-5m"}, "rule 1 ('a'): window: expected a duration"),
        ({"name": "a", "metric": "calls", "above": 1, "treshold": 2}, "rule 1 ('a'): unknown setting(s) 'treshold'"),
        ({"name": "a", "metric": "calls", "above": 1, "webhook": "ftp://x"}, "webhook must be an http(s) URL"),
        ({"metric": "calls", "above": 1}, "rule 1: name must be"),
    ],
)
def test_a_bad_rule_is_named(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(MonitorConfigError) as caught:
        parse_config({"rules": [rule]}, "monitors.yaml")
    assert str(caught.value).startswith("monitors.yaml: ")
    assert message in str(caught.value)


def test_duplicate_names_and_broken_files(tmp_path: Path) -> None:
    twice = {"rules": [{"name": "x", "metric": "calls", "above": 1}, {"name": "x", "metric": "calls", "below": 1}]}
    with pytest.raises(MonitorConfigError, match=r"rule 2 \('x'\): the name 'x' is used by an earlier rule"):
        parse_config(twice)
    broken = tmp_path / "monitors.yaml"
    broken.write_text("rules:\n  - name: [unclosed\n")
    with pytest.raises(MonitorConfigError, match="not valid YAML"):
        load_config(broken)
    with pytest.raises(MonitorConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    toml = tmp_path / "monitors.toml"
    toml.write_text(
        'interval = "10s"\n[[rules]]\nname = "errors"\nmetric = "error_rate"\nabove = "5%"\nwindow = "5m"\n'
    )
    config = load_config(toml)
    assert (config.interval, config.rules[0].threshold) == (10.0, 0.05)


def test_settings_from_argument_then_environment() -> None:
    assert MonitorSettings.resolve({}, {}).rules_path is None
    assert MonitorSettings.resolve({}, {"SDK_TELEMETRY_MONITORS": "m.yaml"}).rules_path == Path("m.yaml")
    assert MonitorSettings.resolve({"monitors": "a.toml"}, {"SDK_TELEMETRY_MONITORS": "m.yaml"}).rules_path == Path(
        "a.toml"
    )


def test_alert_life_pending_firing_resolved_delivered_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = tmp_path / "store.sqlite3"
    write_spans(store, known_spans())
    with LoopbackServer() as hook:
        config = parse_config(
            {
                "webhook": f"{hook.url}/alerts",
                "webhook_timeout": "2s",
                "rules": [
                    {"name": "slow-execute", "function": EXECUTE, "metric": "p95", "above": "500ms",
                     "window": "10m", "for": "1m"},
                ],
            }
        )  # fmt: skip
        evaluator = Evaluator(config, store)
        states = []
        caplog.set_level(logging.INFO, logger="sdk_telemetry.monitors")
        for offset in (-60, 1, 30, 61, 62, 300, 599, 601, 700):  # seconds after the slow call started
            evaluator.evaluate(now=SLOW_CALL + offset)
            states.append(evaluator.snapshot()[0]["state"])
        assert states == [OK, PENDING, PENDING, FIRING, FIRING, FIRING, FIRING, RESOLVED, RESOLVED]
        bodies = [request.json() for request in hook.wait_for("/alerts", 2)]
        time.sleep(0.1)
        assert len(hook.requests_to("/alerts")) == 2
    assert [(b["alert"], b["status"], b["episode"]) for b in bodies] == [
        ("slow-execute", "firing", 1),
        ("slow-execute", "resolved", 1),
    ]
    assert bodies[0]["value"] == 1000.0 and bodies[0]["threshold"] == 500.0 and bodies[0]["function"] == EXECUTE
    assert "p95 of Tools.execute above 500 ms over 10m (now 1,000 ms)" in bodies[0]["message"]
    assert bodies[1]["value"] is None  # no call left in the window
    state = evaluator.snapshot()[0]
    assert (state["episodes"], state["deliveries"], state["delivery_failures"]) == (1, 2, 0)
    logged = [record.getMessage() for record in caplog.records if record.name == "sdk_telemetry.monitors"]
    assert sum("firing" in line for line in logged) == 1 and sum("resolved" in line for line in logged) == 1


def test_a_breach_shorter_than_for_never_fires(tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite3"
    write_spans(store, known_spans())
    config = parse_config(
        {"rules": [{"name": "e", "function": EXECUTE, "metric": "max", "above": 500, "window": "1m", "for": "2m"}]}
    )
    evaluator = Evaluator(config, store)
    seen = []
    for offset in (0, 30, 59, 61, 200):
        evaluator.evaluate(now=SLOW_CALL + offset + 0.001)
        seen.append(evaluator.snapshot()[0]["state"])
    assert seen == [PENDING, PENDING, PENDING, OK, OK]
    assert evaluator.snapshot()[0]["episodes"] == 0


def test_failed_delivery_is_counted_not_raised(tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite3"
    write_spans(store, known_spans())
    with LoopbackServer(lambda request: Reply(status=500)) as hook:
        config = parse_config(
            {"rules": [{"name": "err", "metric": "error_rate", "above": "5%", "window": "1h", "webhook": hook.url}]}
        )
        evaluator = Evaluator(config, store)
        fired = evaluator.evaluate(now=(BASE + 3 * HOUR + 30 * NS) / NS)  # s3's failed execute in the hour
        assert [n.status for n in fired] == [FIRING]
        assert len(hook.wait_for("/", 1)) == 1
    state = evaluator.snapshot()[0]
    assert (state["deliveries"], state["delivery_failures"]) == (0, 1)
    assert "500" in state["last_delivery_error"]


def test_runner_fires_in_the_background(tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite3"
    now = time.time_ns()
    factory = SpanFactory()
    resource = {"service.name": "acme-sdk", "session.id": "live"}
    write_spans(store, [factory.call(EXECUTE, now - i * NS, 800, resource) for i in range(1, 6)])
    with LoopbackServer() as hook:
        config = parse_config(
            {
                "interval": 0.05,
                "webhook": hook.url + "/hook",
                "rules": [{"name": "slow", "function": EXECUTE, "metric": "p50", "above": "0.5s", "window": "1m"}],
            }
        )
        runner = MonitorRunner(Evaluator(config, store))
        runner.start()
        try:
            received = hook.wait_for("/hook", 1, timeout=10)
            time.sleep(0.3)  # several more evaluations: still one delivery
            snapshot = runner.snapshot()
        finally:
            runner.stop()
        assert len(hook.requests_to("/hook")) == 1
    assert received[0].json()["status"] == "firing" and received[0].json()["value"] == 800.0
    assert snapshot["running"] is True and snapshot["alerts"][0]["state"] == FIRING
    assert snapshot["evaluation_errors"] == 0
