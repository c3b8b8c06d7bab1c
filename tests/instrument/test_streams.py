"""Streams returned by instrumented calls, on the real `openai` and `anthropic` packages against a
loopback fake of their APIs: the span lasts as long as the stream, counts its items and times the
first one, and the caller still gets the SDK's own stream type."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import threading
import time
import types
from collections.abc import Iterator
from typing import Any
from unittest import mock

import anthropic
import httpx
import openai
import pytest
import urllib3
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from sdk_telemetry_exporters import attributes as attr

from sdk_telemetry import configure_telemetry, instrument
from sdk_telemetry.instrument import calls, streams
from tests.helpers.llm_api import MODEL, FakeLLMAPI

DELAY = 0.05
OPENAI_ITEMS = 4  # three content chunks and the finishing one ("[DONE]" is no item)
ANTHROPIC_ITEMS = 8  # message_start, block start, three deltas, block stop, message_delta, message_stop
ANTHROPIC_STREAM_ITEMS = 11  # a MessageStream adds a text event after each delta
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
def api() -> Iterator[FakeLLMAPI]:
    with FakeLLMAPI(chunk_delay=DELAY) as fake:
        yield fake


@pytest.fixture
def spans() -> InMemorySpanExporter:
    configure_telemetry(exporter="none", http_spans=False)
    exporter = InMemorySpanExporter()
    trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(exporter))  # type: ignore[attr-defined]
    instrument(openai.resources.chat.completions.Completions)
    instrument(openai.resources.chat.completions.AsyncCompletions)
    instrument(anthropic.resources.messages.Messages)
    instrument(anthropic.resources.messages.AsyncMessages)
    return exporter


def only(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    matching = [span for span in exporter.get_finished_spans() if span.name == name]
    assert len(matching) == 1, f"expected one {name!r}, got {[span.name for span in exporter.get_finished_spans()]}"
    return matching[0]


def open_spans(exporter: InMemorySpanExporter, name: str) -> bool:
    """True while no span `name` has ended (the SDKs' own spans, such as anthropic's, may have)."""
    return all(span.name != name for span in exporter.get_finished_spans())


def seconds(span: ReadableSpan) -> float:
    assert span.end_time is not None and span.start_time is not None
    return (span.end_time - span.start_time) / 1e9


def openai_client(api: FakeLLMAPI) -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-test", base_url=api.openai_url, max_retries=0)


def anthropic_client(api: FakeLLMAPI) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="sk-ant-test", base_url=api.url, max_retries=0)


def assert_whole_stream(span: ReadableSpan, items: int, delays: int) -> None:
    """The span lasted until the last item, counted them all, and timed the first (sent at once)."""
    assert span.attributes is not None
    assert seconds(span) >= delays * DELAY * 0.9, seconds(span)
    assert span.attributes[attr.STREAM_ITEMS] == items
    first = span.attributes[attr.STREAM_FIRST_ITEM_MS]
    assert isinstance(first, float) and 0 < first < seconds(span) * 1000 - DELAY * 1000
    assert attr.GENERATOR_END not in span.attributes
    assert span.status.status_code is not StatusCode.ERROR


# --- openai --------------------------------------------------------------------------------------


def test_an_openai_stream_keeps_its_type_and_its_span_covers_every_chunk(api, spans):
    stream = openai_client(api).chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    assert isinstance(stream, openai.Stream)
    assert isinstance(stream.response, httpx.Response) or stream.response.status_code == 200
    assert open_spans(spans, "Completions.create")  # still streaming: the span is open
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream)
    assert text == "Hello world"
    assert_whole_stream(only(spans, "Completions.create"), OPENAI_ITEMS, delays=OPENAI_ITEMS)


def test_a_plain_openai_reply_is_no_stream(api, spans):
    completion = openai_client(api).chat.completions.create(model=MODEL, messages=MESSAGES)
    assert type(completion) is openai.types.chat.ChatCompletion  # a pydantic model: iterable, not proxied
    span = only(spans, "Completions.create")
    assert span.attributes is not None and attr.STREAM_ITEMS not in span.attributes


def test_an_openai_stream_left_with_break_ends_when_closed_by_its_with_block(api, spans):
    with openai_client(api).chat.completions.create(model=MODEL, messages=MESSAGES, stream=True) as stream:
        assert isinstance(stream, openai.Stream)
        for _ in stream:
            break
        assert open_spans(spans, "Completions.create")
    span = only(spans, "Completions.create")
    assert span.attributes is not None
    assert span.attributes[attr.STREAM_ITEMS] == 1
    assert span.attributes[attr.GENERATOR_END] == "closed"


def test_an_openai_stream_closed_early_ends_its_span(api, spans):
    stream = openai_client(api).chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    next(stream)
    next(stream)
    stream.close()
    span = only(spans, "Completions.create")
    assert span.attributes is not None
    assert (span.attributes[attr.STREAM_ITEMS], span.attributes[attr.GENERATOR_END]) == (2, "closed")


def test_an_abandoned_openai_stream_ends_its_span_when_collected(api, spans):
    stream = openai_client(api).chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    for _ in stream:
        break
    assert open_spans(spans, "Completions.create")
    del stream
    gc.collect()
    span = only(spans, "Completions.create")
    assert span.attributes is not None
    assert (span.attributes[attr.STREAM_ITEMS], span.attributes[attr.GENERATOR_END]) == (1, "abandoned")


class Broken(Exception):
    pass


def test_an_error_while_streaming_ends_the_span_with_it(api, spans, monkeypatch):
    stream = openai_client(api).chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    real = stream.__wrapped__  # the SDK's own stream behind the proxy
    events = real._iterator

    def failing() -> Any:
        yield next(events)
        raise Broken("connection reset")

    real._iterator = failing()
    next(stream)
    with pytest.raises(Broken):
        next(stream)
    span = only(spans, "Completions.create")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert str(span.attributes[attr.ERROR_TYPE]).endswith("Broken") and span.attributes[attr.STREAM_ITEMS] == 1


def test_an_async_openai_stream_keeps_its_type_and_its_span_covers_every_chunk(api, spans):
    async def run() -> str:
        client = openai.AsyncOpenAI(api_key="sk-test", base_url=api.openai_url, max_retries=0)
        stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
        assert isinstance(stream, openai.AsyncStream)
        assert open_spans(spans, "AsyncCompletions.create")
        text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream])
        await client.close()
        return text

    assert asyncio.run(run()) == "Hello world"
    assert_whole_stream(only(spans, "AsyncCompletions.create"), OPENAI_ITEMS, delays=OPENAI_ITEMS)


def test_an_async_openai_stream_closed_early_ends_its_span(api, spans):
    async def run() -> None:
        client = openai.AsyncOpenAI(api_key="sk-test", base_url=api.openai_url, max_retries=0)
        async with await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True) as stream:
            async for _ in stream:
                break
            assert open_spans(spans, "AsyncCompletions.create")
        await client.close()

    asyncio.run(run())
    span = only(spans, "AsyncCompletions.create")
    assert span.attributes is not None
    assert (span.attributes[attr.STREAM_ITEMS], span.attributes[attr.GENERATOR_END]) == (1, "closed")


# --- anthropic -----------------------------------------------------------------------------------


def test_an_anthropic_stream_from_create_covers_every_event(api, spans):
    stream = anthropic_client(api).messages.create(model=MODEL, max_tokens=10, messages=MESSAGES, stream=True)
    assert isinstance(stream, anthropic.Stream)
    kinds = [event.type for event in stream]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert_whole_stream(only(spans, "Messages.create"), ANTHROPIC_ITEMS, delays=ANTHROPIC_ITEMS - 1)


def test_an_anthropic_message_stream_manager_spans_its_with_block(api, spans):
    manager = anthropic_client(api).messages.stream(model=MODEL, max_tokens=10, messages=MESSAGES)
    assert isinstance(manager, anthropic.lib.streaming.MessageStreamManager)
    with manager as stream:
        assert isinstance(stream, anthropic.lib.streaming.MessageStream)
        assert [event.type for event in stream][-1] == "message_stop"
        assert stream.get_final_text() == "Hello world"  # the stream's own methods work through the proxy
        assert stream.response.status_code == 200
    assert_whole_stream(only(spans, "Messages.stream"), ANTHROPIC_STREAM_ITEMS, delays=ANTHROPIC_ITEMS - 1)


def test_an_anthropic_text_stream_ends_the_span_at_the_end_of_the_with_block(api, spans):
    with anthropic_client(api).messages.stream(model=MODEL, max_tokens=10, messages=MESSAGES) as stream:
        assert "".join(stream.text_stream) == "Hello world"
        stream.until_done()
        assert open_spans(spans, "Messages.stream")
    span = only(spans, "Messages.stream")
    assert seconds(span) >= (ANTHROPIC_ITEMS - 1) * DELAY * 0.9


def test_an_async_anthropic_message_stream_manager_spans_its_with_block(api, spans):
    async def run() -> str:
        client = anthropic.AsyncAnthropic(api_key="sk-ant-test", base_url=api.url, max_retries=0)
        async with client.messages.stream(model=MODEL, max_tokens=10, messages=MESSAGES) as stream:
            assert isinstance(stream, anthropic.lib.streaming.AsyncMessageStream)
            assert open_spans(spans, "AsyncMessages.stream")
            kinds = [event.type async for event in stream]  # exhausted: the span ends
        await client.close()
        return kinds[-1]

    assert asyncio.run(run()) == "message_stop"
    assert_whole_stream(only(spans, "AsyncMessages.stream"), ANTHROPIC_STREAM_ITEMS, delays=ANTHROPIC_ITEMS - 1)


def test_an_async_anthropic_stream_from_create_covers_every_event(api, spans):
    async def run() -> int:
        client = anthropic.AsyncAnthropic(api_key="sk-ant-test", base_url=api.url, max_retries=0)
        stream = await client.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES, stream=True)
        assert isinstance(stream, anthropic.AsyncStream)
        count = len([event async for event in stream])
        await client.close()
        return count

    assert asyncio.run(run()) == ANTHROPIC_ITEMS
    assert_whole_stream(only(spans, "AsyncMessages.create"), ANTHROPIC_ITEMS, delays=ANTHROPIC_ITEMS - 1)


# --- which results are streams -------------------------------------------------------------------


class Results:
    """Plain values, and values that are streams, as an SDK method may return them."""

    def __init__(self, value: Any = None) -> None:
        self.value = value

    def give(self) -> Any:
        return self.value

    def numbers(self, n: int) -> Any:
        return (i for i in range(n))  # a plain function returning a generator: an iterator

    @contextlib.contextmanager
    def transaction(self) -> Iterator[str]:
        time.sleep(DELAY)
        yield "tx"
        time.sleep(DELAY)


@pytest.fixture
def results_spans() -> InMemorySpanExporter:
    configure_telemetry(exporter="none", http_spans=False)
    exporter = InMemorySpanExporter()
    trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(exporter))  # type: ignore[attr-defined]
    instrument(Results)
    return exporter


def plain_values(api: FakeLLMAPI) -> list[Any]:
    with httpx.Client() as http:
        response = http.get(api.url + "/v1/models")
    pool = urllib3.PoolManager()
    return [
        [1, 2],
        {"a": 1},
        "text",
        b"bytes",
        (1,),
        {1},
        None,
        openai.types.Model(id="m", created=0, object="model", owned_by="me"),  # pydantic: iterable, no iterator
        response,  # an httpx response
        pool.request("GET", api.url + "/v1/models"),  # urllib3's: an io.IOBase iterator
        httpx.Client(),  # a client: a context manager that closes on its own
        io.BytesIO(b"file"),
        threading.Lock(),  # a C context manager
        mock.MagicMock(),  # a host's test double
    ]


def test_plain_values_are_returned_as_they_are_and_their_span_ends_at_return(api, results_spans):
    values = plain_values(api)
    for value in values:
        assert Results(value).give() is value
    finished = results_spans.get_finished_spans()
    assert [span.name for span in finished] == ["Results.give"] * len(values)
    assert all(attr.STREAM_ITEMS not in (span.attributes or {}) for span in finished)


def test_a_returned_generator_is_a_stream(results_spans):
    numbers = Results().numbers(3)
    assert isinstance(numbers, types.GeneratorType)
    assert open_spans(results_spans, "Results.numbers")
    assert sum(numbers) == 3
    span = only(results_spans, "Results.numbers")
    assert span.attributes is not None and span.attributes[attr.STREAM_ITEMS] == 3


def test_a_returned_context_manager_that_does_its_work_inside_the_with_block_spans_it(results_spans):
    with Results().transaction() as tx:
        assert tx == "tx"
        assert open_spans(results_spans, "Results.transaction")
    span = only(results_spans, "Results.transaction")
    assert seconds(span) >= 2 * DELAY * 0.9
    assert span.attributes is not None and attr.GENERATOR_END not in span.attributes


def test_the_rule_is_decided_once_per_result_type(results_spans, monkeypatch):
    asked: list[type] = []
    decide = streams.stream_proxy_class
    monkeypatch.setattr(streams, "stream_proxy_class", lambda cls: asked.append(cls) or decide(cls))
    monkeypatch.setattr(calls, "_result_kinds", calls._ResultKinds())

    class Fresh:
        pass

    for _ in range(3):
        Results(Fresh()).give()
        Results([1]).give()
    assert asked == [Fresh, list]
