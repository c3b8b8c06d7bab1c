"""Fault injection: a scripted server misbehaves; every event id still arrives, and every loss is counted.

Each scenario runs real instrumented calls through `configure_telemetry(exporter="composio")`
against `tests.faults.FaultServer`, then checks: every event id sent was accepted at least once
(or is counted as dropped: lost == counted drops), duplicates never exceed the counted retries
and resends, and `shutdown` returned within its bound.
"""

from __future__ import annotations

import email.utils
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sdk_telemetry_exporters._delivery import span_event_id

from exporters.tests.helpers.faults import OK, Fault, FaultServer, event_ids
from exporters.tests.helpers.loopback import Received
from sdk_telemetry import configure_telemetry, instrument
from sdk_telemetry.pipeline.health import health_summary

EXIT_BOUND = 1.0
SLACK = 1.5  # spooling at the bound fsyncs, which a busy shared disk can stall


class Failure(Exception):
    pass


class Client:
    def call(self, n: int = 0) -> int:
        return n

    def fail(self) -> None:
        raise Failure("expected")


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Short backoffs so that the suite is quick; a spool directory of the test's own."""
    monkeypatch.setenv("SDK_TELEMETRY_RETRY_BASE", "0.02")
    monkeypatch.setenv("SDK_TELEMETRY_RETRY_CAP", "0.1")
    monkeypatch.setenv("SDK_TELEMETRY_SPOOL_DIR", str(tmp_path / "spool"))


@dataclass
class Outcome:
    sent: set[str]
    stats: dict[str, Any]
    shutdown_took: float

    @property
    def processor(self) -> dict[str, Any]:
        return dict(self.stats["exporters"]["composio"])

    @property
    def exporter(self) -> dict[str, Any]:
        return dict(self.stats["exporters"]["composio"]["exporter"])

    @property
    def counted_drops(self) -> int:
        return sum(self.processor["dropped"].values()) + sum(self.exporter["dropped"].values())


def run_calls(
    server: FaultServer,
    calls: int = 30,
    failures: int = 3,
    timeout: float = 1.0,
    recover: FaultServer | None = None,
    wait: float = 10.0,
) -> Outcome:
    """Make calls, flush, (let the server recover,) wait for every id, shut down within the bound."""
    telemetry = configure_telemetry(
        exporter="composio", endpoint=server.url, batch_interval=0.05, batch_size=10, timeout=timeout
    )
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    instrument(Client)
    client = Client()
    for n in range(calls):
        client.call(n)
        if n % max(1, calls // max(1, failures)) == 0 and failures:
            with pytest.raises(Failure):
                client.fail()
    telemetry.flush(timeout=10)
    sent = {span_event_id(span) for span in memory.get_finished_spans() if span.name.startswith("Client.")}
    server.wait_for_ids(sent, timeout=wait)
    started = time.monotonic()
    telemetry.shutdown(timeout=EXIT_BOUND)
    took = time.monotonic() - started
    return Outcome(sent, telemetry.stats(), took)


def check(server: FaultServer, outcome: Outcome, lost_allowed: bool = False) -> None:
    accepted = server.accepted_ids()
    lost = outcome.sent - accepted
    summary = f"{health_summary(outcome.stats)}; server outcomes {server.outcomes}"
    counted = outcome.counted_drops
    assert len(lost) == counted, f"{len(lost)} ids never arrived, {counted} counted: {summary}"
    if not lost_allowed:
        assert not lost, f"{len(lost)} of {len(outcome.sent)} ids never arrived: {summary}"
    retried = outcome.exporter["retried_items"] + outcome.exporter["resent"]
    assert server.duplicates() <= retried, f"{server.duplicates()} duplicates, {retried} retries/resends: {summary}"
    assert outcome.shutdown_took < EXIT_BOUND + SLACK, f"shutdown took {outcome.shutdown_took:.2f}s"
    assert accepted <= outcome.sent, "the server accepted ids nobody sent"
    exporter = outcome.exporter
    print(
        f"\n{os.environ.get('PYTEST_CURRENT_TEST', '?').split('::')[-1].split(' ')[0]}: sent {len(outcome.sent)}, "
        f"lost {len(lost)} (counted {counted}), duplicates {server.duplicates()}, retried items "
        f"{exporter['retried_items']}, spooled {exporter['spooled']}, resent {exporter['resent']}, "
        f"shutdown {outcome.shutdown_took:.3f}s (bound {EXIT_BOUND}s)"
    )


def test_503_twice_then_200_is_retried_to_delivery_without_the_spool():
    with FaultServer([Fault(503), Fault(503)]) as server:
        outcome = run_calls(server)
    check(server, outcome)
    assert outcome.exporter["retried"] >= 2
    assert outcome.exporter["spooled"] == 0


def test_503_more_often_than_the_attempts_goes_to_the_spool_and_is_resent():
    with FaultServer([Fault(503)] * 5) as server:
        outcome = run_calls(server)
    check(server, outcome)
    assert outcome.exporter["spooled"] >= 1 and outcome.exporter["resent"] == outcome.exporter["spooled"]
    assert outcome.exporter["spool_pending"] == 0


def first_retry_gap(server: FaultServer) -> float:
    """Seconds from the first request to the next one that carries any of its event ids (its retry).

    Found by ids, not by order: a batch cut by the timer beside the first one may arrive in between.
    """
    first, *later = server.received
    ids = set(event_ids(json.loads(first.body)))
    retry = next(request for request in later if ids & set(event_ids(json.loads(request.body))))
    return retry.at - first.at


def once_then_ok(make: Callable[[], Fault]) -> Callable[[Received, list[str]], Fault]:
    """A `decide` answering `make()` (built at the moment of the reply) to the first request, then OK."""
    answered: list[Fault] = []

    def decide(request: Received, ids: list[str]) -> Fault:
        if answered:
            return OK
        answered.append(make())
        return answered[0]

    return decide


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_429_with_retry_after_waits_as_told(form):
    def too_many() -> Fault:
        # Built as the reply goes out: an HTTP date has whole seconds, so "now + 2 s" is a wait of 1 to 2 s.
        value = "1" if form == "seconds" else email.utils.formatdate(time.time() + 2, usegmt=True)
        return Fault(429, headers={"Retry-After": value})

    with FaultServer(decide=once_then_ok(too_many)) as server:
        outcome = run_calls(server, calls=5, failures=0)
    check(server, outcome)
    gap = first_retry_gap(server)
    assert gap >= 0.9, f"retried {gap:.2f}s after a 429 with Retry-After ({form})"
    # A wait longer than the backoff cap is not held in the worker: the batch waits on disk instead.
    assert outcome.exporter["spooled"] >= 1 and outcome.exporter["resent"] == outcome.exporter["spooled"]


def test_a_retry_after_beyond_the_maximum_is_clamped(monkeypatch):
    monkeypatch.setenv("SDK_TELEMETRY_RETRY_AFTER_MAX", "0.3")
    with FaultServer([Fault(503, headers={"Retry-After": "3600"})]) as server:
        outcome = run_calls(server, calls=5, failures=0)
    check(server, outcome)
    gap = first_retry_gap(server)
    assert 0.25 <= gap < 1.5, f"retried {gap:.2f}s after Retry-After 3600 clamped to 0.3"


def test_bursts_of_500():
    burst = [Fault(500), Fault(500), OK, OK, OK] * 6
    with FaultServer(burst) as server:
        outcome = run_calls(server, calls=60, failures=6)
    check(server, outcome)
    assert outcome.exporter["retried"] >= 6


def test_connection_reset_while_the_request_body_arrives():
    with FaultServer([Fault(reset="request"), OK, Fault(reset="request")]) as server:
        outcome = run_calls(server)
    check(server, outcome)
    assert outcome.exporter["retried"] >= 2


def test_connection_reset_after_the_server_took_the_batch_makes_only_counted_duplicates():
    with FaultServer([Fault(reset="response"), Fault(reset="response")]) as server:
        outcome = run_calls(server)
    check(server, outcome)
    assert server.duplicates() >= 1, "a broken response after the server took the batch should be re-sent"


def test_a_server_that_accepts_and_never_answers_then_recovers():
    hang = Fault(hang=True)
    with FaultServer([hang, hang, hang, hang]) as server:
        outcome = run_calls(server, calls=10, failures=1, timeout=0.3)
    check(server, outcome)
    assert outcome.exporter["spooled"] >= 1


def test_413_splits_the_batch_until_it_fits():
    def decide(request: Any, ids: list[str]) -> Fault:
        return Fault(413) if len(ids) > 3 else OK

    with FaultServer(decide=decide) as server:
        outcome = run_calls(server, calls=30, failures=0)
    check(server, outcome)
    assert outcome.exporter["splits"] >= 3
    assert all(items <= 3 for outcome_, items in server.outcomes if outcome_ == 200)


def test_a_slow_server_still_gets_everything_within_the_bound():
    with FaultServer(then=Fault(delay=0.15)) as server:
        outcome = run_calls(server, calls=30, failures=3)
    check(server, outcome)


def test_down_then_back_every_event_arrives_from_the_spool():
    server = FaultServer()
    server.up()
    url = server.url
    server.down()
    telemetry = configure_telemetry(exporter="composio", endpoint=url, batch_interval=0.05, batch_size=10, timeout=0.5)
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    instrument(Client)
    client = Client()
    for n in range(25):
        client.call(n)
    with pytest.raises(Failure):
        client.fail()
    telemetry.flush(timeout=10)
    exporter = telemetry.processors[0].exporter
    assert exporter.stats()["spooled"] == 26, exporter.stats()
    assert "degraded" in health_summary(telemetry.stats()) or "failing" in health_summary(telemetry.stats())
    server.up()  # the same port answers again: the idle worker resends the spool
    sent = {span_event_id(span) for span in memory.get_finished_spans()}
    try:
        missing = server.wait_for_ids(sent, timeout=10)
        started = time.monotonic()
        telemetry.shutdown(timeout=EXIT_BOUND)
        outcome = Outcome(sent, telemetry.stats(), time.monotonic() - started)
    finally:
        server.__exit__()
    assert not missing, f"{len(missing)} ids never arrived: {health_summary(outcome.stats)}"
    check(server, outcome)
    assert outcome.exporter["resent"] == 26 and outcome.exporter["spool_pending"] == 0
    assert health_summary(outcome.stats).startswith("ok"), health_summary(outcome.stats)


def test_a_400_is_dropped_counted_and_never_spooled():
    def decide(request: Any, ids: list[str]) -> Fault:
        return Fault(400) if request.path == "/errors" else OK

    with FaultServer(decide=decide) as server:
        outcome = run_calls(server, calls=20, failures=4, wait=1.0)
    check(server, outcome, lost_allowed=True)
    assert outcome.exporter["dropped"] == {"rejected": 4}, outcome.exporter
    assert outcome.exporter["spooled"] == 0
    assert sum(1 for request in server.received if request.path == "/errors") == 4, "a 400 must not be retried"


@pytest.fixture
def hanging() -> Iterator[FaultServer]:
    with FaultServer(then=Fault(hang=True)) as server:
        yield server


def test_at_the_exit_bound_the_unsent_spans_go_to_the_spool_and_the_next_setup_sends_them(hanging, tmp_path):
    telemetry = configure_telemetry(exporter="composio", endpoint=hanging.url, batch_interval=0.05, timeout=5)
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    instrument(Client)
    client = Client()
    with pytest.raises(Failure):
        client.fail()
    for n in range(40):
        client.call(n)
    started = time.monotonic()
    telemetry.shutdown(timeout=0.5)
    took = time.monotonic() - started
    stats = telemetry.stats()["exporters"]["composio"]
    assert took < 0.5 + SLACK, f"shutdown(0.5) took {took:.2f}s"
    assert stats["spooled"] == 41 and stats["dropped"] == {}, stats
    sent = {span_event_id(span) for span in memory.get_finished_spans()}

    hanging.then = OK  # the same endpoint answers now (a spool is only ever resent to its own endpoint)
    again = configure_telemetry(exporter="composio", endpoint=hanging.url, batch_interval=0.05)
    client.call(99)  # the first delivery to an answering endpoint resends the spool
    again.flush(timeout=10)
    missing = hanging.wait_for_ids(sent, timeout=10)
    again.shutdown(timeout=1)
    assert not missing, f"{len(missing)} of {len(sent)} spooled ids never arrived"
    assert again.stats()["exporters"]["composio"]["exporter"]["resent"] == 41
