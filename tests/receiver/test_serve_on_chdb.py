"""One `sdk-telemetry serve` on a laptop as at scale: the receiver stores and copies what it receives
into ClickHouse's engine (`--clickhouse-url chdb:DIR`), and its dashboard and analytics API read
that ClickHouse (`--clickhouse chdb:DIR`), fed by the real OpenTelemetry SDK's OTLP exporter."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import orjson
import urllib3
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from sdk_telemetry_exporters.attributes import INVOCATION_SCOPE

from tests.helpers.processes import ROOT, child_env


def test_the_dashboard_reads_the_clickhouse_the_receiver_copies_into(tmp_path: Path) -> None:
    url = f"chdb:{tmp_path / 'chdb'}"
    process = subprocess.Popen(
        [sys.executable, "-m", "sdk_telemetry", "serve", "--insecure-no-auth", "--port", "0", "--store",
         str(tmp_path / "store.sqlite3"), "--clickhouse-url", url, "--clickhouse", url],
        env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        port = int(re.search(r":(\d+) ", lines[0]).group(1))  # type: ignore[union-attr]
        assert f"(reading ClickHouse at {url})" in lines[2]
        base = f"http://127.0.0.1:{port}"
        provider = TracerProvider(resource=Resource.create({"service.name": "laptop-sdk", "session.id": "s-1"}))
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces")))
        tracer = provider.get_tracer(INVOCATION_SCOPE)
        for index in range(12):
            with tracer.start_as_current_span("Client.search" if index % 3 else "Client.login"):
                time.sleep(0.001)
        provider.shutdown()
        answer: dict[str, object] = {}
        for _ in range(100):  # the copy lands after the store's commit
            response = urllib3.request("GET", f"{base}/api/v1/analytics/functions")
            assert response.status == 200, response.data
            answer = orjson.loads(response.data)
            if sum(row["stored_calls"] for row in answer["functions"]) == 12:  # type: ignore[index, attr-defined]
                break
            time.sleep(0.1)
        counts = {row["function"]: row["calls"] for row in answer["functions"]}  # type: ignore[attr-defined]
        assert counts == {"Client.search": 8.0, "Client.login": 4.0}
        page = orjson.loads(urllib3.request("GET", f"{base}/dashboard/api/overview?range=1h").data)
        assert page["engine"] == "clickhouse" and page["store"] == url
        assert page["totals"]["calls"] == 12 and page["services"] == ["laptop-sdk"]
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    assert "ClickHouse has no rollups yet: `sdk-telemetry rollups --create" in err
    # chDB's session is closed before the interpreter's finalization: an open one crashed the exit.
    assert process.returncode == 0, err
