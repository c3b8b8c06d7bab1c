"""Span and trace ids of instrumented calls come from a generator of sdk-telemetry's own: the host's
global `random` state is untouched, and a forked child never draws its parent's ids."""

from __future__ import annotations

import os
import random

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sdk_telemetry import configure_telemetry, instrument
from sdk_telemetry.instrument import PrivateIdGenerator


class Client:
    def ping(self) -> str:
        return "pong"


def capture(**settings: object) -> InMemorySpanExporter:
    configure_telemetry(exporter="none", http_spans=False, **settings)  # type: ignore[arg-type]
    exporter = InMemorySpanExporter()
    trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(exporter))  # type: ignore[attr-defined]
    instrument(Client)
    return exporter


def draws_with_calls_in_between(calls: int) -> list[float]:
    random.seed(1234)
    drawn = []
    for _ in range(5):
        drawn.append(random.random())
        for _ in range(calls):
            Client().ping()
    return drawn


@pytest.mark.parametrize("metrics", [False, True], ids=["lean path", "with metrics"])
def test_a_seeded_global_random_sequence_is_the_same_with_instrumented_calls_in_between(metrics: bool) -> None:
    spans = capture(metric_readers=[InMemoryMetricReader()]) if metrics else capture()
    expected = draws_with_calls_in_between(0)
    assert draws_with_calls_in_between(3) == expected
    assert len(spans.get_finished_spans()) == 15


def test_the_private_id_generator_leaves_the_global_random_state_alone() -> None:
    provider = TracerProvider(id_generator=PrivateIdGenerator())
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    random.seed(99)
    state = random.getstate()
    with provider.get_tracer("host").start_as_current_span("sdk span"):
        pass
    assert random.getstate() == state
    [span] = memory.get_finished_spans()
    assert span.context is not None and span.context.span_id and span.context.trace_id


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_draws_other_ids_than_its_parent() -> None:
    spans = capture()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one call, its span id to the parent
        try:
            Client().ping()
            [span] = spans.get_finished_spans()
            os.write(write, f"{span.context.span_id},{span.context.trace_id}".encode())
        finally:
            os._exit(0)
    os.close(write)
    Client().ping()
    with os.fdopen(read) as pipe:
        child = tuple(int(value) for value in pipe.read().split(","))
    os.waitpid(pid, 0)
    [span] = spans.get_finished_spans()
    assert span.context is not None
    assert len(child) == 2
    assert child[0] != span.context.span_id and child[1] != span.context.trace_id


def test_http_child_spans_and_spans_made_through_the_provider_leave_the_global_random_alone() -> None:
    """The global provider sdk-telemetry sets up draws its ids privately too: an HTTP child span
    (made through the SDK tracer, not the lean path) inside an instrumented call."""
    import requests

    from exporters.tests.helpers.loopback import LoopbackServer

    configure_telemetry(exporter="none")
    exporter = InMemorySpanExporter()
    trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(exporter))  # type: ignore[attr-defined]

    with LoopbackServer() as server:

        @instrument(name="acme.fetch")
        def fetch() -> int:
            return requests.get(server.url + "/x", timeout=5).status_code

        random.seed(7)
        state = random.getstate()
        assert fetch() == 200
        assert random.getstate() == state
        with trace.get_tracer("host").start_as_current_span("host span"):
            pass
        assert random.getstate() == state
    names = sorted(span.name for span in exporter.get_finished_spans())
    assert names == ["GET", "acme.fetch", "host span"]
