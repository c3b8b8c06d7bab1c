"""HTTP child spans, through the real requests, httpx and httpx2 against a loopback server: a
request outside any instrumented call is the host's (no span, no trace header); inside one it is
a CLIENT child span of the call's span, with trace headers only when propagation is on; the
libraries are restored exactly at shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import httpx2
import pytest
import requests
import requests.adapters
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from exporters.tests.helpers.loopback import LoopbackServer, Reply
from sdk_telemetry import configure_telemetry, instrument
from sdk_telemetry.http import HTTP_SCOPE
from tests.helpers.processes import run_python

TRACE_HEADERS = ("traceparent", "tracestate", "baggage")


def _requests_get(url: str) -> int:
    return requests.get(url, timeout=5).status_code


def _httpx_get(url: str) -> int:
    with httpx.Client() as client:
        return client.get(url, timeout=5).status_code


def _httpx2_get(url: str) -> int:
    with httpx2.Client() as client:
        return client.get(url, timeout=5).status_code


def _httpx_async_get(url: str) -> int:
    async def get() -> int:
        async with httpx.AsyncClient() as client:
            return (await client.get(url, timeout=5)).status_code

    return asyncio.run(get())


def _httpx2_async_get(url: str) -> int:
    async def get() -> int:
        async with httpx2.AsyncClient() as client:
            return (await client.get(url, timeout=5)).status_code

    return asyncio.run(get())


SENDERS: dict[str, Callable[[str], int]] = {
    "requests": _requests_get,
    "httpx": _httpx_get,
    "httpx-async": _httpx_async_get,
    "httpx2": _httpx2_get,
    "httpx2-async": _httpx2_async_get,
}


class Client:
    """An SDK client whose one method sends a request with the library it is given."""

    def fetch(self, send: Callable[[str], int], url: str) -> int:
        return send(url)


class AsyncClient:
    async def fetch(self, url: str) -> int:
        async with httpx2.AsyncClient() as client:
            return (await client.get(url, timeout=5)).status_code


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    yield exporter


def _http_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.kind is SpanKind.CLIENT]


def _trace_headers(server: LoopbackServer) -> list[dict[str, str]]:
    return [{k: v for k, v in request.headers.items() if k in TRACE_HEADERS} for request in server.received]


@pytest.mark.parametrize("library", SENDERS)
def test_a_host_request_outside_any_instrumented_call_is_untouched(server, spans, library):
    configure_telemetry(exporter="none", http_propagation=True)  # even with propagation on
    instrument(Client)
    assert SENDERS[library](server.url + "/host") == 200
    assert [request.path for request in server.received] == ["/host"]
    assert _trace_headers(server) == [{}]
    assert spans.get_finished_spans() == ()


@pytest.mark.parametrize("library", SENDERS)
def test_a_host_request_under_the_hosts_own_span_is_untouched(server, spans, library):
    configure_telemetry(exporter="none", http_propagation=True)
    with trace.get_tracer("host").start_as_current_span("host work"):
        assert SENDERS[library](server.url + "/host") == 200
    assert _trace_headers(server) == [{}]
    assert [span.name for span in spans.get_finished_spans()] == ["host work"]


@pytest.mark.parametrize("library", SENDERS)
def test_a_request_inside_an_instrumented_call_is_its_child_span_without_trace_headers(server, spans, library):
    configure_telemetry(exporter="none")
    instrument(Client)
    assert Client().fetch(SENDERS[library], server.url + "/v1/items") == 200
    [call] = [span for span in spans.get_finished_spans() if span.name == "Client.fetch"]
    [http] = _http_spans(spans)
    assert http.parent is not None and http.parent.span_id == call.context.span_id
    assert http.context.trace_id == call.context.trace_id
    assert http.instrumentation_scope is not None and http.instrumentation_scope.name == HTTP_SCOPE
    assert http.name == "GET"
    attributes = dict(http.attributes or {})
    attributes.pop("session.id")  # the forwarder tags every span of an application's own provider
    assert attributes == {
        "http.request.method": "GET",
        "url.full": server.url + "/v1/items",
        "server.address": "127.0.0.1",
        "server.port": server.port,
        "http.response.status_code": 200,
        "network.protocol.version": "1.1",
    }
    assert http.status.status_code is StatusCode.UNSET
    assert _trace_headers(server) == [{}]


@pytest.mark.parametrize("library", SENDERS)
def test_with_propagation_on_the_request_carries_its_spans_traceparent(server, spans, library, monkeypatch):
    monkeypatch.setenv("SDK_TELEMETRY_HTTP_PROPAGATION", "true")
    configure_telemetry(exporter="none")
    instrument(Client)
    Client().fetch(SENDERS[library], server.url + "/v1/items")
    [http] = _http_spans(spans)
    [headers] = _trace_headers(server)
    context = http.context
    assert headers == {"traceparent": f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"}
    assert context.trace_flags.sampled


@pytest.mark.parametrize("library", SENDERS)
def test_a_request_under_a_span_started_inside_a_call_is_a_child_of_that_span(server, spans, library):
    configure_telemetry(exporter="none")

    class Sdk:
        def fetch(self, url: str) -> int:
            with trace.get_tracer("the sdk's own tracing").start_as_current_span("sdk request"):
                return SENDERS[library](url)

    instrument(Sdk)
    Sdk().fetch(server.url)
    finished = {span.name: span for span in spans.get_finished_spans()}
    assert sorted(finished) == ["GET", "Sdk.fetch", "sdk request"]
    assert finished["sdk request"].parent.span_id == finished["Sdk.fetch"].context.span_id
    assert finished["GET"].parent.span_id == finished["sdk request"].context.span_id
    assert _trace_headers(server) == [{}]


def test_beside_upstreams_requests_instrumentation_a_request_is_one_span(server, spans):
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    configure_telemetry(exporter="none")
    instrument(Client)
    instrumentor = RequestsInstrumentor()
    instrumentor.instrument()
    try:
        Client().fetch(_requests_get, server.url)
    finally:
        instrumentor.uninstrument()
    http = _http_spans(spans)
    assert [span.instrumentation_scope.name for span in http] == ["opentelemetry.instrumentation.requests"]


def test_an_async_instrumented_call_parents_its_requests(server, spans):
    configure_telemetry(exporter="none", http_propagation=True)
    instrument(AsyncClient)
    assert asyncio.run(AsyncClient().fetch(server.url + "/a")) == 200
    [call] = [span for span in spans.get_finished_spans() if span.name == "AsyncClient.fetch"]
    [http] = _http_spans(spans)
    assert http.parent is not None and http.parent.span_id == call.context.span_id
    assert _trace_headers(server)[0]["traceparent"].split("-")[2] == f"{http.context.span_id:016x}"


@pytest.mark.parametrize("library", SENDERS)
def test_an_error_status_and_a_failed_request_set_error_type(spans, library):
    def not_found(request: Any) -> Reply:
        return Reply(status=404)

    configure_telemetry(exporter="none")
    instrument(Client)
    with LoopbackServer(not_found) as server:
        assert Client().fetch(SENDERS[library], server.url + "/missing") == 404
        port = server.port
    with pytest.raises(Exception) as raised:
        Client().fetch(SENDERS[library], f"http://127.0.0.1:{port}/gone")  # the server is closed
    missing, refused = _http_spans(spans)
    assert (missing.attributes or {})["error.type"] == "404"
    assert (missing.attributes or {})["http.response.status_code"] == 404
    assert missing.status.status_code is StatusCode.ERROR
    assert (refused.attributes or {})["error.type"] == type(raised.value).__qualname__
    assert "http.response.status_code" not in (refused.attributes or {})
    assert refused.status.status_code is StatusCode.ERROR


def test_the_full_url_is_scrubbed_of_credentials(server, spans):
    configure_telemetry(exporter="none")
    instrument(Client)
    url = server.url.replace("http://", "http://alice:s3cret@") + "/v1/items?api_key=sk-live-123&page=2"
    Client().fetch(_requests_get, url)
    [http] = _http_spans(spans)
    full = (http.attributes or {})["url.full"]
    assert "s3cret" not in full and "sk-live-123" not in full
    assert full.startswith("http://[REDACTED:url_credentials]@127.0.0.1:") and "/v1/items?" in full


PATCHED = (
    (requests.adapters.HTTPAdapter, "send"),
    (httpx.HTTPTransport, "handle_request"),
    (httpx.AsyncHTTPTransport, "handle_async_request"),
    (httpx2.HTTPTransport, "handle_request"),
    (httpx2.AsyncHTTPTransport, "handle_async_request"),
)


def test_shutdown_restores_each_librarys_own_function_and_http_spans_off_patches_nothing(server, spans):
    originals = [cls.__dict__[name] for cls, name in PATCHED]
    telemetry = configure_telemetry(exporter="none")
    assert all(cls.__dict__[name] is not original for (cls, name), original in zip(PATCHED, originals, strict=True))
    processor = trace.get_tracer("probe").span_processor  # type: ignore[attr-defined]
    assert "on_start" in vars(processor)  # notes the spans started inside calls
    telemetry.shutdown()
    assert [cls.__dict__[name] for cls, name in PATCHED] == originals
    assert "on_start" not in vars(processor)
    telemetry = configure_telemetry(exporter="none", http_spans=False)
    assert [cls.__dict__[name] for cls, name in PATCHED] == originals
    instrument(Client)
    Client().fetch(_requests_get, server.url)
    assert _http_spans(spans) == []
    telemetry.shutdown()
    configure_telemetry(exporter="none")  # and on again after a shutdown
    Client().fetch(_httpx2_get, server.url)
    assert len(_http_spans(spans)) == 1


def test_a_library_is_patched_at_its_import_never_imported_early(server):
    result = run_python(
        f"""
        import sys
        from sdk_telemetry import configure_telemetry, instrument
        telemetry = configure_telemetry(exporter="none")
        print("imported early:", [name for name in ("requests", "httpx", "httpx2") if name in sys.modules])
        import httpx2

        class Client:
            def fetch(self):
                return httpx2.get("{server.url}/late", timeout=5).status_code

        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        spans = InMemorySpanExporter()
        telemetry.tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
        instrument(Client)
        Client().fetch()
        print("spans:", sorted(span.name for span in spans.get_finished_spans()))
        """
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "imported early: []" in result.stdout
    assert "spans: ['Client.fetch', 'GET']" in result.stdout
