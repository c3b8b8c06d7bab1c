"""Exporters chosen by OTEL_TRACES_EXPORTER, each in a fresh process: where the spans end up."""

from __future__ import annotations

import gzip
import json
import os
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from exporters.tests.helpers.loopback import LoopbackServer, Received
from sdk_telemetry import configure_telemetry, instrument
from tests.helpers.processes import child_env, run_python

EXPECTED = Counter({"Client.ping": 3, "Client.fail": 1})

CHILD = """
from sdk_telemetry import configure_telemetry, instrument

class Client:
    def ping(self):
        return "pong"

    def fail(self):
        raise ValueError("nope")

telemetry = configure_telemetry()
instrument(Client)
client = Client()
for _ in range(3):
    client.ping()
try:
    client.fail()
except ValueError:
    pass
telemetry.shutdown()
print("CHILD-DONE")
"""


Loopback = LoopbackServer


def store() -> Path:
    return Path(os.environ["SDK_TELEMETRY_STORE"])


def stored_names() -> Counter[str]:
    with sqlite3.connect(store()) as connection:
        rows = connection.execute("SELECT SpanName FROM otel_traces").fetchall()
    return Counter(name for (name,) in rows)


def run_child(**env: str) -> Any:
    result = run_python(CHILD, env=child_env(**env), timeout=30)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "CHILD-DONE" in result.stdout, result.stdout[-3000:]
    return result


def otlp_span_names(requests: list[Received]) -> Counter[str]:
    names: Counter[str] = Counter()
    for request in requests:
        body = gzip.decompress(request.body) if request.headers.get("content-encoding") == "gzip" else request.body
        message = ExportTraceServiceRequest()
        message.ParseFromString(body)
        for resource_spans in message.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                names.update(span.name for span in scope_spans.spans)
    return names


def console_spans(stdout: str) -> list[dict[str, Any]]:
    """The JSON objects the console exporter printed (one per span, pretty-printed)."""
    decoder = json.JSONDecoder()
    spans, index = [], 0
    while True:
        index = stdout.find("{", index)
        if index < 0:
            return spans
        value, index = decoder.raw_decode(stdout, index)
        spans.append(value)


def test_composio_sends_to_the_configured_endpoint(server):
    run_child(OTEL_TRACES_EXPORTER="composio", SDK_TELEMETRY_ENDPOINT=server.url)
    invocations = [item for request in server.requests_to("/metrics/invocations") for item in request.json()]
    errors = [request.json() for request in server.requests_to("/errors")]
    assert Counter(item["functionName"] for item in invocations) == Counter({"Client.ping": 3})
    assert [error["functionName"] for error in errors] == ["Client.fail"]
    assert not store().exists(), "the composio exporter alone must not write the local store"


def test_otlp_sends_protobuf_to_the_otlp_endpoint(server):
    run_child(OTEL_TRACES_EXPORTER="otlp", OTEL_EXPORTER_OTLP_ENDPOINT=server.url)
    requests = server.requests_to("/v1/traces")
    assert requests, f"received {[request.path for request in server.received]}"
    assert {request.path for request in server.received} == {"/v1/traces"}
    for request in requests:
        assert request.headers["content-type"] == "application/x-protobuf"
    assert otlp_span_names(requests) == EXPECTED
    assert not store().exists()


def test_console_prints_span_json_on_stdout():
    result = run_child(OTEL_TRACES_EXPORTER="console")
    spans = console_spans(result.stdout)
    assert Counter(span["name"] for span in spans) == EXPECTED, result.stdout[-3000:]
    [failed] = [span for span in spans if span["name"] == "Client.fail"]
    assert failed["status"]["status_code"] == "ERROR"
    assert not store().exists()


def test_local_writes_rows_to_the_store():
    run_child(OTEL_TRACES_EXPORTER="local")
    assert stored_names() == EXPECTED


def test_none_sends_prints_and_stores_nothing(server):
    result = run_child(
        OTEL_TRACES_EXPORTER="none",
        SDK_TELEMETRY_ENDPOINT=server.url,
        OTEL_EXPORTER_OTLP_ENDPOINT=server.url,
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=server.url + "/v1/traces",
    )
    assert result.stdout.strip() == "CHILD-DONE"
    assert server.received == []
    assert not store().exists()


def test_the_default_with_nothing_set_is_the_local_store():
    result = run_child()
    assert stored_names() == EXPECTED
    assert result.stdout.strip() == "CHILD-DONE"


def test_an_unknown_exporter_from_the_environment_is_logged_and_skipped():
    result = run_child(OTEL_TRACES_EXPORTER="bogus,local")
    assert "bogus" in result.stderr, result.stderr[-3000:]
    assert stored_names() == EXPECTED


def test_an_unknown_exporter_alone_from_the_environment_does_not_crash():
    result = run_child(OTEL_TRACES_EXPORTER="bogus")
    assert "bogus" in result.stderr, result.stderr[-3000:]
    assert not store().exists()


def test_an_unknown_exporter_named_in_code_raises_value_error_naming_it():
    with pytest.raises(ValueError, match="bogus"):
        configure_telemetry(exporter="bogus")
    with pytest.raises(ValueError, match="bogus"):
        configure_telemetry(exporter=["local", "bogus"])

    # The failed attempts leave nothing behind that stops a correct configuration from working.
    telemetry = configure_telemetry(exporter="local")
    instrument(Client)
    Client().ping()
    assert telemetry.flush(timeout=5)
    assert stored_names() == Counter({"Client.ping": 1})


class Client:
    def ping(self) -> str:
        return "pong"
