"""Finished spans made by the real SDK, for the exporters' tests."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState


def varied_spans(
    attributes: dict[str, object], event_attributes: dict[str, object], remote: bool, status: int
) -> list[ReadableSpan]:
    """Spans of every shape OTLP encodes: two scopes, a remote or local parent with trace state, a link,
    an event, a status, nested and empty attributes, an empty name."""
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
        outer.add_event("step", event_attributes)  # type: ignore[arg-type]
        outer.set_status(Status(StatusCode(status), "broke" if status == 2 else None))
        with other.start_as_current_span("inner", kind=SpanKind.CLIENT) as inner:
            inner.set_attribute("nested", {"a": [1, 2], "b": "x"})  # type: ignore[arg-type]
        with tracer.start_as_current_span("", attributes={"": "empty key", "none": []}):
            pass
    return list(memory.get_finished_spans())
