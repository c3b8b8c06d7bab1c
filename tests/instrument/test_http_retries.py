"""An SDK's own retries are visible: each attempt of the real `openai` and `anthropic` packages
(which send through `httpx2`) is an HTTP child span of the instrumented call, against the
loopback fake of their APIs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import anthropic
import openai
import pytest
from anthropic.resources.messages import AsyncMessages, Messages
from openai.resources.chat.completions import AsyncCompletions, Completions
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from sdk_telemetry import configure_telemetry, instrument
from sdk_telemetry.http import HTTP_SCOPE
from tests.helpers.llm_api import MODEL, FakeLLMAPI

MESSAGES = [{"role": "user", "content": "Say hello"}]


@pytest.fixture
def api() -> Iterator[FakeLLMAPI]:
    with FakeLLMAPI() as running:
        yield running


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    yield exporter


def _call_and_attempts(exporter: InMemorySpanExporter, name: str) -> tuple[ReadableSpan, list[ReadableSpan]]:
    """The call's span and its HTTP spans, in order; each HTTP span's parent is the call's span or
    (`anthropic`) the SDK's own span for the whole request, itself the call's child."""
    finished = exporter.get_finished_spans()
    [call] = [span for span in finished if span.name == name]
    by_id = {span.context.span_id: span for span in finished}
    attempts = [span for span in finished if span.instrumentation_scope.name == HTTP_SCOPE]
    for attempt in attempts:
        assert attempt.kind is SpanKind.CLIENT and attempt.parent is not None
        parent = by_id[attempt.parent.span_id]
        if parent is not call:
            assert parent.instrumentation_scope.name != HTTP_SCOPE
            assert parent.parent is not None and parent.parent.span_id == call.context.span_id
    return call, sorted(attempts, key=lambda span: span.start_time or 0)


def _statuses(attempts: list[ReadableSpan]) -> list[object]:
    return [(span.attributes or {}).get("http.response.status_code") for span in attempts]


def test_openai_retries_are_child_spans_of_the_create_call(api, spans):
    configure_telemetry(exporter="none")
    instrument(Completions)
    api.fail(429, times=2)
    client = openai.OpenAI(api_key="sk-test", base_url=api.openai_url, max_retries=2)
    reply = client.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
    assert reply.choices[0].message.content == "Hello world"
    call, attempts = _call_and_attempts(spans, "Completions.create")
    assert _statuses(attempts) == [429, 429, 200]
    assert all(span.parent is not None and span.parent.span_id == call.context.span_id for span in attempts)
    assert [span.name for span in attempts] == ["POST"] * 3
    assert {(span.attributes or {})["url.full"] for span in attempts} == {api.openai_url + "/chat/completions"}
    assert len(api.requests) == 3 and all("traceparent" not in request.headers for request in api.requests)


def test_async_openai_retries_are_child_spans_too(api, spans):
    configure_telemetry(exporter="none")
    instrument(AsyncCompletions)
    api.fail(429, times=2)

    async def create() -> object:
        async with openai.AsyncOpenAI(api_key="sk-test", base_url=api.openai_url, max_retries=2) as client:
            return await client.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]

    asyncio.run(create())
    _, attempts = _call_and_attempts(spans, "AsyncCompletions.create")
    assert _statuses(attempts) == [429, 429, 200]


def test_anthropic_retries_are_child_spans_of_the_create_call(api, spans):
    configure_telemetry(exporter="none")
    instrument(Messages)
    api.fail(429, times=2, code="rate_limit_error")
    client = anthropic.Anthropic(api_key="sk-ant-test", base_url=api.url, max_retries=2)
    reply = client.messages.create(model=MODEL, max_tokens=16, messages=MESSAGES)  # type: ignore[arg-type]
    assert reply.content[0].text == "Hello world"  # type: ignore[union-attr]
    call, attempts = _call_and_attempts(spans, "Messages.create")
    assert _statuses(attempts) == [429, 429, 200]
    [own] = [span for span in spans.get_finished_spans() if span.name == "anthropic.messages.create"]
    assert own.parent is not None and own.parent.span_id == call.context.span_id  # anthropic's span, between
    assert {(span.attributes or {})["url.full"] for span in attempts} == {api.url + "/v1/messages"}


def test_async_anthropic_retries_are_child_spans_too(api, spans):
    configure_telemetry(exporter="none")
    instrument(AsyncMessages)
    api.fail(429, times=2, code="rate_limit_error")

    async def create() -> object:
        async with anthropic.AsyncAnthropic(api_key="sk-ant-test", base_url=api.url, max_retries=2) as client:
            return await client.messages.create(model=MODEL, max_tokens=16, messages=MESSAGES)  # type: ignore[arg-type]

    asyncio.run(create())
    _, attempts = _call_and_attempts(spans, "AsyncMessages.create")
    assert _statuses(attempts) == [429, 429, 200]


def test_with_propagation_on_each_attempt_carries_its_own_span_id(api, spans):
    configure_telemetry(exporter="none", http_propagation=True)
    instrument(Completions)
    api.fail(429, times=1)
    client = openai.OpenAI(api_key="sk-test", base_url=api.openai_url, max_retries=1)
    client.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
    _, attempts = _call_and_attempts(spans, "Completions.create")
    sent = [request.headers["traceparent"].split("-")[2] for request in api.requests]
    assert sent == [f"{span.context.span_id:016x}" for span in attempts]
