"""No telemetry about telemetry: with the HTTP library our exporters send through instrumented (real
`requests` under the `otlp` exporter, real `urllib3` under `composio`), the exports make no spans, so
what reaches the endpoint after any number of flushes is the user's calls and nothing else; and any
call made while OpenTelemetry's instrumentation is suppressed makes no span."""

from __future__ import annotations

import gzip
from collections import Counter
from typing import Any

import pytest
import requests
import urllib3
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from exporters.tests.helpers.loopback import LoopbackServer
from sdk_telemetry import configure_telemetry, instrument
from sdk_telemetry.otel_compat import suppressed_context

TRACES = "/v1/traces"
INVOCATIONS = "/metrics/invocations"


def otlp_spans(server: LoopbackServer) -> list[Any]:
    """Every span the OTLP endpoint received (protobuf `Span` messages)."""
    spans = []
    for request in server.requests_to(TRACES):
        body = gzip.decompress(request.body) if request.headers.get("content-encoding") == "gzip" else request.body
        message = ExportTraceServiceRequest()
        message.ParseFromString(body)
        for resource_spans in message.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                spans.extend(scope_spans.spans)
    return spans


def flush_several_times(telemetry: Any, times: int = 3) -> None:
    for _ in range(times):
        assert telemetry.flush(timeout=5)


@pytest.mark.parametrize("nested_calls", ["collapse", "children"])
def test_requests_under_the_otlp_exporter_exports_only_the_users_calls(server, monkeypatch, nested_calls):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", server.url + TRACES)
    telemetry = configure_telemetry(exporter="otlp", http_spans=False, batch_interval=0.05, nested_calls=nested_calls)
    session = requests.Session()  # (made first: its constructor's own `mount` calls are no user calls)
    instrument(requests.Session)  # the OTLP exporter posts through a requests.Session
    user_calls = 0
    for round_calls in (3, 2):
        for _ in range(round_calls):
            assert session.get(server.url + "/user").status_code == 200
        user_calls += round_calls
        flush_several_times(telemetry)
        spans = otlp_spans(server)
        roots = [span for span in spans if not span.parent_span_id]
        # One trace per user call (children, when kept, are in it); none made by an export.
        assert Counter(span.name for span in roots) == Counter({"Session.get": user_calls})
        assert len({span.trace_id for span in spans}) == user_calls
        if nested_calls == "collapse":
            assert len(spans) == user_calls
    assert len(server.requests_to("/user")) == user_calls


def test_urllib3_under_the_composio_exporter_exports_only_the_users_calls(server):
    telemetry = configure_telemetry(exporter="composio", endpoint=server.url, http_spans=False, batch_interval=0.05)
    instrument(urllib3.PoolManager)  # the exporters' transport sends through urllib3 pools
    instrument(urllib3.HTTPConnectionPool)
    pool = urllib3.PoolManager()
    for calls in (3, 5):
        while len(server.requests_to("/user")) < calls:
            assert pool.request("GET", server.url + "/user").status == 200
        flush_several_times(telemetry)
        invocations = [item for request in server.requests_to(INVOCATIONS) for item in request.json()]
        assert [item["functionName"] for item in invocations] == ["PoolManager.request"] * calls


class Client:
    def ping(self) -> str:
        return "pong"

    def numbers(self):
        yield 1


def test_a_call_made_while_instrumentation_is_suppressed_makes_no_span_and_no_metrics():
    reader = InMemoryMetricReader()
    configure_telemetry(exporter="none", http_spans=False, metric_readers=[reader])
    memory = InMemorySpanExporter()
    trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(memory))  # type: ignore[attr-defined]
    instrument(Client)
    token = otel_context.attach(suppressed_context())
    try:
        assert Client().ping() == "pong"
        assert list(Client().numbers()) == [1]
    finally:
        otel_context.detach(token)
    assert memory.get_finished_spans() == ()
    data = reader.get_metrics_data()
    points = [
        point
        for resource in (data.resource_metrics if data else [])
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "sdk_telemetry.invocations"
        for point in metric.data.data_points
    ]
    assert points == []
    Client().ping()  # and outside the suppression, a span again
    assert [span.name for span in memory.get_finished_spans()] == ["Client.ping"]
