"""`health_summary`: one line of status from real stats, for a working, a failing and a recovered endpoint."""

from __future__ import annotations

import time

import pytest

from exporters.tests.helpers.faults import Fault, FaultServer
from sdk_telemetry import configure_telemetry, instrument
from sdk_telemetry.pipeline.health import health_summary


class Client:
    def call(self) -> str:
        return "ok"


@pytest.fixture(autouse=True)
def own_spool(monkeypatch, tmp_path):
    monkeypatch.setenv("SDK_TELEMETRY_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("SDK_TELEMETRY_RETRY_BASE", "0.02")
    monkeypatch.setenv("SDK_TELEMETRY_RETRY_CAP", "0.05")


def test_ok_then_failing_then_degraded_then_ok_again():
    with FaultServer() as server:
        telemetry = configure_telemetry(exporter="composio", endpoint=server.url, batch_interval=30)
        instrument(Client)
        for _ in range(3):
            Client().call()
        assert telemetry.flush(timeout=5)
        line = health_summary(telemetry.stats())
        assert line.startswith("ok: composio ok (3 exported, 0 queued, 0 retried, 0 spooled, 0 resent, 0 lost)"), line

        server.then = Fault(503)
        Client().call()
        telemetry.flush(timeout=5)
        line = health_summary(telemetry.stats())
        assert line.startswith("failing: composio failing"), line
        assert "1 spooled" in line and "1 batch(es) waiting in the spool" in line and "HTTP 503" in line, line

        server.then = Fault()
        exporter = telemetry.processors[0].exporter
        line = ""
        for _ in range(50):
            exporter.resend_spooled(1)
            line = health_summary(telemetry.stats())
            if line.startswith("ok"):
                break
            time.sleep(0.05)
        assert line.startswith("ok: composio ok (3 exported, "), line
        assert "2 retried, 1 spooled, 1 resent, 0 lost)" in line, line


def test_lost_events_make_it_degraded_and_disabled_says_why():
    stats = {
        "enabled": True,
        "exporters": {"composio": {"queue": 0, "dropped": {"queue_full": 2}, "exporter": {"exported": 5}}},
    }
    assert health_summary(stats, now=0).startswith("degraded: composio degraded (5 exported, 0 queued")
    assert "2 lost" in health_summary(stats, now=0)
    assert health_summary({"enabled": False, "disabled_reason": "DO_NOT_TRACK"}) == "disabled (DO_NOT_TRACK)"
    assert health_summary({"enabled": True, "exporters": {}}) == "ok: no exporter"
