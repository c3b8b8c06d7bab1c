"""The forwarder's stage: successful calls wait in a bounded deque until an exporter's worker, a
flush, `stats()` or the shutdown takes them in; nothing staged is lost or counted twice."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from sdk_telemetry import configure_telemetry, grant_consent, instrument, revoke_consent
from sdk_telemetry import telemetry as telemetry_setup
from sdk_telemetry.pipeline.forwarder import STAGED_BATCHES, Forwarder


class Keeping(SpanExporter):
    """Keeps every exported span; blocks each export while `gate` is clear."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []
        self.gate = threading.Event()
        self.gate.set()
        self.exporting = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.exporting.set()
        self.gate.wait(10)
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.gate.set()


class Client:
    def call(self, n: int) -> int:
        return n


def setup(**settings: object) -> tuple[Keeping, Forwarder]:
    telemetry = configure_telemetry(exporter="local", batch_interval=30, **settings)  # type: ignore[arg-type]
    keeping = Keeping()
    telemetry.processors[0].exporter = keeping
    [forwarder] = telemetry_setup._forwarders.values()
    instrument(Client)
    return keeping, forwarder


def test_calls_wait_on_the_stage_and_a_flush_exports_each_once() -> None:
    keeping, forwarder = setup(batch_size=100)
    client = Client()
    client.call(0)  # the first span starts the worker (and goes straight to the queue)
    for n in range(1, 50):
        client.call(n)
    assert forwarder.staged() == 49  # fewer than a batch: nothing woke the worker
    telemetry = telemetry_setup.current_telemetry()
    assert telemetry is not None and telemetry.flush(5)
    assert forwarder.staged() == 0
    assert sorted(span.attributes["code.function.name"].rsplit(".", 1)[-1] for span in keeping.spans) == ["call"] * 50  # type: ignore[index, union-attr]
    assert len({span.context.span_id for span in keeping.spans}) == 50
    stats = telemetry.stats()["exporters"]["local"]
    assert stats["pushed"] == 50 and stats["exported"] == 50 and stats["dropped"] == {}


def test_stats_count_what_is_staged_as_pushed() -> None:
    _, forwarder = setup(batch_size=100)
    client = Client()
    for n in range(30):
        client.call(n)
    assert forwarder.staged() == 29
    telemetry = telemetry_setup.current_telemetry()
    assert telemetry is not None
    assert telemetry.stats()["exporters"]["local"]["pushed"] == 30
    assert forwarder.staged() == 0


def test_the_stage_is_bounded_while_the_worker_is_stuck_in_an_export() -> None:
    keeping, forwarder = setup(batch_size=10, queue_size=2000)
    limit = 10 * STAGED_BATCHES
    calls = limit + 300
    client = Client()
    keeping.gate.clear()
    client.call(0)
    telemetry = telemetry_setup.current_telemetry()
    assert telemetry is not None
    telemetry.flush(wait=False)
    assert keeping.exporting.wait(5)  # the worker now waits inside export()
    most = 0
    for n in range(1, calls):
        client.call(n)
        most = max(most, forwarder.staged())
    assert most == limit  # filled up to the bound, never past it: the rest went straight to the queue
    keeping.gate.set()
    assert telemetry.flush(10)
    stats = telemetry.stats()["exporters"]["local"]
    assert stats["pushed"] == calls
    assert stats["exported"] + sum(stats["dropped"].values()) == calls
    assert len(keeping.spans) == stats["exported"]


def test_consent_is_decided_when_the_call_ends_not_when_the_stage_is_drained() -> None:
    keeping, forwarder = setup(batch_size=100, consent_required=True)
    grant_consent()
    client = Client()
    client.call(0)  # with consent: starts the worker
    revoke_consent()
    telemetry = telemetry_setup.current_telemetry()
    assert telemetry is not None
    withheld = telemetry.stats()["privacy"]["withheld_no_consent"]
    for n in range(1, 6):
        client.call(n)  # without consent: never staged
    assert forwarder.staged() == 0
    grant_consent()
    client.call(6)
    assert forwarder.staged() == 1
    assert telemetry.flush(5)
    assert len(keeping.spans) == 2
    assert telemetry.stats()["privacy"]["withheld_no_consent"] - withheld == 5


def test_shutdown_exports_what_is_staged() -> None:
    keeping, forwarder = setup(batch_size=100)
    client = Client()
    for n in range(40):
        client.call(n)
    assert forwarder.staged() == 39
    telemetry = telemetry_setup.current_telemetry()
    assert telemetry is not None
    telemetry.shutdown(timeout=5)
    assert len(keeping.spans) == 40 and forwarder.staged() == 0
    client.call(99)  # after shutdown: counted as dropped, not staged
    assert forwarder.staged() == 0
    assert telemetry.processors[0].stats()["dropped"] == {"shutdown": 1}


def test_staged_calls_are_cut_down_by_the_rules_in_force() -> None:
    keeping, forwarder = setup(batch_size=100, excluded_fields=["code.function.name"])

    class Mixed:
        def lookup(self) -> int:
            return 1

        def public(self) -> int:
            return 2

    instrument(Mixed)
    mixed = Mixed()
    Client().call(0)  # starts the worker
    for _ in range(5):  # two functions' shared attributes, alternating in one batch
        mixed.lookup()
        mixed.public()
    assert forwarder.staged() == 10
    telemetry = telemetry_setup.current_telemetry()
    assert telemetry is not None and telemetry.flush(5)
    assert sorted(span.name for span in keeping.spans) == ["Client.call"] + ["Mixed.lookup"] * 5 + ["Mixed.public"] * 5
    assert all("code.function.name" not in (span.attributes or {}) for span in keeping.spans)
