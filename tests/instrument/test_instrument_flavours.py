"""The four flavours of instrumented call (sync, async, generator, async generator), static and class
methods, and the current span inside and between their steps, against the real OpenTelemetry SDK."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import INVALID_SPAN_ID, StatusCode
from sdk_telemetry_exporters import attributes as attr

from sdk_telemetry import configure_telemetry, instrument

CONTEXT_ERRORS = ("different Context", "Failed to detach context", "context detach failed")

# --- fixtures and helpers -------------------------------------------------------------------------


@pytest.fixture
def spans(nested_children: None, caplog: pytest.LogCaptureFixture) -> InMemorySpanExporter:
    """Every finished span, captured synchronously; logs captured down to DEBUG."""
    caplog.set_level(logging.DEBUG)
    configure_telemetry(exporter="none")
    exporter = InMemorySpanExporter()
    trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(exporter))  # type: ignore[attr-defined]
    instrument(Service)
    return exporter


def current_span_id() -> int:
    return trace.get_current_span().get_span_context().span_id


def names(exporter: InMemorySpanExporter) -> list[str]:
    return [span.name for span in exporter.get_finished_spans()]


def only(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    matching = [span for span in exporter.get_finished_spans() if span.name == name]
    assert len(matching) == 1, f"expected one span {name!r}, got {names(exporter)}"
    return matching[0]


def assert_no_context_errors(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        text = record.getMessage() + (str(record.exc_info[1]) if record.exc_info else "")
        assert not any(marker in text for marker in CONTEXT_ERRORS), text


async def settle() -> None:
    """Let the event loop run the callbacks and tasks it has scheduled (async-generator finalizers)."""
    for _ in range(10):
        await asyncio.sleep(0)


# --- the code under instrumentation ---------------------------------------------------------------


class Service:
    def sync(self, value, seen):
        seen.append(current_span_id())
        return value

    def helper(self):
        return current_span_id()

    async def fetch(self, value, seen, delay=0.0):
        seen.append(current_span_id())
        await asyncio.sleep(delay)
        seen.append(current_span_id())
        return value

    async def pipeline(self, tag, log):
        await asyncio.sleep(0)
        await self.stage(tag, log)
        await asyncio.sleep(0)
        await self.stage(tag, log)
        return tag

    async def stage(self, tag, log):
        log.append((tag, "before", current_span_id()))
        await asyncio.sleep(0)
        log.append((tag, "after", current_span_id()))

    def deferred(self, value, seen):
        """A plain function that hands back a coroutine."""
        return self._later(value, seen)

    async def _later(self, value, seen):
        await asyncio.sleep(0.01)
        seen.append(current_span_id())
        return value

    def stream(self, n, seen):
        try:
            for i in range(n):
                seen.append(current_span_id())
                yield i
            seen.append(current_span_id())
        finally:
            seen.append(("finally", current_span_id()))

    def stream_calling_helper(self, n):
        for _ in range(n):
            yield self.helper()

    def failing_stream(self, exc):
        yield 1
        raise exc

    def echo(self):
        received = []
        while True:
            value = yield len(received)
            if value is None:
                return received
            received.append(value)

    def forgiving_stream(self):
        try:
            yield 1
        except ValueError as exc:
            yield f"caught {exc}"
        yield 3

    async def astream(self, n, seen):
        try:
            for i in range(n):
                seen.append(current_span_id())
                await asyncio.sleep(0)
                seen.append(current_span_id())
                yield i
        finally:
            seen.append(("finally", current_span_id()))

    async def failing_astream(self, exc):
        yield 1
        await asyncio.sleep(0)
        raise exc

    async def aecho(self):
        received = []
        while True:
            value = yield len(received)
            if value is None:
                return
            received.append(value)

    async def astream_calling_helper(self, n):
        for _ in range(n):
            await asyncio.sleep(0)
            yield self.helper()

    @staticmethod
    def static_add(a, b):
        return a + b

    @classmethod
    def make(cls, value):
        return cls, value

    @staticmethod
    async def static_fetch(value):
        await asyncio.sleep(0)
        return value, current_span_id()

    @classmethod
    async def class_fetch(cls, value):
        await asyncio.sleep(0)
        return cls, value

    @staticmethod
    def static_stream(n):
        yield from range(n)

    @classmethod
    def class_stream(cls, n):
        for i in range(n):
            yield cls, i

    @staticmethod
    async def static_astream(n):
        for i in range(n):
            yield i

    @classmethod
    async def class_astream(cls, n):
        for i in range(n):
            yield cls, i


class SubService(Service):
    pass


# --- sync -----------------------------------------------------------------------------------------


def test_sync_call_span_is_current_inside_the_body_only(spans, caplog):
    seen: list[int] = []
    before = current_span_id()
    assert Service().sync("v", seen) == "v"
    span = only(spans, "Service.sync")
    assert seen == [span.context.span_id]
    assert current_span_id() == before
    assert span.end_time >= span.start_time
    assert_no_context_errors(caplog)


# --- async ----------------------------------------------------------------------------------------


async def test_async_call_span_covers_the_await_and_stays_current_across_it(spans, caplog):
    seen: list[int] = []
    before = current_span_id()
    assert await Service().fetch("v", seen, delay=0.02) == "v"
    span = only(spans, "Service.fetch")
    assert seen == [span.context.span_id, span.context.span_id]
    assert (span.end_time - span.start_time) >= 15_000_000  # the 20 ms await is inside the span
    assert current_span_id() == before
    assert span.status.status_code == StatusCode.UNSET
    assert_no_context_errors(caplog)


async def test_async_call_is_child_of_the_awaiting_span(spans, caplog):
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("request") as request:
        await Service().fetch("v", [])
        assert current_span_id() == request.get_span_context().span_id
    span = only(spans, "Service.fetch")
    assert span.parent.span_id == request.get_span_context().span_id
    assert_no_context_errors(caplog)


async def test_concurrent_async_calls_keep_their_own_context(spans, caplog):
    log: list[tuple[str, str, int]] = []
    service = Service()
    assert await asyncio.gather(*(service.pipeline(tag, log) for tag in "abc")) == ["a", "b", "c"]
    finished = spans.get_finished_spans()
    pipeline_ids = {span.context.span_id for span in finished if span.name == "Service.pipeline"}
    stages = {span.context.span_id: span for span in finished if span.name == "Service.stage"}
    assert len(pipeline_ids) == 3
    assert len(stages) == 6
    # each stage saw its own span before and after its await, whatever ran in between
    assert {span_id for _, _, span_id in log} == set(stages)
    assert sorted(phase for _, phase, _ in log) == ["after"] * 6 + ["before"] * 6
    parent_of_tag: dict[str, int] = {}
    for tag, _, span_id in log:
        parent = stages[span_id].parent.span_id
        assert parent in pipeline_ids
        assert parent_of_tag.setdefault(tag, parent) == parent
    assert len(set(parent_of_tag.values())) == 3  # one pipeline span per tag
    assert_no_context_errors(caplog)


async def test_async_error_propagates_and_marks_the_span(spans, caplog):
    class Broken:
        async def run(self, exc):
            await asyncio.sleep(0)
            raise exc

    instrument(Broken)
    error = TimeoutError("slow upstream")
    with pytest.raises(TimeoutError) as raised:
        await Broken().run(error)
    assert raised.value is error
    span = only(spans, "Broken.run")
    assert span.status.status_code == StatusCode.ERROR
    assert [event.name for event in span.events] == ["exception"]
    assert_no_context_errors(caplog)


async def test_sync_function_returning_a_coroutine_is_traced_until_awaited(spans, caplog):
    seen: list[int] = []
    awaitable = Service().deferred("v", seen)
    assert names(spans) == []
    assert await awaitable == "v"
    span = only(spans, "Service.deferred")
    assert seen == [span.context.span_id]
    assert (span.end_time - span.start_time) >= 5_000_000
    assert_no_context_errors(caplog)


# --- generators -----------------------------------------------------------------------------------


def test_generator_span_lasts_until_exhausted(spans, caplog):
    seen: list[object] = []
    generator = Service().stream(3, seen)
    assert next(generator) == 0
    assert next(generator) == 1
    assert names(spans) == []
    assert list(generator) == [2]
    span = only(spans, "Service.stream")
    assert attr.GENERATOR_END not in span.attributes
    assert span.status.status_code == StatusCode.UNSET
    assert_no_context_errors(caplog)


def test_generator_span_is_current_in_the_body_and_not_in_the_consumer(spans, caplog):
    tracer = trace.get_tracer("test")
    seen: list[object] = []
    consumer_ids = []
    with tracer.start_as_current_span("consumer") as consumer:
        consumer_id = consumer.get_span_context().span_id
        for _ in Service().stream(3, seen):
            consumer_ids.append(current_span_id())
        consumer_ids.append(current_span_id())
    span = only(spans, "Service.stream")
    assert span.parent.span_id == consumer_id
    assert seen == [span.context.span_id] * 4 + [("finally", span.context.span_id)]
    assert consumer_ids == [consumer_id] * 4
    assert_no_context_errors(caplog)


def test_calls_inside_a_generator_are_its_children(spans, caplog):
    helper_ids = list(Service().stream_calling_helper(2))
    stream = only(spans, "Service.stream_calling_helper")
    helpers = [span for span in spans.get_finished_spans() if span.name == "Service.helper"]
    assert [span.context.span_id for span in helpers] == helper_ids
    assert all(span.parent.span_id == stream.context.span_id for span in helpers)
    assert all(span.context.trace_id == stream.context.trace_id for span in helpers)
    assert_no_context_errors(caplog)


def test_interleaved_generators_each_see_their_own_span(spans, caplog):
    first_seen: list[object] = []
    second_seen: list[object] = []
    service = Service()
    first, second = service.stream(2, first_seen), service.stream(2, second_seen)
    between = []
    for expected in range(2):
        assert next(first) == expected
        between.append(current_span_id())
        assert next(second) == expected
        between.append(current_span_id())
    assert list(first) == []
    assert list(second) == []
    first_span, second_span = spans.get_finished_spans()
    assert first_seen == [first_span.context.span_id] * 3 + [("finally", first_span.context.span_id)]
    assert second_seen == [second_span.context.span_id] * 3 + [("finally", second_span.context.span_id)]
    assert first_span.context.span_id != second_span.context.span_id
    assert between == [INVALID_SPAN_ID] * 4
    assert_no_context_errors(caplog)


def test_closing_a_generator_ends_its_span_as_closed(spans, caplog):
    seen: list[object] = []
    generator = Service().stream(5, seen)
    assert next(generator) == 0
    generator.close()
    span = only(spans, "Service.stream")
    assert span.attributes[attr.GENERATOR_END] == "closed"
    assert span.status.status_code == StatusCode.UNSET
    # the generator's cleanup ran with its span current
    assert seen[-1] == ("finally", span.context.span_id)
    assert_no_context_errors(caplog)


def test_breaking_out_of_a_for_loop_ends_the_span_as_closed(spans, caplog):
    seen: list[object] = []
    for item in Service().stream(5, seen):
        if item == 1:
            break
    span = only(spans, "Service.stream")
    assert span.attributes[attr.GENERATOR_END] == "closed"
    assert seen[-1] == ("finally", span.context.span_id)
    assert_no_context_errors(caplog)


def test_an_abandoned_generator_ends_its_span_as_abandoned(spans, caplog):
    generator = Service().stream(3, [])
    assert names(spans) == []
    del generator
    gc.collect()
    span = only(spans, "Service.stream")
    assert span.attributes[attr.GENERATOR_END] == "abandoned"
    assert_no_context_errors(caplog)


def test_a_started_generator_collected_in_a_cycle_still_ends_its_span(spans, caplog):
    class Holder:
        pass

    seen: list[object] = []
    holder = Holder()
    holder.self = holder  # type: ignore[attr-defined]
    holder.generator = Service().stream(5, seen)  # type: ignore[attr-defined]
    assert next(holder.generator) == 0  # type: ignore[attr-defined]
    del holder
    gc.collect()
    span = only(spans, "Service.stream")
    assert span.attributes[attr.GENERATOR_END] in ("closed", "abandoned")
    assert seen[-1][0] == "finally"
    assert_no_context_errors(caplog)


def test_generator_error_marks_its_span(spans, caplog):
    error = ValueError("bad row")
    generator = Service().failing_stream(error)
    assert next(generator) == 1
    with pytest.raises(ValueError) as raised:
        next(generator)
    assert raised.value is error
    span = only(spans, "Service.failing_stream")
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes[attr.ERROR_TYPE] == "ValueError"
    assert [event.name for event in span.events] == ["exception"]
    assert attr.GENERATOR_END not in span.attributes
    assert_no_context_errors(caplog)


def test_generator_send_and_return_value_pass_through(spans, caplog):
    def consumer(service):
        result = yield from service.echo()
        return result

    outer = consumer(Service())
    assert next(outer) == 0
    assert outer.send("a") == 1
    assert outer.send("b") == 2
    with pytest.raises(StopIteration) as stop:
        outer.send(None)
    assert stop.value.value == ["a", "b"]
    span = only(spans, "Service.echo")
    assert attr.GENERATOR_END not in span.attributes
    assert_no_context_errors(caplog)


def test_exceptions_thrown_into_a_generator_reach_its_body(spans, caplog):
    generator = Service().forgiving_stream()
    assert next(generator) == 1
    assert generator.throw(ValueError("retry")) == "caught retry"
    assert list(generator) == [3]
    span = only(spans, "Service.forgiving_stream")
    assert span.status.status_code == StatusCode.UNSET
    assert_no_context_errors(caplog)


def test_generator_started_inside_a_span_is_its_child_even_when_consumed_outside(spans, caplog):
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("producer") as producer:
        generator = Service().stream(2, [])
    assert list(generator) == [0, 1]
    assert only(spans, "Service.stream").parent.span_id == producer.get_span_context().span_id
    assert_no_context_errors(caplog)


# --- async generators -----------------------------------------------------------------------------


async def test_async_generator_span_lasts_until_exhausted_and_is_current_in_its_body(spans, caplog):
    tracer = trace.get_tracer("test")
    seen: list[object] = []
    consumer_ids = []
    with tracer.start_as_current_span("consumer") as consumer:
        consumer_id = consumer.get_span_context().span_id
        generator = Service().astream(3, seen)
        assert await generator.__anext__() == 0
        consumer_ids.append(current_span_id())
        assert names(spans) == []
        async for _ in generator:
            consumer_ids.append(current_span_id())
    span = only(spans, "Service.astream")
    assert span.parent.span_id == consumer_id
    assert seen == [span.context.span_id] * 6 + [("finally", span.context.span_id)]
    assert consumer_ids == [consumer_id] * 3
    assert attr.GENERATOR_END not in span.attributes
    assert_no_context_errors(caplog)


async def test_calls_inside_an_async_generator_are_its_children(spans, caplog):
    helper_ids = [item async for item in Service().astream_calling_helper(2)]
    stream = only(spans, "Service.astream_calling_helper")
    helpers = [span for span in spans.get_finished_spans() if span.name == "Service.helper"]
    assert [span.context.span_id for span in helpers] == helper_ids
    assert all(span.parent.span_id == stream.context.span_id for span in helpers)
    assert_no_context_errors(caplog)


async def test_async_generator_stepped_from_different_tasks(spans, caplog):
    seen: list[object] = []
    generator = Service().astream(3, seen)

    async def step():
        return await generator.__anext__()

    assert await asyncio.create_task(step()) == 0
    assert await asyncio.create_task(step()) == 1
    assert await generator.__anext__() == 2
    with pytest.raises(StopAsyncIteration):
        await asyncio.create_task(step())
    span = only(spans, "Service.astream")
    assert seen[:6] == [span.context.span_id] * 6
    assert current_span_id() == INVALID_SPAN_ID
    assert_no_context_errors(caplog)


async def test_concurrent_async_generators_keep_their_own_context(spans, caplog):
    service = Service()
    logs: list[list[object]] = [[], [], []]

    async def drain(log):
        return [item async for item in service.astream(3, log)]

    assert await asyncio.gather(*(drain(log) for log in logs)) == [[0, 1, 2]] * 3
    span_ids = {span.context.span_id for span in spans.get_finished_spans()}
    assert len(span_ids) == 3
    for log in logs:
        assert len(set(log)) == 2  # its own span id, and the ("finally", id) marker
        assert log[0] in span_ids
        assert log[-1] == ("finally", log[0])
    assert_no_context_errors(caplog)


async def test_aclose_ends_the_async_generator_span_as_closed(spans, caplog):
    seen: list[object] = []
    generator = Service().astream(5, seen)
    assert await generator.__anext__() == 0
    await generator.aclose()
    span = only(spans, "Service.astream")
    assert span.attributes[attr.GENERATOR_END] == "closed"
    assert seen[-1] == ("finally", span.context.span_id)
    assert_no_context_errors(caplog)


async def test_breaking_out_of_async_for_ends_the_span_as_closed(spans, caplog):
    seen: list[object] = []
    async for item in Service().astream(5, seen):
        if item == 1:
            break
    await settle()
    span = only(spans, "Service.astream")
    assert span.attributes[attr.GENERATOR_END] == "closed"
    assert seen[-1] == ("finally", span.context.span_id)
    assert_no_context_errors(caplog)


async def test_an_abandoned_async_generator_ends_its_span_as_abandoned(spans, caplog):
    generator = Service().astream(3, [])
    del generator
    gc.collect()
    await settle()
    span = only(spans, "Service.astream")
    assert span.attributes[attr.GENERATOR_END] == "abandoned"
    assert_no_context_errors(caplog)


async def test_async_generator_error_marks_its_span(spans, caplog):
    error = LookupError("gone")
    generator = Service().failing_astream(error)
    assert await generator.__anext__() == 1
    with pytest.raises(LookupError) as raised:
        await generator.__anext__()
    assert raised.value is error
    span = only(spans, "Service.failing_astream")
    assert span.status.status_code == StatusCode.ERROR
    assert [event.name for event in span.events] == ["exception"]
    assert attr.GENERATOR_END not in span.attributes
    assert_no_context_errors(caplog)


async def test_async_generator_asend_passes_values_through(spans, caplog):
    generator = Service().aecho()
    assert await generator.asend(None) == 0
    assert await generator.asend("a") == 1
    assert await generator.asend("b") == 2
    with pytest.raises(StopAsyncIteration):
        await generator.asend(None)
    assert attr.GENERATOR_END not in only(spans, "Service.aecho").attributes
    assert_no_context_errors(caplog)


async def test_exceptions_thrown_into_an_async_generator_reach_its_body(spans, caplog):
    seen: list[object] = []
    generator = Service().astream(3, seen)
    assert await generator.__anext__() == 0
    error = ValueError("stop now")
    with pytest.raises(ValueError) as raised:
        await generator.athrow(error)
    assert raised.value is error
    span = only(spans, "Service.astream")
    assert span.status.status_code == StatusCode.ERROR
    assert seen[-1] == ("finally", span.context.span_id)
    assert_no_context_errors(caplog)


# --- static and class methods ---------------------------------------------------------------------


def test_static_and_class_methods_through_the_class_and_an_instance(spans, caplog):
    service = Service()
    assert Service.static_add(1, 2) == 3
    assert service.static_add(3, 4) == 7
    assert Service.make("x") == (Service, "x")
    assert service.make("y") == (Service, "y")
    assert names(spans) == ["Service.static_add", "Service.static_add", "Service.make", "Service.make"]
    assert_no_context_errors(caplog)


def test_class_methods_bind_the_subclass(spans, caplog):
    assert SubService.make("x") == (SubService, "x")
    assert SubService().make("y") == (SubService, "y")
    instrument(SubService)
    assert SubService.make("z") == (SubService, "z")
    assert list(SubService.class_stream(1)) == [(SubService, 0)]
    assert names(spans) == ["Service.make", "Service.make", "SubService.make", "SubService.class_stream"]
    assert_no_context_errors(caplog)


async def test_async_static_and_class_methods(spans, caplog):
    value, inner_id = await Service.static_fetch("v")
    assert value == "v"
    assert await Service().class_fetch("w") == (Service, "w")
    assert inner_id == only(spans, "Service.static_fetch").context.span_id
    assert names(spans) == ["Service.static_fetch", "Service.class_fetch"]
    assert_no_context_errors(caplog)


async def test_generator_static_and_class_methods(spans, caplog):
    assert list(Service.static_stream(2)) == [0, 1]
    assert list(Service().class_stream(2)) == [(Service, 0), (Service, 1)]
    assert [item async for item in Service.static_astream(2)] == [0, 1]
    assert [item async for item in Service.class_astream(1)] == [(Service, 0)]
    assert names(spans) == [
        "Service.static_stream",
        "Service.class_stream",
        "Service.static_astream",
        "Service.class_astream",
    ]
    for span in spans.get_finished_spans():
        assert attr.GENERATOR_END not in span.attributes
    assert_no_context_errors(caplog)
