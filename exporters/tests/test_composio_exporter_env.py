"""`ComposioSpanExporter()` with no arguments: settings from the environment, garbage-proof, time-bounded."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence

import pytest
from helpers.loopback import LoopbackServer, Reply
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode
from sdk_telemetry_exporters import ComposioSpanExporter
from sdk_telemetry_exporters import attributes as attr

INVOCATIONS = "/metrics/invocations"
ERRORS = "/errors"


Loopback = LoopbackServer


@pytest.fixture
def hanging() -> Iterator[LoopbackServer]:
    """Accepts connections and reads requests, never answers."""
    with Loopback(lambda request: Reply(hang=True)) as running:
        yield running


def invocation_spans(names: Sequence[str] = ("Tools.execute",), failing: Sequence[str] = ()) -> list[ReadableSpan]:
    """Finished spans of the invocation scope, made by the real SDK."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({attr.SERVICE_VERSION: "9.9.9"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer(attr.INVOCATION_SCOPE)
    for name in names:
        tracer.start_span(name).end()
    for name in failing:
        span = tracer.start_span(name)
        exc = RuntimeError("it broke")
        span.record_exception(exc)
        span.set_attribute(attr.ERROR_TYPE, "RuntimeError")
        span.set_status(Status(StatusCode.ERROR, "RuntimeError: it broke"))
        span.end()
    spans = list(memory.get_finished_spans())
    provider.shutdown()
    return spans


def export_in_thread(
    exporter: ComposioSpanExporter, spans: Sequence[ReadableSpan], limit: float
) -> tuple[object, float]:
    """Run `exporter.export(spans)` on a thread; its result (or the exception) and how long it took."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(exporter.export(spans))
        except BaseException as exc:
            outcome.append(exc)

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit)
    elapsed = time.monotonic() - started
    assert not thread.is_alive(), f"export still blocked after {elapsed:.2f}s"
    return outcome[0], elapsed


def test_no_argument_exporter_reads_endpoint_api_key_headers_and_timeout(server, monkeypatch):
    monkeypatch.setenv("SDK_TELEMETRY_ENDPOINT", server.url + "/")
    monkeypatch.setenv("SDK_TELEMETRY_API_KEY", "sk-env-key")
    monkeypatch.setenv("SDK_TELEMETRY_HEADERS", "x-tenant=acme,x-note=two%20words")
    monkeypatch.setenv("SDK_TELEMETRY_TIMEOUT", "3.5")

    exporter = ComposioSpanExporter()
    assert exporter.endpoint == server.url
    result = exporter.export(invocation_spans(["Tools.execute"], failing=["Tools.fail"]))
    exporter.shutdown()

    assert result is SpanExportResult.SUCCESS
    assert {request.path for request in server.received} == {INVOCATIONS, ERRORS}
    for request in server.received:
        assert request.headers["x-api-key"] == "sk-env-key"
        assert request.headers["x-tenant"] == "acme"
        assert request.headers["x-note"] == "two words"
        assert request.headers["content-type"] == "application/json"
    [batch] = server.requests_to(INVOCATIONS)
    assert [payload["functionName"] for payload in batch.json()] == ["Tools.execute"]
    assert batch.json()[0]["source"]["version"] == "9.9.9"
    [error] = server.requests_to(ERRORS)
    assert error.json()["error"]["name"] == "RuntimeError"
    assert exporter.stats()["invocations_sent"] == 1
    assert exporter.stats()["errors_sent"] == 1


def test_timeout_from_the_environment_bounds_an_export_to_a_hanging_server(hanging, monkeypatch):
    monkeypatch.setenv("SDK_TELEMETRY_ENDPOINT", hanging.url)
    monkeypatch.setenv("SDK_TELEMETRY_TIMEOUT", "0.4")
    exporter = ComposioSpanExporter()

    result, elapsed = export_in_thread(exporter, invocation_spans(["A.one", "A.two"], failing=["A.bad"]), limit=10)
    exporter.shutdown()

    assert result is SpanExportResult.FAILURE
    assert elapsed < 2 * 0.4 + 1.5, f"export to a hanging server took {elapsed:.2f}s with a 0.4s timeout"
    assert elapsed >= 0.35, f"export gave up after {elapsed:.2f}s, before its timeout"
    assert hanging.received, "the request never reached the server"


def test_timeout_argument_bounds_an_export_to_a_hanging_server(hanging):
    exporter = ComposioSpanExporter(endpoint=hanging.url, timeout=0.3)
    result, elapsed = export_in_thread(exporter, invocation_spans(["A.one"]), limit=10)
    exporter.shutdown()

    assert result is SpanExportResult.FAILURE
    assert elapsed < 2 * 0.3 + 1.5, f"export took {elapsed:.2f}s with a 0.3s timeout"
    assert hanging.received


def test_explicit_arguments_win_over_the_environment(server, monkeypatch):
    with Loopback() as other:
        monkeypatch.setenv("SDK_TELEMETRY_ENDPOINT", other.url)
        monkeypatch.setenv("SDK_TELEMETRY_API_KEY", "from-env")
        exporter = ComposioSpanExporter(endpoint=server.url, api_key="from-code")
        assert exporter.export(invocation_spans()) is SpanExportResult.SUCCESS
        exporter.shutdown()
        assert other.received == []
    [request] = server.received
    assert request.headers["x-api-key"] == "from-code"


def test_without_an_endpoint_it_sends_nowhere_and_does_not_raise():
    exporter = ComposioSpanExporter()
    assert exporter.endpoint is None
    assert exporter.export(invocation_spans()) is SpanExportResult.FAILURE
    assert exporter.stats()["requests"] == 0
    exporter.shutdown()


@pytest.mark.parametrize(
    "env",
    [
        {"SDK_TELEMETRY_TIMEOUT": "abc"},
        {"SDK_TELEMETRY_TIMEOUT": "-3"},
        {"SDK_TELEMETRY_TIMEOUT": "0"},
        {"SDK_TELEMETRY_TIMEOUT": "nan"},
        {"SDK_TELEMETRY_TIMEOUT": "inf"},
        {"SDK_TELEMETRY_HEADERS": "novalue"},
        {"SDK_TELEMETRY_HEADERS": "=x,,%%%,k=%ZZ"},
        {"SDK_TELEMETRY_HEADERS": "x-bad=%E2%82%AC"},
        {"SDK_TELEMETRY_HEADERS": "x-bad=a%0D%0Ab"},
        {"SDK_TELEMETRY_ENDPOINT": "not a url"},
        {"SDK_TELEMETRY_OTLP_FALLBACK": "maybe"},
    ],
    ids=lambda env: ",".join(f"{k[14:]}={v}" for k, v in env.items()),
)
def test_constructor_and_export_never_raise_with_garbage_values(server, env, monkeypatch):
    monkeypatch.setenv("SDK_TELEMETRY_ENDPOINT", server.url)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    exporter = ComposioSpanExporter()
    result, _ = export_in_thread(exporter, invocation_spans(["A.one"]), limit=15)
    exporter.shutdown()
    assert isinstance(result, SpanExportResult), f"export raised {result!r}"


@pytest.mark.parametrize("value", ["abc", "-3", "0", "nan", "inf", "1e999"])
def test_a_garbage_timeout_falls_back_to_the_default_and_still_delivers(server, monkeypatch, value):
    monkeypatch.setenv("SDK_TELEMETRY_ENDPOINT", server.url)
    monkeypatch.setenv("SDK_TELEMETRY_TIMEOUT", value)
    exporter = ComposioSpanExporter()
    result, _ = export_in_thread(exporter, invocation_spans(["A.one"]), limit=15)
    exporter.shutdown()

    assert result is SpanExportResult.SUCCESS, f"SDK_TELEMETRY_TIMEOUT={value}: export gave {result!r}"
    assert [payload["functionName"] for payload in server.requests_to(INVOCATIONS)[0].json()] == ["A.one"]


@pytest.mark.parametrize("bad", ["novalue", "=x", "x-bad=%E2%82%AC", "x-bad=a%0D%0Ab"])
def test_a_malformed_header_is_left_out_and_the_rest_still_delivered(server, monkeypatch, bad):
    monkeypatch.setenv("SDK_TELEMETRY_ENDPOINT", server.url)
    monkeypatch.setenv("SDK_TELEMETRY_HEADERS", f"x-good=1,{bad}")
    exporter = ComposioSpanExporter()
    result, _ = export_in_thread(exporter, invocation_spans(["A.one"]), limit=15)
    exporter.shutdown()

    assert result is SpanExportResult.SUCCESS, f"SDK_TELEMETRY_HEADERS=x-good=1,{bad}: export gave {result!r}"
    [request] = server.requests_to(INVOCATIONS)
    assert request.headers["x-good"] == "1"
    assert "x-bad" not in request.headers
