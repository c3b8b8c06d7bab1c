"""`configure_telemetry()` and its handle: idempotence, an existing provider, flush and stats."""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from exporters.tests.helpers.loopback import LoopbackServer, Reply
from sdk_telemetry import configure_telemetry, current_telemetry, instrument

INVOCATIONS = "/metrics/invocations"
ERRORS = "/errors"


Loopback = LoopbackServer


class Client:
    def ping(self) -> str:
        return "pong"

    def fail(self) -> None:
        raise ValueError("nope")


def delivered(server: LoopbackServer) -> list[str]:
    """Function names of every payload the server received, both endpoints."""
    names = [item["functionName"] for request in server.requests_to(INVOCATIONS) for item in request.json()]
    return names + [request.json()["functionName"] for request in server.requests_to(ERRORS)]


def stored_count() -> int:
    with sqlite3.connect(os.environ["SDK_TELEMETRY_STORE"]) as connection:
        (count,) = connection.execute("SELECT COUNT(*) FROM otel_traces").fetchone()
    return int(count)


def test_configure_twice_with_the_same_settings_returns_the_same_handle_and_exports_once(server):
    settings: dict[str, Any] = {"exporter": ["composio", "local"], "endpoint": server.url, "batch_interval": 0.05}
    first = configure_telemetry(**settings)
    second = configure_telemetry(**settings)
    assert second is first
    assert current_telemetry() is first
    assert first.enabled

    instrument(Client)
    for _ in range(5):
        Client().ping()
    assert first.flush(timeout=5)
    time.sleep(0.2)
    assert delivered(server) == ["Client.ping"] * 5
    assert stored_count() == 5


def test_reconfiguring_with_other_settings_replaces_the_setup_without_duplicating_exports(server):
    first = configure_telemetry(exporter="composio", endpoint=server.url, batch_interval=0.05)
    second = configure_telemetry(exporter="composio", endpoint=server.url, batch_interval=0.1)
    assert second is not first
    assert not first.enabled, "the replaced setup should be shut down"
    assert configure_telemetry(exporter="composio", endpoint=server.url, batch_interval=0.1) is second

    instrument(Client)
    for _ in range(4):
        Client().ping()
    assert second.flush(timeout=5)
    time.sleep(0.2)
    assert delivered(server) == ["Client.ping"] * 4


def test_an_existing_sdk_tracer_provider_is_kept_and_its_processor_still_receives_spans(server):
    memory = InMemorySpanExporter()
    application_provider = TracerProvider()
    application_provider.add_span_processor(SimpleSpanProcessor(memory))
    trace.set_tracer_provider(application_provider)

    telemetry = configure_telemetry(exporter="composio", endpoint=server.url, batch_interval=0.05)
    assert trace.get_tracer_provider() is application_provider
    # Reconfiguring must not add a second processor of ours to the application's provider.
    telemetry = configure_telemetry(exporter="composio", endpoint=server.url, batch_interval=0.1)
    instrument(Client)
    Client().ping()
    Client().ping()
    with pytest.raises(ValueError):
        Client().fail()
    assert telemetry.flush(timeout=5)
    time.sleep(0.2)

    assert sorted(delivered(server)) == ["Client.fail", "Client.ping", "Client.ping"]
    assert sorted(span.name for span in memory.get_finished_spans()) == ["Client.fail", "Client.ping", "Client.ping"]
    application_provider.shutdown()


def test_flush_returns_true_once_everything_is_delivered(server):
    telemetry = configure_telemetry(exporter="composio", endpoint=server.url, batch_interval=30)
    instrument(Client)
    for _ in range(3):
        Client().ping()
    assert server.received == []
    assert telemetry.flush(timeout=5) is True
    # No waiting: flush returns after the export, so the server already has every item.
    assert delivered(server) == ["Client.ping"] * 3


def test_stats_report_queued_exported_failed_dropped_and_exporter_counters(server):
    telemetry = configure_telemetry(exporter="composio", endpoint=server.url, batch_interval=0.05)
    instrument(Client)
    for _ in range(4):
        Client().ping()
    with pytest.raises(ValueError):
        Client().fail()
    assert telemetry.flush(timeout=5)

    stats = telemetry.stats()
    assert stats["enabled"] is True
    assert (stats["queued"], stats["exported"], stats["failed"], stats["dropped"]) == (5, 5, 0, 0), stats
    entry = stats["exporters"]["composio"]
    assert entry["queue"] == 0
    assert (entry["queued"], entry["exported"], entry["failed"], entry["dropped"]) == (5, 5, 0, {}), entry
    exporter = entry["exporter"]
    assert exporter["invocations_sent"] == 4, exporter
    assert exporter["errors_sent"] == 1, exporter
    assert exporter["requests"] == len(server.received)
    assert exporter["requests_failed"] == 0 and exporter["last_error"] is None


def test_stats_count_spans_dropped_when_the_queue_is_full(server):
    telemetry = configure_telemetry(exporter="composio", endpoint=server.url, batch_interval=30, queue_size=3)
    instrument(Client)
    for _ in range(5):
        Client().ping()
    assert telemetry.flush(timeout=5) is False  # two spans were dropped: not all delivered

    stats = telemetry.stats()
    assert stats["exporters"]["composio"]["dropped"] == {"queue_full": 2}, stats
    assert (stats["queued"], stats["exported"], stats["dropped"]) == (3, 3, 2), stats
    assert delivered(server) == ["Client.ping"] * 3


def test_stats_count_failed_exports_and_the_last_error():
    with Loopback(lambda request: Reply(status=400)) as rejecting:
        telemetry = configure_telemetry(exporter="composio", endpoint=rejecting.url, batch_interval=0.05)
        instrument(Client)
        Client().ping()
        Client().ping()
        telemetry.flush(timeout=5)
        assert rejecting.received

    stats = telemetry.stats()
    assert (stats["queued"], stats["exported"], stats["failed"]) == (2, 0, 2), stats
    exporter = stats["exporters"]["composio"]["exporter"]
    assert exporter["items_rejected"] == 2
    assert "400" in exporter["last_error"] and exporter["last_error_time"] is not None


def test_every_queued_span_is_accounted_for_after_a_shutdown_that_hit_its_bound():
    """Spans stuck in an export to a hanging server when the bound is reached go to the spool."""
    with Loopback(lambda request: Reply(hang=True)) as hanging:
        telemetry = configure_telemetry(exporter="composio", endpoint=hanging.url, batch_interval=0.05)
        instrument(Client)
        for _ in range(3):
            Client().ping()
        with pytest.raises(ValueError):
            Client().fail()
        hanging.wait_for(ERRORS)
        started = time.monotonic()
        telemetry.shutdown(timeout=0.3)
        took = time.monotonic() - started

        stats = telemetry.stats()
    assert took < 0.3 + 1.5, f"shutdown(timeout=0.3) took {took:.2f}s"
    entry = stats["exporters"]["composio"]
    accounted = stats["exported"] + stats["failed"] + stats["dropped"] + entry["queue"] + entry["spooled"]
    assert accounted == stats["queued"] == 4, f"{stats['queued']} queued but only {accounted} accounted for: {stats}"
    assert entry["spooled"] == 4, "spans stuck at the exit bound go to the spool"
