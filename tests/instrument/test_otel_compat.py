"""`sdk_telemetry.otel_compat`: the import-time checks say the truth about the installed OpenTelemetry,
a missing name turns its check off, and with any (or every) private name "missing" the instrumented
calls still produce the right spans (names, parents, status, exceptions) and metrics through the
public API, against the real SDK."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.metrics import _internal as metrics_internal
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, SynchronousMultiSpanProcessor, sampling
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, ProxyTracer, SpanContext, StatusCode, TraceFlags
from opentelemetry.trace import propagation as trace_propagation

from sdk_telemetry import configure_telemetry, instrument, otel_compat
from sdk_telemetry.instrument import calls
from sdk_telemetry.instrument.call_span import CallSpan

FLAGS = (
    "SPAN_KEY_AVAILABLE",
    "CONTEXT_VAR_AVAILABLE",
    "PROXY_TRACER_AVAILABLE",
    "SAMPLER_INTROSPECTION_AVAILABLE",
    "CALL_SPAN_AVAILABLE",
    "ON_ENDING_AVAILABLE",
    "FROZEN_ATTRIBUTES_AVAILABLE",
    "METER_PROVIDER_AVAILABLE",
    "SUPPRESS_KEY_AVAILABLE",
)

# --- the code under instrumentation ---------------------------------------------------------------


class Boom(Exception):
    pass


def current_span_id() -> int:
    return trace.get_current_span().get_span_context().span_id


class Client:
    def get(self, seen: list[int]) -> str:
        seen.append(current_span_id())
        return self.inner()

    def inner(self) -> str:
        trace.get_current_span().set_attribute("app.step", "inner")
        return "ok"

    def fail(self) -> None:
        raise Boom("no luck")

    async def fetch(self, seen: list[int]) -> str:
        seen.append(current_span_id())
        await asyncio.sleep(0)
        seen.append(current_span_id())
        return self.inner()

    async def afail(self) -> None:
        await asyncio.sleep(0)
        raise Boom("not async either")

    def stream(self, n: int, seen: list[int]) -> Iterator[int]:
        for i in range(n):
            seen.append(current_span_id())
            yield i
        self.inner()

    def failing_stream(self) -> Iterator[int]:
        yield 1
        raise Boom("stream broke")

    async def astream(self, n: int, seen: list[int]) -> Any:
        for i in range(n):
            await asyncio.sleep(0)
            seen.append(current_span_id())
            yield i
        self.inner()


# --- fixtures and helpers -------------------------------------------------------------------------


@pytest.fixture
def reader(nested_children: None) -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def spans(reader: InMemoryMetricReader) -> Iterator[InMemorySpanExporter]:
    """Every finished span, captured synchronously from the global SDK TracerProvider."""
    configure_telemetry(exporter="none", metric_readers=[reader])
    exporter = InMemorySpanExporter()
    trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(exporter))
    instrument(Client)
    yield exporter


@pytest.fixture
def missing(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """`missing("SPAN_KEY_AVAILABLE", ...)`: those features' private names are "not there" from now on."""

    def turn_off(*flags: str) -> None:
        for flag in flags:
            monkeypatch.setattr(otel_compat, flag, False)
        calls.refresh()

    yield turn_off
    monkeypatch.undo()
    calls.refresh()


def only(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    matching = [span for span in exporter.get_finished_spans() if span.name == name]
    assert len(matching) == 1, f"expected one span {name!r}, got {[s.name for s in exporter.get_finished_spans()]}"
    return matching[0]


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def invocations(reader: InMemoryMetricReader) -> dict[tuple[str, str], int]:
    """The invocation counter's points: (function, outcome) -> count."""
    counts = {}
    data = reader.get_metrics_data()
    for resource_metrics in data.resource_metrics if data else []:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name == "sdk_telemetry.invocations":
                    for point in metric.data.data_points:
                        attributes = dict(point.attributes or {})
                        counts[(str(attributes["function.name"]), str(attributes["outcome"]))] = point.value
    return counts


def exercise(exporter: InMemorySpanExporter) -> None:
    """Sync, async, generator and async-generator calls, nested and failing, and what they exported."""
    client = Client()
    tracer = trace.get_tracer("app")

    with tracer.start_as_current_span("request") as request:
        seen: list[int] = []
        assert client.get(seen) == "ok"
        with pytest.raises(Boom, match="no luck"):
            client.fail()
        fetched: list[int] = []
        assert asyncio.run(client.fetch(fetched)) == "ok"
        with pytest.raises(Boom):
            asyncio.run(client.afail())
        streamed: list[int] = []
        assert list(client.stream(2, streamed)) == [0, 1]
        with pytest.raises(Boom):
            list(client.failing_stream())
        astreamed: list[int] = []

        async def consume() -> list[int]:
            return [i async for i in client.astream(2, astreamed)]

        assert asyncio.run(consume()) == [0, 1]
        assert trace.get_current_span() is request  # every call left the context as it found it

    request_span = only(exporter, "request")
    for name in ("Client.get", "Client.fail", "Client.fetch", "Client.afail", "Client.stream"):
        span = only(exporter, name)
        assert span.parent is not None and span.parent.span_id == span_id(request_span), name
        assert span.context is not None and span.context.trace_id == request_span.context.trace_id

    # The current span inside each call is the call's own; a nested call is its child.
    inner_spans = [span for span in exporter.get_finished_spans() if span.name == "Client.inner"]
    assert len(inner_spans) == 4
    for outer_name, ids in (("Client.get", seen), ("Client.fetch", fetched), ("Client.stream", streamed)):
        outer = only(exporter, outer_name)
        assert set(ids) == {span_id(outer)}, outer_name
        assert any(inner.parent and inner.parent.span_id == span_id(outer) for inner in inner_spans), outer_name
    astream_span = only(exporter, "Client.astream")
    assert set(astreamed) == {span_id(astream_span)}
    assert all(dict(inner.attributes or {}).get("app.step") == "inner" for inner in inner_spans)

    # Status and exception of the failures; success stays unset.
    assert only(exporter, "Client.get").status.status_code is StatusCode.UNSET
    for name, message in (
        ("Client.fail", "no luck"),
        ("Client.afail", "not async either"),
        ("Client.failing_stream", "stream broke"),
    ):
        failed = only(exporter, name)
        assert failed.status.status_code is StatusCode.ERROR, name
        assert failed.status.description == f"Boom: {message}", name
        events = [event for event in failed.events if event.name == "exception"]
        assert len(events) == 1, name
        assert dict(events[0].attributes or {})["exception.type"].endswith("Boom"), name
        assert str(dict(failed.attributes or {})["error.type"]).endswith("Boom"), name


# --- the import-time checks ---------------------------------------------------------------------


def test_the_checks_report_every_feature_available_on_the_installed_version() -> None:
    assert otel_compat.report() == {**dict.fromkeys(FLAGS, True), "FAST_PATH_AVAILABLE": True}
    assert otel_compat._reasons == {}
    # What they found is what the installed packages hold.
    assert otel_compat.SPAN_KEY == trace_propagation._SPAN_KEY
    assert otel_compat.CONTEXT_VAR is otel_context._RUNTIME_CONTEXT._current_context
    assert otel_compat.SUPPRESS_INSTRUMENTATION_KEY == otel_context._SUPPRESS_INSTRUMENTATION_KEY
    state, key = otel_compat.meter_provider_slot()
    assert state is vars(metrics_internal) and state[key] is metrics_internal._METER_PROVIDER
    assert otel_compat.static_decision(sampling.ALWAYS_ON) is sampling.Decision.RECORD_AND_SAMPLE
    assert otel_compat.static_decision(sampling.ALWAYS_OFF) is sampling.Decision.DROP
    assert otel_compat.static_decision(sampling.TraceIdRatioBased(0.5)) is None
    root = sampling.TraceIdRatioBased(0.25)
    assert otel_compat.parent_based_delegates(sampling.ParentBased(root)) == (
        root,
        sampling.ALWAYS_ON,
        sampling.ALWAYS_OFF,
        sampling.ALWAYS_ON,
        sampling.ALWAYS_OFF,
    )
    multi = SynchronousMultiSpanProcessor()
    processors_state, processors_key = otel_compat.processors_slot(multi)
    assert processors_state[processors_key] is multi._span_processors


@pytest.mark.parametrize(
    ("check", "owner", "name"),
    [
        ("_check_span_key", trace_propagation, "_SPAN_KEY"),
        ("_check_context_var", otel_context, "_RUNTIME_CONTEXT"),
        ("_check_proxy_tracer", ProxyTracer, "_tracer"),
        ("_check_samplers", sampling.ALWAYS_ON, "_decision"),
        ("_check_samplers", sampling.ParentBased, "__init__"),
        ("_check_call_span", SdkTracer, "_is_enabled"),
        ("_check_call_span", SynchronousMultiSpanProcessor, "add_span_processor"),
        ("_check_on_ending", SpanProcessor, "_on_ending"),
        ("_check_frozen_attributes", BoundedAttributes, "__setitem__"),
        ("_check_meter_provider", metrics_internal, "_METER_PROVIDER"),
        ("_check_suppress_key", otel_context, "_SUPPRESS_INSTRUMENTATION_KEY"),
    ],
)
def test_a_check_is_off_when_what_it_relies_on_is_missing(
    monkeypatch: pytest.MonkeyPatch, check: str, owner: Any, name: str
) -> None:
    probe = getattr(otel_compat, check)
    assert otel_compat._check("probe", probe) is True
    if name == "__init__":  # a ParentBased that keeps its delegates under other names
        monkeypatch.setattr(owner, "__init__", lambda self, root, **_: setattr(self, "_the_root", root))
    elif name == "__setitem__":  # attributes that ignore their immutable flag
        monkeypatch.setattr(owner, "__setitem__", lambda self, key, value: None)
    elif name == "add_span_processor":  # processors kept in a list, changed in place
        monkeypatch.setattr(owner, "add_span_processor", lambda self, p: setattr(self, "_span_processors", [p]))
    else:
        monkeypatch.delattr(owner, name)
    reasons: dict[str, str] = {}
    monkeypatch.setattr(otel_compat, "_reasons", reasons)
    assert otel_compat._check("probe", probe) is False
    assert reasons["probe"]  # why, for the debug log


def test_a_fallback_is_logged_once_at_debug(
    missing: Callable[..., None], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(otel_compat, "_logged", set())
    caplog.set_level(logging.DEBUG, logger=otel_compat.__name__)
    missing("SPAN_KEY_AVAILABLE")
    missing("SPAN_KEY_AVAILABLE")
    otel_compat.context_with_span(otel_context.Context(), trace.INVALID_SPAN)
    notes = [record for record in caplog.records if "span key" in record.getMessage()]
    assert len(notes) == 1
    assert notes[0].levelno == logging.DEBUG and "public API" in notes[0].getMessage()


# --- the fallbacks, end to end ----------------------------------------------------------------------


def test_with_every_private_name_the_calls_take_the_lean_path(spans: InMemorySpanExporter) -> None:
    exercise(spans)
    assert all(type(span) is CallSpan for span in spans.get_finished_spans() if span.name.startswith("Client."))


@pytest.mark.parametrize("flag", [*FLAGS, "every"])
def test_with_a_private_name_missing_the_calls_still_make_the_right_spans(
    spans: InMemorySpanExporter, missing: Callable[..., None], flag: str
) -> None:
    missing(*(FLAGS if flag == "every" else (flag,)))
    exercise(spans)
    sdk_spans = flag in ("SPAN_KEY_AVAILABLE", "PROXY_TRACER_AVAILABLE", "SAMPLER_INTROSPECTION_AVAILABLE")
    if sdk_spans or flag in ("CALL_SPAN_AVAILABLE", "every"):
        # The SDK's own spans: the normal `tracer.start_span` path was taken.
        assert calls._factory is None
        assert not any(type(span) is CallSpan for span in spans.get_finished_spans())
    else:
        assert all(type(span) is CallSpan for span in spans.get_finished_spans() if span.name.startswith("Client."))
    if flag in ("PROXY_TRACER_AVAILABLE", "every"):
        assert isinstance(calls._resolved[1], ProxyTracer)
    if flag in ("SPAN_KEY_AVAILABLE", "SAMPLER_INTROSPECTION_AVAILABLE", "every"):
        assert calls._drops is None  # the sampler is asked for every span


def test_without_the_context_variable_calls_attach_through_the_api(
    spans: InMemorySpanExporter, missing: Callable[..., None]
) -> None:
    missing("CONTEXT_VAR_AVAILABLE")
    assert calls._attach_context is otel_context.attach and calls._reset_context is otel_context.detach
    exercise(spans)


def test_without_the_proxy_internals_spans_start_through_the_proxy(
    spans: InMemorySpanExporter, missing: Callable[..., None]
) -> None:
    missing("PROXY_TRACER_AVAILABLE")
    calls._tracer = trace.ProxyTracer(calls.attr.INVOCATION_SCOPE)
    Client().get([])
    assert isinstance(calls._resolved[1], ProxyTracer)
    assert only(spans, "Client.get").instrumentation_scope.name == calls.attr.INVOCATION_SCOPE


@pytest.mark.parametrize("flag", [None, "SAMPLER_INTROSPECTION_AVAILABLE", "SPAN_KEY_AVAILABLE"])
def test_a_parent_that_is_not_sampled_drops_every_call_under_it(
    spans: InMemorySpanExporter, missing: Callable[..., None], reader: InMemoryMetricReader, flag: str | None
) -> None:
    if flag:
        missing(flag)  # the sampler is asked for every span instead
    parent = NonRecordingSpan(SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(0)))
    token = otel_context.attach(trace.set_span_in_context(parent))
    try:
        client = Client()
        seen: list[int] = []
        for _ in range(2):
            assert client.get(seen) == "ok"
        assert asyncio.run(client.fetch([])) == "ok"
        assert list(client.stream(1, [])) == [0]
        with pytest.raises(Boom):
            client.fail()
    finally:
        otel_context.detach(token)
    assert spans.get_finished_spans() == ()
    if flag is None:
        assert set(seen) == {0xDEF}  # no span was made: they ran in the caller's context
    else:
        assert 0xDEF not in seen  # the SDK's non-recording child spans were current instead
    counts = invocations(reader)  # a MeterProvider is set: the calls are counted all the same
    assert counts[("Client.get", "success")] == 2 and counts[("Client.inner", "success")] == 4
    assert counts[("Client.fail", "error")] == 1


def test_without_the_meter_provider_global_the_metrics_go_through_the_api(
    spans: InMemorySpanExporter, missing: Callable[..., None], reader: InMemoryMetricReader
) -> None:
    missing("METER_PROVIDER_AVAILABLE")
    assert otel_compat.global_meter_provider() is metrics.get_meter_provider()
    Client().get([])
    with pytest.raises(Boom):
        Client().fail()
    counts = invocations(reader)
    assert counts[("Client.get", "success")] == 1 and counts[("Client.fail", "error")] == 1


@pytest.mark.parametrize("available", [True, False])
def test_the_suppressed_context_turns_instrumentations_off(missing: Callable[..., None], available: bool) -> None:
    if not available:
        missing("SUPPRESS_KEY_AVAILABLE")
    assert is_instrumentation_enabled()
    token = otel_context.attach(otel_compat.suppressed_context())
    try:
        assert not is_instrumentation_enabled()
    finally:
        otel_context.detach(token)


@pytest.mark.parametrize("available", [True, False])
def test_the_ending_step_reaches_processors_that_have_one(
    spans: InMemorySpanExporter, missing: Callable[..., None], available: bool
) -> None:
    class Ending(SpanProcessor):
        def __init__(self) -> None:
            self.ending: list[str] = []

        def _on_ending(self, span: Any) -> None:
            self.ending.append(span.name)

    ending = Ending()
    trace.get_tracer_provider().add_span_processor(ending)
    if not available:
        missing("ON_ENDING_AVAILABLE")
    Client().get([])
    assert only(spans, "Client.get").name == "Client.get"
    assert ending.ending == (["Client.inner", "Client.get"] if available else [])


@pytest.mark.parametrize("available", [True, False])
def test_attributes_written_in_a_call_are_kept_and_frozen_when_they_can_be(
    spans: InMemorySpanExporter, missing: Callable[..., None], available: bool
) -> None:
    if not available:
        missing("FROZEN_ATTRIBUTES_AVAILABLE")
    Client().get([])
    inner = only(spans, "Client.inner")
    assert type(inner) is CallSpan and dict(inner.attributes or {})["app.step"] == "inner"
    attributes = inner.attributes
    assert isinstance(attributes, BoundedAttributes)
    if available:
        with pytest.raises(TypeError):
            attributes["app.late"] = "no"
