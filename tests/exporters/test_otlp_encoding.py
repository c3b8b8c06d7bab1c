"""The direct OTLP encoder writes the very bytes upstream's protobuf encoder writes, for spans of
every shape and for instrumented calls (its exporter against a real endpoint, and the guard of
the code copied from upstream, are in `exporters/tests/test_otlp.py`)."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as upstream_encode
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sdk_telemetry_exporters.otlp import encode_spans

from exporters.tests.helpers.spans import varied_spans
from sdk_telemetry import configure_telemetry, instrument

scalars = st.one_of(
    st.text(max_size=20),
    st.booleans(),
    st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1),
    st.floats(allow_nan=False),
)
values = st.one_of(scalars, st.lists(st.text(max_size=5), max_size=3), st.lists(st.integers(-5, 5), max_size=3))
attribute_maps = st.dictionaries(st.text(min_size=1, max_size=10), values, max_size=5)


@settings(max_examples=60, deadline=None)
@given(attribute_maps, attribute_maps, st.booleans(), st.sampled_from([0, 1, 2]))
def test_bytes_equal_upstreams_for_any_attributes_events_links_and_status(
    attributes: dict[str, object], event_attributes: dict[str, object], remote: bool, status: int
) -> None:
    spans = varied_spans(attributes, event_attributes, remote, status)
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
