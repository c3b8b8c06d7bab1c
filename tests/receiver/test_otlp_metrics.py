"""`POST /v1/metrics`: the upstream OTLP metric exporter (protobuf) and OTLP JSON land as metric
values, each once, queryable by `GET /api/v1/metrics`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from sdk_telemetry.receiver import ReceiverSettings
from tests.helpers.receiver import KEY, Running, serve


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Running]:
    with serve(ReceiverSettings(store_path=tmp_path / "metrics.sqlite3", api_keys=(KEY,))) as running:
        yield running


def test_the_upstream_otlp_metric_exporter_lands_values(receiver: Running) -> None:
    exporter = OTLPMetricExporter(endpoint=receiver.url + "/v1/metrics", headers={"X-API-Key": KEY})
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(resource=Resource.create({"service.name": "acme-sdk"}), metric_readers=[reader])
    meter = provider.get_meter("acme")
    meter.create_counter("acme.calls", unit="1").add(3, {"function": "Tools.list"})
    histogram = meter.create_histogram("acme.latency", unit="ms")
    for value in (2.0, 4.0, 9.0):
        histogram.record(value)
    meter.create_up_down_counter("acme.queue").add(-2)
    provider.shutdown()
    rows = dict(receiver.rows("SELECT MetricName, Value FROM otel_metrics_gauge"))
    assert rows == {
        "acme.calls": 3.0,
        "acme.latency.count": 3.0,
        "acme.latency.sum": 15.0,
        "acme.latency.min": 2.0,
        "acme.latency.max": 9.0,
        "acme.queue": -2.0,
    }
    ((service, unit, attributes),) = receiver.rows(
        "SELECT ServiceName, MetricUnit, Attributes FROM otel_metrics_gauge WHERE MetricName = 'acme.calls'"
    )
    assert (service, unit, orjson.loads(attributes)) == ("acme-sdk", "1", {"function": "Tools.list"})
    answer = receiver.get("/api/v1/metrics", names="acme.latency.sum", aggregation="SUM").json()
    assert answer["metrics"]["acme.latency.sum"]["value"] == 15.0


def test_otlp_json_metrics_land_once_and_nan_is_left_out(receiver: Running) -> None:
    body = {
        "resourceMetrics": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "js-sdk"}}]},
                "scopeMetrics": [
                    {
                        "scope": {"name": "js"},
                        "metrics": [
                            {
                                "name": "js.gauge",
                                "gauge": {
                                    "dataPoints": [
                                        {"timeUnixNano": "1700000000000000000", "asInt": "7"},
                                        {"timeUnixNano": "1700000001000000000", "asDouble": "NaN"},
                                    ]
                                },
                            }
                        ],
                    }
                ],
            }
        ]
    }
    for _ in range(2):
        response = receiver.post("/v1/metrics", body)
        assert (response.status_code, response.json()) == (200, {})
    assert receiver.rows("SELECT MetricName, Value, TimeUnix, ServiceName FROM otel_metrics_gauge") == [
        ("js.gauge", 7.0, 1_700_000_000_000_000_000, "js-sdk")
    ]
    late = {
        "resourceMetrics": [
            {
                "scopeMetrics": [
                    {
                        "metrics": [
                            {"name": "x", "gauge": {"dataPoints": [{"timeUnixNano": str(2**64 - 1), "asInt": "1"}]}}
                        ]
                    }
                ]
            }
        ]
    }
    refused = receiver.post("/v1/metrics", late)
    assert refused.status_code == 400
    assert "dataPoints.0.timeUnixNano" in refused.json()["error"]["message"]
    assert (
        receiver.post("/v1/metrics", raw=b"\xff", headers={"Content-Type": "application/x-protobuf"}).status_code == 400
    )
