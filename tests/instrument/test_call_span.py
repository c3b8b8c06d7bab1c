"""The lean span of an instrumented call (`CallSpan`): what every processor, exporter and child span
sees of it must be what an SDK span would give, and the SDK's own span is used where a lean one
cannot decide alone (other samplers)."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, StatusCode, TraceFlags, TraceState

from sdk_telemetry import configure_telemetry, instrument
from sdk_telemetry.instrument.call_span import CallSpan


class Recorder(SpanProcessor):
    """A user's processor on the provider: what it saw at start and at end."""

    def __init__(self) -> None:
        self.started: list[tuple[str, bool]] = []
        self.ended: list[ReadableSpan] = []

    def on_start(self, span: Span, parent_context: Any = None) -> None:
        self.started.append((span.name, span.is_recording()))

    def on_end(self, span: ReadableSpan) -> None:
        self.ended.append(span)


class Client:
    def plain(self) -> int:
        return 1

    def annotated(self) -> str:
        span = trace.get_current_span()
        span.set_attribute("app.item", "x1")
        span.add_event("step", {"n": 2})
        span.set_attribute("app.count", 3)
        return "done"

    def with_child(self) -> None:
        with trace.get_tracer("other.library").start_as_current_span("HTTP GET"):
            pass

    def outer(self) -> None:
        self.plain()


@pytest.fixture
def provider() -> TracerProvider:
    configure_telemetry(exporter="none")
    found = trace.get_tracer_provider()
    assert isinstance(found, TracerProvider)
    return found


@pytest.fixture
def memory(provider: TracerProvider) -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrument(Client)
    return exporter


def test_a_user_processor_sees_the_call_span_started_recording_and_then_ended(provider: TracerProvider) -> None:
    recorder = Recorder()
    provider.add_span_processor(recorder)
    instrument(Client)
    Client().plain()
    assert recorder.started == [("Client.plain", True)]
    [span] = recorder.ended
    assert isinstance(span, CallSpan)
    assert span.name == "Client.plain"
    assert not span.is_recording()
    assert span.end_time is not None and span.start_time is not None and span.end_time >= span.start_time
    assert span.resource.attributes["service.name"]
    assert span.instrumentation_scope is not None and span.instrumentation_scope.name == "sdk_telemetry"
    assert span.context.trace_flags.sampled and span.context.is_valid and span.parent is None


def test_attributes_and_events_set_inside_the_call_are_exported(memory: InMemorySpanExporter) -> None:
    assert Client().annotated() == "done"
    [span] = memory.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes["app.item"] == "x1" and span.attributes["app.count"] == 3
    assert span.attributes["code.function.name"].endswith("Client.annotated")
    assert [(event.name, dict(event.attributes or {})) for event in span.events] == [("step", {"n": 2})]
    # The function's shared start attributes were copied, not changed, by the writes.
    Client().plain()
    plain = memory.get_finished_spans()[-1]
    assert plain.attributes is not None and "app.item" not in plain.attributes


def test_a_library_span_inside_the_call_is_its_child(memory: InMemorySpanExporter) -> None:
    Client().with_child()
    child, call = memory.get_finished_spans()
    assert child.name == "HTTP GET" and call.name == "Client.with_child"
    assert child.parent is not None
    assert child.parent.span_id == call.context.span_id
    assert child.context.trace_id == call.context.trace_id


def test_nested_calls_and_a_remote_parent_keep_trace_id_and_trace_state(
    nested_children: None, memory: InMemorySpanExporter
) -> None:
    remote = SpanContext(
        0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED), trace_state=TraceState([("k", "v")])
    )
    token = otel_context.attach(trace.set_span_in_context(NonRecordingSpan(remote)))
    try:
        Client().outer()
    finally:
        otel_context.detach(token)
    inner, outer = memory.get_finished_spans()
    assert outer.parent is not None and outer.parent.span_id == 0x5678
    assert inner.parent is not None and inner.parent.span_id == outer.context.span_id
    assert inner.context.trace_id == outer.context.trace_id == 0x1234
    assert outer.context.trace_state.get("k") == "v" and inner.context.trace_state.get("k") == "v"


def test_errors_set_status_and_an_exception_event(memory: InMemorySpanExporter) -> None:
    class Failing:
        def run(self) -> None:
            raise KeyError("missing")

    instrument(Failing)
    with pytest.raises(KeyError):
        Failing().run()
    [span] = memory.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description is not None and "KeyError" in span.status.description
    [event] = span.events
    assert event.name == "exception" and event.attributes is not None
    assert event.attributes["exception.type"] == "KeyError"
    assert "raise KeyError" in str(event.attributes["exception.stacktrace"])


def test_the_upstream_otlp_encoder_encodes_a_call_span(memory: InMemorySpanExporter) -> None:
    Client().annotated()
    [span] = memory.get_finished_spans()
    request = ExportTraceServiceRequest.FromString(encode_spans([span]).SerializeToString())
    [encoded] = request.resource_spans[0].scope_spans[0].spans
    assert encoded.name == "Client.annotated"
    assert int.from_bytes(encoded.span_id, "big") == span.context.span_id
    assert int.from_bytes(encoded.trace_id, "big") == span.context.trace_id
    assert encoded.end_time_unix_nano - encoded.start_time_unix_nano == span.end_time - span.start_time  # type: ignore[operator]
    assert {kv.key for kv in encoded.attributes} >= {"app.item", "app.count", "code.function.name"}
    assert '"name": "Client.annotated"' in span.to_json()


def test_writes_after_the_end_are_ignored(memory: InMemorySpanExporter) -> None:
    Client().plain()
    [span] = memory.get_finished_spans()
    assert isinstance(span, CallSpan)
    span.set_attribute("late", 1)
    span.add_event("late")
    span.set_status(StatusCode.ERROR)
    span.end()
    assert span.attributes is not None and "late" not in span.attributes
    assert span.events == () and span.status.status_code is StatusCode.UNSET
    assert len(memory.get_finished_spans()) == 1


def test_the_provider_id_generator_draws_the_ids(nested_children: None, provider: TracerProvider) -> None:
    class Counting(IdGenerator):
        def __init__(self) -> None:
            self.next = 0

        def generate_span_id(self) -> int:
            self.next += 1
            return self.next

        def generate_trace_id(self) -> int:
            return 0xABC

    provider.id_generator = Counting()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    instrument(Client)
    Client().outer()
    inner, outer = memory.get_finished_spans()
    assert (outer.context.trace_id, outer.context.span_id, inner.context.span_id) == (0xABC, 1, 2)


def test_another_sampler_gets_the_sdk_span_and_decides(provider: TracerProvider) -> None:
    provider.sampler = TraceIdRatioBased(1.0)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    instrument(Client)
    Client().plain()
    [span] = memory.get_finished_spans()
    assert span.name == "Client.plain" and not isinstance(span, CallSpan)


def test_links_and_limits_follow_the_provider(provider: TracerProvider) -> None:
    from opentelemetry.sdk.trace import SpanLimits

    provider._span_limits = SpanLimits(max_attributes=2, max_span_attribute_length=4, max_links=1)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))

    class Linking:
        def run(self) -> None:
            span = trace.get_current_span()
            span.add_link(SpanContext(0x1, 0x2, is_remote=True), {"why": "because"})
            span.add_link(SpanContext(0x3, 0x4, is_remote=True), {"then": "later"})  # over max_links: the oldest goes;
            # max_span_attribute_length cuts span attribute values only (as in the SDK)
            span.set_attribute("long", "abcdefgh")
            span.set_attribute("third", 3)  # over max_attributes: the oldest (code.function.name) goes

    instrument(Linking)
    Linking().run()
    [span] = memory.get_finished_spans()
    [link] = span.links  # the SDK's bounded lists keep the newest
    assert link.context.span_id == 0x4 and dict(link.attributes or {}) == {"then": "later"}
    assert span.dropped_links == 1
    assert dict(span.attributes or {}) == {"long": "abcd", "third": 3}
    assert span.dropped_attributes == 1


def test_a_failing_processor_never_reaches_the_call(provider: TracerProvider, memory: InMemorySpanExporter) -> None:
    class Broken(SpanProcessor):
        def on_end(self, span: ReadableSpan) -> None:
            raise RuntimeError("processor bug")

    provider.add_span_processor(Broken())
    assert Client().plain() == 1
    assert [span.name for span in memory.get_finished_spans()] == ["Client.plain"]
