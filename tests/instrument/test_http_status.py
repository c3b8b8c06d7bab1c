"""The HTTP outcome of a failed call: the status the exception carries is `http.response.status_code`
on the call's span, and the SDK's own error code stays apart in `sdk_telemetry.error.code` (never
the status number). Real exceptions of the real `openai`, `anthropic` and `stripe` packages from
real calls against loopback fakes, and of `requests`, `httpx` and `httpx2`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import pytest
import requests
import stripe
from anthropic.resources.messages import Messages
from openai.resources.chat.completions import Completions
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from exporters.tests.helpers.loopback import LoopbackServer, Received, Reply
from sdk_telemetry import configure_telemetry, instrument
from tests.helpers.llm_api import MODEL, FakeLLMAPI

STATUS = "http.response.status_code"
CODE = "sdk_telemetry.error.code"
MESSAGES = [{"role": "user", "content": "Say hello"}]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    configure_telemetry(exporter="none", http_spans=False)
    yield exporter


@pytest.fixture
def api() -> Iterator[FakeLLMAPI]:
    with FakeLLMAPI() as running:
        yield running


def _span(exporter: InMemorySpanExporter, name: str) -> dict[str, Any]:
    [span] = [span for span in exporter.get_finished_spans() if span.name in (name, f"{__name__}.{name}")]
    return dict(span.attributes or {})


def _outcome(attributes: dict[str, Any]) -> tuple[Any, Any, Any]:
    return attributes.get("error.type"), attributes.get(STATUS), attributes.get(CODE)


def test_openai_rate_limit_error_status_and_code_apart(api, spans):
    instrument(Completions)
    api.fail(429)
    client = openai.OpenAI(api_key="sk-test", base_url=api.openai_url, max_retries=0)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
    assert _outcome(_span(spans, "Completions.create")) == ("openai.RateLimitError", 429, "rate_limit_exceeded")


def test_openai_server_error_without_a_code_records_the_body_error_type(api, spans):
    instrument(Completions)
    api.fail(500, code="")  # OpenAI's 5xx bodies carry a `type` and no `code`
    client = openai.OpenAI(api_key="sk-test", base_url=api.openai_url, max_retries=0)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
    assert _outcome(_span(spans, "Completions.create")) == ("openai.InternalServerError", 500, "requests")


def test_anthropic_rate_limit_error_records_the_error_type_of_its_body(api, spans):
    instrument(Messages)
    api.fail(429, code="rate_limit_error")
    client = anthropic.Anthropic(api_key="sk-ant-test", base_url=api.url, max_retries=0)
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(model=MODEL, max_tokens=16, messages=MESSAGES)  # type: ignore[arg-type]
    assert _outcome(_span(spans, "Messages.create")) == ("anthropic.RateLimitError", 429, "rate_limit_error")


def _stripe_card_declined(request: Received) -> Reply:
    body = {"error": {"type": "card_error", "code": "card_declined", "message": "Your card was declined."}}
    return Reply(status=402, body=json.dumps(body).encode())


def test_stripe_card_error_from_a_real_request(spans):
    with LoopbackServer(_stripe_card_declined) as server:
        client = stripe.StripeClient("sk_test_123", base_addresses={"api": server.url}, max_network_retries=0)
        instrument(type(client.v1.customers))
        with pytest.raises(stripe.CardError):
            client.v1.customers.retrieve("cus_1")
        assert [request.path for request in server.received] == ["/v1/customers/cus_1"]
    assert _outcome(_span(spans, "CustomerService.retrieve")) == ("stripe._error.CardError", 402, "card_declined")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (stripe.RateLimitError("Too many requests", http_status=429, code="rate_limit"), (429, "rate_limit")),
        (stripe.InvalidRequestError("No such customer", "id", code="resource_missing", http_status=404),
         (404, "resource_missing")),
        (stripe.APIConnectionError("Network down"), (None, None)),
    ],
)  # fmt: skip
def test_stripe_errors_constructed_directly(spans, error, expected):
    def charge() -> None:
        raise error

    instrumented = instrument(charge)
    with pytest.raises(type(error)):
        instrumented()
    [span] = spans.get_finished_spans()
    assert _outcome(dict(span.attributes or {}))[1:] == expected


def _raise_for_status_requests(url: str) -> None:
    requests.get(url, timeout=5).raise_for_status()


def _raise_for_status_httpx(url: str) -> None:
    httpx.get(url, timeout=5).raise_for_status()


def _raise_for_status_httpx2(url: str) -> None:
    httpx2.get(url, timeout=5).raise_for_status()


@pytest.mark.parametrize(
    ("fetch", "error_type"),
    [
        (_raise_for_status_requests, "requests.exceptions.HTTPError"),
        (_raise_for_status_httpx, "httpx.HTTPStatusError"),
        (_raise_for_status_httpx2, "httpx2.HTTPStatusError"),
    ],
)
def test_http_libraries_status_errors_carry_the_responses_status(spans, fetch: Callable[[str], None], error_type):
    with LoopbackServer(lambda request: Reply(status=503)) as server:
        instrumented = instrument(fetch)
        with pytest.raises(Exception) as raised:
            instrumented(server.url + "/busy")
    [span] = spans.get_finished_spans()
    assert _outcome(dict(span.attributes or {})) == (error_type, 503, None)
    assert type(raised.value).__module__.split(".")[0] == error_type.split(".")[0]


class _StatusAsCode(Exception):
    """An SDK that names its HTTP status `code` (an int), next to the status."""

    def __init__(self) -> None:
        super().__init__("busy")
        self.code = 429
        self.status_code = 429


class _Tripwire(Exception):
    """An exception whose status and response are properties: reading them would run host code."""

    reads: list[str] = []  # noqa: RUF012 - shared on purpose: what the properties saw

    @property
    def status_code(self) -> int:
        self.reads.append("status_code")
        raise RuntimeError("a property of the host ran")

    @property
    def response(self) -> Any:
        self.reads.append("response")
        return requests.get("http://127.0.0.1:9/never", timeout=1)

    def __getattr__(self, name: str) -> Any:
        self.reads.append(name)
        raise AttributeError(name)


class _ClassLevelStatus(Exception):
    status_code = 503


@pytest.mark.parametrize(("error", "expected"), [(_StatusAsCode(), (429, None)), (_ClassLevelStatus(), (503, None))])
def test_the_status_number_is_never_the_error_code(spans, error, expected):
    def call() -> None:
        raise error

    with pytest.raises(type(error)):
        instrument(call)()
    [span] = spans.get_finished_spans()
    assert _outcome(dict(span.attributes or {}))[1:] == expected


def test_properties_and_getattr_of_the_exception_are_never_run(spans):
    def call() -> None:
        raise _Tripwire("no")

    with pytest.raises(_Tripwire):
        instrument(call)()
    assert [name for name in _Tripwire.reads if name != "__notes__"] == []  # (traceback's own look-up)
    span: ReadableSpan = spans.get_finished_spans()[0]
    assert STATUS not in (span.attributes or {}) and CODE not in (span.attributes or {})
    assert (span.attributes or {})["error.type"].endswith("_Tripwire")
