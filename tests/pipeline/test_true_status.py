"""`health()`, `health_details()` and `flush()` tell the truth: an unwritable store, a dead OTLP endpoint,
Composio with no endpoint, and a healthy setup (real exporters, real loopback sockets)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from exporters.tests.helpers.faults import FaultServer
from sdk_telemetry import configure_telemetry, instrument
from sdk_telemetry.pipeline.health import health_summary

CALLS = 12


class Client:
    def call(self) -> str:
        return "ok"


@pytest.fixture(autouse=True)
def own_spool(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SDK_TELEMETRY_SPOOL_DIR", str(tmp_path / "spool"))


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_calls() -> None:
    instrument(Client)
    for _ in range(CALLS):
        Client().call()


def test_a_store_that_cannot_be_written_is_failing_since_the_first_write_and_flush_is_false(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    store = blocker / "telemetry.sqlite3"  # a path under a file: no one, root included, can create it
    telemetry = configure_telemetry(exporter="local", store_path=str(store), batch_interval=30)
    make_calls()
    assert telemetry.flush(timeout=5) is False

    details = telemetry.health_details()["local"]
    assert details["level"] == "failing"
    assert details["lost"] == CALLS and details["exported"] == 0
    assert details["problem"].startswith(f"cannot write the store {store}: ")
    since = details["since"]
    assert since is not None and since > 1.7e9, "a real time, never one computed from 0"
    line = health_summary(telemetry.stats(), now=since + 7)
    assert line == (
        f"failing: local failing (0 exported, 0 queued, 0 retried, 0 spooled, 0 resent, {CALLS} lost), "
        f"failing since 7s ago: {details['problem']}"
    )
    assert telemetry.health().startswith("failing: local failing (0 exported")


def test_a_dead_otlp_endpoint_is_failing_and_flush_is_false(monkeypatch):
    endpoint = f"http://127.0.0.1:{closed_port()}/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1")
    telemetry = configure_telemetry(exporter="otlp", batch_interval=30)
    make_calls()
    assert telemetry.flush(timeout=10) is False

    details = telemetry.health_details()["otlp"]
    assert details["level"] == "failing"
    assert details["lost"] == CALLS
    assert details["problem"].startswith(f"POST {endpoint}: ")
    assert "Connection refused" in details["problem"]
    line = health_summary(telemetry.stats(), now=details["since"] + 3)
    assert line == (
        f"failing: otlp failing (0 exported, 0 queued, 0 retried, 0 spooled, 0 resent, {CALLS} lost), "
        f"failing since 3s ago: {details['problem']}"
    )


def test_composio_with_no_endpoint_is_failing_from_the_start_and_flush_is_false():
    telemetry = configure_telemetry(exporter="composio", batch_interval=30)
    before = telemetry.health_details()["composio"]
    assert before["level"] == "failing", "nothing can be delivered, even before the first span"
    make_calls()
    assert telemetry.flush(timeout=5) is False

    details = telemetry.health_details()["composio"]
    assert details == {
        "level": "failing",
        "problem": "no endpoint (SDK_TELEMETRY_ENDPOINT is not set): nothing is sent",
        "since": before["since"],
        "exported": 0,
        "lost": CALLS,
        "pending_batches": 0,
    }
    line = health_summary(telemetry.stats(), now=details["since"] + 90)
    assert line == (
        f"failing: composio failing (0 exported, 0 queued, 0 retried, 0 spooled, 0 resent, {CALLS} lost), "
        "failing since 90s ago: no endpoint (SDK_TELEMETRY_ENDPOINT is not set): nothing is sent"
    )


def test_a_second_flush_answers_for_what_came_after_the_first(tmp_path):
    """Lost before the previous flush is reported by that flush, not forever: a fixed setup flushes True again."""
    telemetry = configure_telemetry(exporter="composio", batch_interval=30)
    make_calls()
    assert telemetry.flush(timeout=5) is False
    assert telemetry.flush(timeout=5) is True, "nothing new was asked for, nothing new was lost"
    Client().call()
    assert telemetry.flush(timeout=5) is False


def test_healthy_exporters_stay_ok_and_flush_is_true(tmp_path):
    with FaultServer() as server:
        telemetry = configure_telemetry(
            exporter="composio,local", endpoint=server.url, store_path=str(tmp_path / "s.sqlite3"), batch_interval=30
        )
        make_calls()
        assert telemetry.flush(timeout=5) is True
        assert len(server.received) >= 1
        assert telemetry.health() == (
            f"ok: composio ok ({CALLS} exported, 0 queued, 0 retried, 0 spooled, 0 resent, 0 lost); "
            f"local ok ({CALLS} exported, 0 queued, 0 retried, 0 spooled, 0 resent, 0 lost)"
        )
        assert {name: d["level"] for name, d in telemetry.health_details().items()} == {
            "composio": "ok",
            "local": "ok",
        }
