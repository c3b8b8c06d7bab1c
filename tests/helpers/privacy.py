"""The privacy tests' pipeline: `configure_telemetry` with the composio, local and otlp exporters
against one loopback server and one store file, and what each of them received."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from exporters.tests.helpers.loopback import LoopbackServer
from sdk_telemetry import configure_telemetry


class Pipeline:
    """`configure_telemetry` with the composio, local and otlp exporters, and what each received."""

    def __init__(self, server: LoopbackServer, store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.server = server
        self.store = store
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", server.url + "/v1/traces")
        monkeypatch.setenv("SDK_TELEMETRY_OTLP_FALLBACK", "false")

    def configure(self, **settings: Any) -> Any:
        self.telemetry = configure_telemetry(
            exporter=["composio", "local", "otlp"],
            endpoint=self.server.url,
            store_path=str(self.store),
            batch_interval=0.05,
            **settings,
        )
        return self.telemetry

    def flush(self) -> None:
        assert self.telemetry.flush(timeout=10)

    def payloads(self) -> list[dict[str, Any]]:
        """Every Composio payload received, successes and errors."""
        found: list[dict[str, Any]] = []
        for request in self.server.requests_to("/metrics/invocations"):
            found.extend(request.json())
        found.extend(request.json() for request in self.server.requests_to("/errors"))
        return found

    def rows(self) -> list[dict[str, Any]]:
        """Every `otel_traces` row of the local store."""
        if not self.store.exists():
            return []
        connection = sqlite3.connect(self.store)
        connection.row_factory = sqlite3.Row
        try:
            return [dict(row) for row in connection.execute("SELECT * FROM otel_traces")]
        finally:
            connection.close()

    def otlp_spans(self) -> list[Any]:
        """Every span of every OTLP request, parsed from its protobuf body."""
        spans = []
        for request in self.server.requests_to("/v1/traces"):
            message = ExportTraceServiceRequest.FromString(request.body)
            for resource_spans in message.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    spans.extend(scope_spans.spans)
        return spans

    def everything(self) -> str:
        """All that left the process, as text: Composio bodies, OTLP bodies (raw and parsed), store rows."""
        parts = [request.body.decode("utf-8", "replace") for request in self.server.received]
        parts.extend(str(ExportTraceServiceRequest.FromString(r.body)) for r in self.server.requests_to("/v1/traces"))
        parts.extend(json.dumps(row, default=str) for row in self.rows())
        return "\n".join(parts)


def span_attributes(row: dict[str, Any]) -> dict[str, Any]:
    return json.loads(row["SpanAttributes"])
