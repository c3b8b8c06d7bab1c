"""The OTLP fallback: spans the Composio endpoint cannot take go to the OTLP endpoint instead."""

from __future__ import annotations

import gzip
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from exporters.tests.helpers.loopback import LoopbackServer, Received, Reply
from sdk_telemetry import configure_telemetry, instrument

TRACES = "/v1/traces"


Loopback = LoopbackServer


class Client:
    def ping(self) -> str:
        return "pong"

    def fail(self) -> None:
        raise ValueError("nope")


@pytest.fixture
def otlp(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackServer]:
    """An OTLP/HTTP receiver, named by OTEL_EXPORTER_OTLP_TRACES_ENDPOINT."""
    with Loopback() as running:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", running.url + TRACES)
        yield running


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def otlp_span_names(requests: list[Received]) -> list[str]:
    names = []
    for request in requests:
        body = gzip.decompress(request.body) if request.headers.get("content-encoding") == "gzip" else request.body
        message = ExportTraceServiceRequest()
        message.ParseFromString(body)
        for resource_spans in message.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                names.extend(span.name for span in scope_spans.spans)
    return names


def run_calls(endpoint: str, **settings: Any) -> Any:
    telemetry = configure_telemetry(exporter="composio", endpoint=endpoint, batch_interval=0.05, **settings)
    instrument(Client)
    client = Client()
    client.ping()
    client.ping()
    with pytest.raises(ValueError):
        client.fail()
    return telemetry


def composio_stats(telemetry: Any) -> dict[str, Any]:
    return telemetry.stats()["exporters"]["composio"]["exporter"]


@pytest.mark.parametrize("primary", ["refused", 500, 503, 404])
def test_spans_go_to_the_otlp_endpoint_when_the_composio_endpoint_fails(otlp, primary):
    if primary == "refused":
        telemetry = run_calls(closed_port_url())
        assert telemetry.flush(timeout=10)
        primary_requests = None
    else:
        with Loopback(lambda request: Reply(status=primary)) as failing:
            telemetry = run_calls(failing.url)
            assert telemetry.flush(timeout=10)
            primary_requests = list(failing.received)

    names = otlp_span_names(otlp.wait_for(TRACES))
    assert sorted(names) == ["Client.fail", "Client.ping", "Client.ping"], f"primary {primary}: OTLP got {names}"
    for request in otlp.requests_to(TRACES):
        assert request.headers["content-type"] == "application/x-protobuf"
    if primary in (500, 503):
        assert primary_requests is not None and len(primary_requests) >= 2, "a 5xx answer should be retried"
    if primary == 404:
        assert primary_requests is not None and len(primary_requests) >= 1
    stats = composio_stats(telemetry)
    assert stats["items_to_fallback"] == 3, stats
    assert stats["fallback_sent"] == 3, stats
    assert stats["invocations_sent"] == 0 and stats["errors_sent"] == 0


def test_a_400_is_rejected_and_not_sent_to_the_fallback(otlp):
    with Loopback(lambda request: Reply(status=400, body=b'{"error": "bad payload"}')) as rejecting:
        telemetry = run_calls(rejecting.url)
        assert telemetry.flush(timeout=10) is False  # refused for good: lost, so not delivered
        time.sleep(0.2)
        assert {request.path for request in rejecting.received} == {"/metrics/invocations", "/errors"}
        sent = [len(request.json()) for request in rejecting.requests_to("/metrics/invocations")]
        assert sum(sent) == 2, f"a 400 must not be retried: invocation requests of sizes {sent}"
        assert len(rejecting.requests_to("/errors")) == 1, "a 400 must not be retried"

    assert otlp.received == [], f"OTLP got {otlp_span_names(otlp.received)}"
    stats = telemetry.stats()
    exporter = stats["exporters"]["composio"]["exporter"]
    assert exporter["items_rejected"] == 3, exporter
    assert exporter["items_to_fallback"] == 0, exporter
    assert exporter.get("fallback_sent", 0) == 0
    assert stats["failed"] == 3, stats
    assert stats["exported"] == 0, stats


def test_nothing_goes_to_the_fallback_while_the_composio_endpoint_works(otlp):
    with Loopback() as working:
        telemetry = run_calls(working.url)
        assert telemetry.flush(timeout=10)
        assert sum(len(request.json()) for request in working.requests_to("/metrics/invocations")) == 2
        assert len(working.requests_to("/errors")) == 1
    time.sleep(0.1)
    assert otlp.received == []
    exporter = composio_stats(telemetry)
    assert exporter["invocations_sent"] == 2 and exporter["errors_sent"] == 1
    assert exporter["items_to_fallback"] == 0


def test_the_fallback_can_be_switched_off(otlp, monkeypatch):
    monkeypatch.setenv("SDK_TELEMETRY_OTLP_FALLBACK", "false")
    with Loopback(lambda request: Reply(status=404)) as gone:
        telemetry = run_calls(gone.url)
        assert telemetry.flush(timeout=10) is False  # a 404 with no fallback: lost
        assert gone.received
    time.sleep(0.1)
    assert otlp.received == []
    assert composio_stats(telemetry)["items_failed"] == 3
