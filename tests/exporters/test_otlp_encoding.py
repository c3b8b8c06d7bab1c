"""The direct OTLP encoder writes the very bytes upstream's protobuf encoder writes, for spans of
every shape, and its exporter delivers them to a real OTLP/HTTP endpoint."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as upstream_encode
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState
from sdk_telemetry_exporters.otlp import OTLPSpanExporter, encode_spans

from sdk_telemetry import configure_telemetry, instrument
from tests.helpers.loopback import LoopbackServer

scalars = st.one_of(
    st.text(max_size=20),
    st.booleans(),
    st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1),
    st.floats(allow_nan=False),
)
values = st.one_of(scalars, st.lists(st.text(max_size=5), max_size=3), st.lists(st.integers(-5, 5), max_size=3))
attribute_maps = st.dictionaries(st.text(min_size=1, max_size=10), values, max_size=5)


def _spans(
    attributes: dict[str, object], event_attributes: dict[str, object], remote: bool, status: int
) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "enc", "n": 3}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("scope.a", "1.2", schema_url="https://opentelemetry.io/schemas/1.21.0")
    other = provider.get_tracer("scope.b")
    parent = SpanContext(
        0xABC,
        0xDEF,
        is_remote=remote,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("k", "v"), ("a", "b")]),
    )
    context = trace.set_span_in_context(trace.NonRecordingSpan(parent))
    link = Link(SpanContext(0x1, 0x2, is_remote=True), {"link.key": 1})
    with tracer.start_as_current_span(
        "outer", context=context, kind=SpanKind.SERVER, attributes=attributes, links=[link]
    ) as outer:
        outer.add_event("step", event_attributes)
        outer.set_status(Status(StatusCode(status), "broke" if status == 2 else None))
        with other.start_as_current_span("inner", kind=SpanKind.CLIENT) as inner:
            inner.set_attribute("nested", {"a": [1, 2], "b": "x"})  # type: ignore[arg-type]
        with tracer.start_as_current_span("", attributes={"": "empty key", "none": []}):
            pass
    return list(memory.get_finished_spans())


@settings(max_examples=60, deadline=None)
@given(attribute_maps, attribute_maps, st.booleans(), st.sampled_from([0, 1, 2]))
def test_bytes_equal_upstreams_for_any_attributes_events_links_and_status(
    attributes: dict[str, object], event_attributes: dict[str, object], remote: bool, status: int
) -> None:
    spans = _spans(attributes, event_attributes, remote, status)
    assert encode_spans(spans) == upstream_encode(spans).SerializePartialToString()


def test_instrumented_calls_encode_like_upstream_with_shared_attributes_cached() -> None:
    configure_telemetry(exporter="none")
    memory = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    provider.add_span_processor(SimpleSpanProcessor(memory))  # type: ignore[attr-defined]

    class Client:
        def call(self, n: int) -> int:
            if n == 2:
                trace.get_current_span().set_attribute("own", n)
            if n == 3:
                raise ValueError("three")
            return n

    instrument(Client)
    client = Client()
    for n in range(5):
        with contextlib.suppress(ValueError):
            client.call(n)
    spans = list(memory.get_finished_spans())
    assert len(spans) == 5
    first = encode_spans(spans)
    assert first == upstream_encode(spans).SerializePartialToString()
    assert encode_spans(spans) == first  # from the caches: the same bytes again


def test_an_unencodable_value_is_left_out_like_upstream() -> None:
    spans = _spans({"big": 1 << 70, "ok": 1}, {}, False, 0)
    assert encode_spans(spans) == upstream_encode(spans).SerializePartialToString()


def test_the_exporter_posts_protobuf_a_real_parser_reads(server: LoopbackServer) -> None:
    spans = _spans({"a": "b"}, {"e": 1}, True, 2)
    exporter = OTLPSpanExporter(endpoint=server.url + "/v1/traces")
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    [received] = server.received
    assert received.path == "/v1/traces"
    assert received.headers["content-type"] == "application/x-protobuf"
    request = ExportTraceServiceRequest.FromString(received.body)
    names = [span.name for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]
    assert sorted(names) == sorted(span.name for span in spans)
    exporter.shutdown()
    assert exporter.export(spans) is SpanExportResult.FAILURE


@pytest.mark.parametrize("size", [1, 64])
def test_a_batch_over_max_request_size_is_not_sent(server: LoopbackServer, size: int) -> None:
    spans = _spans({"a": "b" * 200}, {}, False, 0)
    exporter = OTLPSpanExporter(endpoint=server.url + "/v1/traces", max_request_size=size)
    assert exporter.export(spans) is SpanExportResult.FAILURE
    assert server.received == []
