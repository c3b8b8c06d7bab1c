"""`sdk-telemetry serve` over real HTTP on 127.0.0.1: real exporters feed it, raw requests probe
every refusal, and the store is read back to see what landed."""

from __future__ import annotations

import asyncio
import gzip
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import StatusCode
from sdk_telemetry_exporters import attributes as attr
from sdk_telemetry_exporters.composio import ComposioSpanExporter

from sdk_telemetry.receiver import ReceiverSettings, truncate_ip
from sdk_telemetry.store.queries import function_stats
from tests.helpers.receiver import KEY, Running, invocation, serve


@pytest.fixture
def settings(tmp_path: Path) -> ReceiverSettings:
    return ReceiverSettings(store_path=tmp_path / "received.sqlite3", api_keys=(KEY, "second-key"))


@pytest.fixture
def receiver(settings: ReceiverSettings) -> Iterator[Running]:
    with serve(settings) as running:
        yield running


def provider_with(exporter: Any) -> TracerProvider:
    provider = TracerProvider(
        resource=Resource.create({"service.name": "acme-sdk", "deployment.environment.name": "staging"})
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


# --- real clients ------------------------------------------------------------------------------


def test_the_projects_composio_exporter_lands_invocations_and_errors(receiver: Running) -> None:
    exporter = ComposioSpanExporter(endpoint=receiver.url + "/v1", api_key=KEY)
    provider = provider_with(exporter)
    tracer = provider.get_tracer(attr.INVOCATION_SCOPE)
    for _ in range(3):
        with tracer.start_as_current_span("Tools.list"):
            pass
    with tracer.start_as_current_span("Tools.execute") as span:
        span.set_attribute(attr.ERROR_TYPE, "ValueError")
        span.set_status(StatusCode.ERROR, "ValueError: bad tool")
    provider.shutdown()
    assert exporter.stats()["invocations_sent"] == 3
    assert exporter.stats()["errors_sent"] == 1
    connection = sqlite3.connect(receiver.store)
    stats = {row.function: row for row in function_stats(connection)}
    assert stats["Tools.list"].calls == 3
    assert (stats["Tools.execute"].calls, stats["Tools.execute"].errors) == (1, 1)
    (row,) = receiver.rows(
        "SELECT StatusCode, SpanAttributes, ResourceAttributes FROM otel_traces WHERE SpanName = 'Tools.execute'"
    )
    assert row[0] == "Error"
    assert orjson.loads(row[1])["error.type"] == "ValueError"
    assert orjson.loads(row[2])[attr.DEPLOYMENT_ENVIRONMENT] == "staging"


def test_the_upstream_otlp_exporter_lands_spans_on_v1_traces(receiver: Running) -> None:
    exporter = OTLPSpanExporter(endpoint=receiver.url + "/v1/traces", headers={"Authorization": f"Bearer {KEY}"})
    provider = provider_with(exporter)
    tracer = provider.get_tracer(attr.INVOCATION_SCOPE, "9.9")
    with tracer.start_as_current_span("Client.outer") as outer:
        outer.set_attribute("session.id", "sess-1")
        with tracer.start_as_current_span("Client.inner"):
            pass
    provider.shutdown()
    rows = receiver.rows(
        "SELECT SpanName, TraceId, SpanId, ParentSpanId, ServiceName, ScopeVersion, SessionId"
        " FROM otel_traces ORDER BY SpanName"
    )
    assert [row[0] for row in rows] == ["Client.inner", "Client.outer"]
    inner, outer_row = rows
    assert inner[1] == outer_row[1] and inner[3] == outer_row[2]  # same trace, parent link kept
    assert outer_row[2] == f"{outer.get_span_context().span_id:016x}"
    assert (outer_row[4], outer_row[5], outer_row[6]) == ("acme-sdk", "9.9", "sess-1")


def test_otlp_json_with_hex_ids_and_gzip(receiver: Running) -> None:
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "js-sdk"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "sdk_telemetry"},
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "name": "Files.upload",
                                "kind": 1,
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": "1700000000250000000",
                                "attributes": [{"key": "n", "value": {"intValue": "7"}}],
                                "status": {"code": 2, "message": "boom"},
                                "unknownField": True,
                            }
                        ],
                    }
                ],
            }
        ]
    }
    response = receiver.post("/v1/traces", raw=gzip.compress(orjson.dumps(body)), headers={"Content-Encoding": "gzip"})
    assert response.status_code == 200, response.text
    assert response.json() == {}
    (row,) = receiver.rows(
        "SELECT TraceId, SpanId, Duration, StatusCode, StatusMessage, SpanAttributes FROM otel_traces"
    )
    assert row == ("5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174", 250_000_000, "Error", "boom", '{"n":7}')


def test_otlp_logs_land_as_events_deduplicated_by_event_id(receiver: Running) -> None:
    record = {
        "timeUnixNano": "1700000000000000000",
        "severityText": "INFO",
        "body": {"stringValue": "session started"},
        "attributes": [
            {"key": "event.id", "value": {"stringValue": "ev-1"}},
            {"key": "event.name", "value": {"stringValue": "SESSION_START"}},
        ],
    }
    body = {
        "resourceLogs": [{"resource": {}, "scopeLogs": [{"scope": {"name": "tinker"}, "logRecords": [record, record]}]}]
    }
    for _ in range(2):
        assert receiver.post("/v1/logs", body).status_code == 200
    assert receiver.rows("SELECT EventId, EventName, Body, SeverityText FROM otel_logs") == [
        ("ev-1", "SESSION_START", "session started", "INFO")
    ]


def test_identical_otlp_log_records_without_event_ids_are_distinct_and_a_resend_lands_once(receiver: Running) -> None:
    """Records of one export that look alike (a logging bridge stamping whole milliseconds) are
    distinct events; the same request sent again is stored once."""
    record = {"timeUnixNano": "1700000000000000000", "severityText": "WARN", "body": {"stringValue": "cache miss"}}
    body = {"resourceLogs": [{"resource": {}, "scopeLogs": [{"scope": {"name": "app"}, "logRecords": [record] * 3}]}]}
    for _ in range(2):
        assert receiver.post("/v1/logs", body).status_code == 200
    assert receiver.rows("SELECT Body, COUNT(*) FROM otel_logs GROUP BY Body") == [("cache miss", 3)]
    other = {"resourceLogs": [{"resource": {}, "scopeLogs": [{"scope": {"name": "app"}, "logRecords": [record] * 2}]}]}
    assert receiver.post("/v1/logs", other).status_code == 200  # another export: two more events
    assert receiver.rows("SELECT COUNT(*) FROM otel_logs") == [(5,)]


# --- the Composio and Tinker JSON endpoints ---------------------------------------------------------


def test_a_batch_is_stored_and_retries_land_once(receiver: Running) -> None:
    batch = [invocation(i) for i in range(5)]
    first = receiver.post("/v1/metrics/invocations", batch)
    assert first.status_code == 200
    assert first.json() == {"status": "accepted", "accepted": 5, "stored": 5, "duplicates": 0}
    retry = receiver.post("/v1/metrics/invocations", batch)
    assert retry.json() == {"status": "accepted", "accepted": 5, "stored": 0, "duplicates": 5}
    assert receiver.rows("SELECT COUNT(*) FROM otel_traces") == [(5,)]
    assert receiver.rows("SELECT TraceId, SpanId FROM otel_traces WHERE Duration = 0") == [(f"{1:032x}", f"{1:016x}")]
    (stats,) = function_stats(sqlite3.connect(receiver.store))
    assert (stats.calls, stats.p50_ms, stats.max_ms) == (5, 2.0, 4.0)


def test_without_event_ids_the_idempotency_key_or_the_content_dedupes(receiver: Running) -> None:
    plain = [{"functionName": "A.b", "durationMs": 1.0}, {"functionName": "A.b", "durationMs": 2.0}]
    for _ in range(2):
        assert (
            receiver.post("/v1/metrics/invocations", plain, headers={"Idempotency-Key": "batch-1"}).status_code == 200
        )
    assert receiver.rows("SELECT COUNT(*) FROM otel_traces") == [(2,)]
    for _ in range(2):  # no key: the same content is the same event
        assert (
            receiver.post(
                "/v1/metrics/invocations", [{"functionName": "C.d", "durationMs": 3.0, "timestamp": 1.5}]
            ).status_code
            == 200
        )
    assert receiver.rows("SELECT COUNT(*) FROM otel_traces WHERE SpanName = 'C.d'") == [(1,)]


def test_an_error_report_lands_with_its_error(receiver: Running) -> None:
    report = invocation(
        9, error={"name": "ToolError", "message": "no such tool", "errorId": "err-1", "code": "E42", "stack": "tb"}
    )
    response = receiver.post("/v1/errors", report)
    assert response.status_code == 200
    (row,) = receiver.rows("SELECT StatusCode, StatusMessage, SpanAttributes, Events FROM otel_traces")
    assert row[:2] == ("Error", "no such tool")
    assert orjson.loads(row[2]) == {"error.type": "ToolError", attr.ERROR_ID: "err-1", attr.ERROR_CODE: "E42"}
    assert orjson.loads(row[3])[0]["Attributes"]["exception.stacktrace"] == "tb"


def tinker_batch(*events: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "events": list(events),
        "platform": "Linux",
        "sdk_version": "0.38.0",
        "session_id": "sess-9",
        "process_uuid": str(uuid.uuid4()),
        **extra,
    }


def tinker_event(kind: str, index: int, **fields: Any) -> dict[str, Any]:
    return {
        "event": kind,
        "event_id": str(uuid.uuid4()),
        "event_session_index": index,
        "severity": "INFO",
        "timestamp": "2025-05-21T14:32:17.123Z",
        **fields,
    }


def test_a_tinker_batch_lands_as_events_once(receiver: Running) -> None:
    batch = tinker_batch(
        tinker_event("SESSION_START", 0),
        tinker_event("GENERIC_EVENT", 1, event_name="model.loaded", event_data={"model": "m"}),
        tinker_event(
            "UNHANDLED_EXCEPTION", 2, error_type="ValueError", error_message="bad", traceback="tb", severity="ERROR"
        ),
        tinker_event("SESSION_END", 3, duration="0:05:12.345678"),
    )
    for _ in range(2):
        response = receiver.post("/api/v1/telemetry", batch)
        assert response.status_code == 200
        assert response.json()["status"] == "accepted"
    rows = receiver.rows(
        "SELECT EventName, SeverityText, SessionId, Body, Timestamp FROM otel_logs"
        " ORDER BY json_extract(LogAttributes, '$.event_session_index')"
    )
    assert [row[0] for row in rows] == ["SESSION_START", "model.loaded", "UNHANDLED_EXCEPTION", "SESSION_END"]
    assert rows[2][1:4] == ("ERROR", "sess-9", "bad")
    assert rows[0][4] == 1747837937123000000


# --- refusals: status and JSON body ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "problem"),
    [
        ([{"durationMs": 1}], "0.functionName", "Field required"),
        ([{"functionName": "a", "durationMs": None}], "0.durationMs", "valid number"),
        ([{"functionName": "a", "source": {"environment": 5}}], "0.source.environment", "valid string"),
        ([{"functionName": "a", "timestamp": "yesterday"}], "0.timestamp", "valid number"),
        ([{"functionName": "a", "metadata": {"eventId": "xyz"}}], "0.metadata.eventId", "pattern"),
        ({"functionName": "a"}, "(body)", "valid array"),
    ],
)
def test_invalid_invocations_get_400_naming_the_field(receiver: Running, body: Any, field: str, problem: str) -> None:
    response = receiver.post("/v1/metrics/invocations", body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "INVALID_EVENT"
    assert error["message"].startswith(field)
    first = error["details"]["validation_errors"][0]
    assert first["field"] == field
    assert problem in first["problem"]


def test_one_bad_item_rejects_the_whole_batch(receiver: Running) -> None:
    batch = [invocation(1), invocation(2), {"functionName": 7}]
    response = receiver.post("/v1/metrics/invocations", batch)
    assert response.status_code == 400
    assert response.json()["error"]["details"]["validation_errors"][0]["field"] == "2.functionName"
    assert receiver.rows("SELECT COUNT(*) FROM otel_traces") == [(0,)]


def test_other_bad_bodies(receiver: Running) -> None:
    not_json = receiver.post("/v1/metrics/invocations", raw=b"[{")
    assert (not_json.status_code, not_json.json()["error"]["code"]) == (400, "INVALID_JSON")
    no_error = receiver.post("/v1/errors", invocation(1))
    assert (no_error.status_code, no_error.json()["error"]["details"]["validation_errors"][0]["field"]) == (
        400,
        "error",
    )
    unknown = receiver.post("/api/v1/telemetry", tinker_batch(tinker_event("SESSION_START", 0), user="x"))
    assert unknown.status_code == 400
    assert unknown.json()["error"]["details"]["validation_errors"][0]["field"] == "user"
    too_many = receiver.post("/api/v1/telemetry", tinker_batch(*[tinker_event("SESSION_START", i) for i in range(101)]))
    assert (too_many.status_code, too_many.json()["error"]["details"]["validation_errors"][0]["field"]) == (
        400,
        "events",
    )
    bad_kind = receiver.post("/api/v1/telemetry", tinker_batch(tinker_event("REBOOT", 0)))
    assert bad_kind.status_code == 400 and "events.0" in bad_kind.json()["error"]["message"]
    otlp = receiver.post("/v1/traces", raw=b"\xff\xff\xff", headers={"Content-Type": "application/x-protobuf"})
    assert (otlp.status_code, otlp.json()["error"]["code"]) == (400, "INVALID_OTLP")
    zero_id = {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "0" * 32, "spanId": "1" * 16, "name": "x"}]}]}]}
    refused = receiver.post("/v1/traces", zero_id)
    assert refused.status_code == 400 and "traceId" in refused.json()["error"]["message"]
    assert receiver.rows("SELECT COUNT(*) FROM otel_traces") == [(0,)]


def test_wrong_content_type_or_encoding_is_415(receiver: Running) -> None:
    for headers in ({"Content-Type": "text/plain"}, {"Content-Type": ""}, {"Content-Encoding": "br"}):
        response = receiver.post("/v1/metrics/invocations", [invocation(1)], headers=headers)
        assert response.status_code == 415
        assert response.json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    protobuf_to_json_endpoint = receiver.post(
        "/api/v1/telemetry", raw=b"x", headers={"Content-Type": "application/x-protobuf"}
    )
    assert protobuf_to_json_endpoint.status_code == 415


@pytest.fixture
def small(settings: ReceiverSettings) -> Iterator[Running]:
    with serve(replace(settings, max_body_bytes=10_000)) as running:
        yield running


def test_size_limits_apply_after_decompression(small: Running) -> None:
    big = orjson.dumps([invocation(i) for i in range(100)])
    assert len(big) > 10_000
    plain = small.post("/v1/metrics/invocations", raw=big)
    assert plain.status_code == 413
    assert plain.json()["error"] == {
        "code": "PAYLOAD_TOO_LARGE",
        "message": "the body is larger than 10000 bytes",
        "details": {"max_body_bytes": 10_000},
    }
    # A gzip bomb: 300 bytes on the wire, 10 MB inflated; refused without inflating it all.
    bomb = gzip.compress(b"[" + b" " * 10_000_000 + b"]")
    assert len(bomb) < 20_000
    exploded = small.post("/v1/metrics/invocations", raw=bomb, headers={"Content-Encoding": "gzip"})
    assert exploded.status_code == 413
    assert "after decompression" in exploded.json()["error"]["message"]
    fits = small.post(
        "/v1/metrics/invocations",
        raw=gzip.compress(orjson.dumps([invocation(1)])),
        headers={"Content-Encoding": "gzip"},
    )
    assert fits.status_code == 200
    broken = small.post("/v1/metrics/invocations", raw=b"\x1f\x8b not gzip", headers={"Content-Encoding": "gzip"})
    assert (broken.status_code, broken.json()["error"]["code"]) == (400, "INVALID_ENCODING")
    assert small.rows("SELECT COUNT(*) FROM otel_traces") == [(1,)]


def test_authentication(receiver: Running) -> None:
    batch = [invocation(1)]
    for headers in ({"X-API-Key": ""}, {"X-API-Key": "wrong"}, {"X-API-Key": "", "Authorization": "Basic " + KEY}):
        response = receiver.post("/v1/metrics/invocations", batch, headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.json()["error"]["code"] == "UNAUTHORIZED"
        assert KEY not in response.text
    assert receiver.get("/api/v1/stats").status_code == 200
    assert httpx.get(receiver.url + "/api/v1/stats").status_code == 401
    assert (
        receiver.post(
            "/v1/metrics/invocations", batch, headers={"X-API-Key": "", "Authorization": "Bearer second-key"}
        ).status_code
        == 200
    )
    assert receiver.rows("SELECT COUNT(*) FROM otel_traces") == [(1,)]
    anonymous = httpx.get(receiver.url + "/health")  # health needs no key, but says no more than its status
    assert (anonymous.status_code, set(anonymous.json())) == (200, {"status", "version"})
    assert str(receiver.store) not in anonymous.text


def test_a_receiver_needs_a_key_unless_told_otherwise(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="insecure-no-auth"):
        ReceiverSettings(store_path=tmp_path / "x.sqlite3")
    open_settings = ReceiverSettings(store_path=tmp_path / "open.sqlite3", insecure_no_auth=True)
    with serve(open_settings) as running:
        response = httpx.post(running.url + "/v1/metrics/invocations", json=[invocation(1)])
        assert response.status_code == 200


def test_back_pressure_answers_503_with_retry_after(settings: ReceiverSettings) -> None:
    with serve(replace(settings, max_backlog_rows=3)) as running:
        receiver = running.app.state.receiver
        gate = threading.Event()
        receiver.writer.run_job(lambda connection: gate.wait(10))  # the store is stuck
        results: list[httpx.Response] = []
        first = threading.Thread(
            target=lambda: results.append(running.post("/v1/metrics/invocations", [invocation(i) for i in range(3)]))
        )
        first.start()
        deadline = time.monotonic() + 5
        while receiver.writer.backlog < 3:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        refused = running.post("/v1/metrics/invocations", [invocation(10)])
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "1"
        assert refused.json()["error"]["code"] == "OVERLOADED"
        gate.set()
        first.join(10)
        assert results[0].status_code == 200  # accepted means stored
        assert running.rows("SELECT COUNT(*) FROM otel_traces") == [(3,)]
        assert running.get("/health").json()["receiver"]["rejected_overload"] == 1


def test_client_addresses_are_not_stored_unless_configured_and_then_truncated(settings: ReceiverSettings) -> None:
    assert truncate_ip("203.0.113.77") == "203.0.113.0"
    assert truncate_ip("2001:db8:abcd:12:1:2:3:4") == "2001:db8:abcd::"
    assert truncate_ip("not-an-ip") == ""
    with serve(settings) as running:
        running.post("/v1/metrics/invocations", [invocation(1)])
        (resource,) = running.rows("SELECT ResourceAttributes FROM otel_traces")[0]
        assert "client.address" not in resource and "127.0.0.1" not in resource
    with serve(replace(settings, store_client_ip=True)) as running:
        running.post("/v1/metrics/invocations", [invocation(2)])
        (resource,) = running.rows("SELECT ResourceAttributes FROM otel_traces WHERE Duration = 2000000")[0]
        assert orjson.loads(resource)["client.address"] == "127.0.0.0"


def test_retention_runs_in_the_background(settings: ReceiverSettings) -> None:
    old = [invocation(i, timestamp=time.time() - 10 * 86400) for i in range(3)]
    fresh = [invocation(10 + i, timestamp=time.time()) for i in range(2)]
    with serve(replace(settings, retention_interval=0.05, retention_days=7)) as running:
        assert running.post("/v1/metrics/invocations", old + fresh).status_code == 200
        deadline = time.monotonic() + 5
        while running.rows("SELECT COUNT(*) FROM otel_traces") != [(2,)]:
            assert time.monotonic() < deadline, "retention did not run"
            time.sleep(0.02)
        health = running.get("/health").json()
        assert health["receiver"]["retention_runs"] >= 2
        assert health["stats"]["data_retention_days"] == 7


# --- queries over HTTP, health, OpenAPI -----------------------------------------------------------


def test_query_api(receiver: Running) -> None:
    batch = [
        invocation(i, source={"service": "sdk", "environment": "production" if i < 8 else "staging"})
        for i in range(1, 11)
    ]
    batch[0]["error"] = {"name": "KeyError", "message": "missing"}
    assert receiver.post("/v1/metrics/invocations", batch).status_code == 200
    stats = receiver.get("/api/v1/stats").json()
    assert stats["status"] == "success"
    (row,) = stats["functions"]
    assert (row["calls"], row["errors"], row["p50_ms"], row["p95_ms"], row["p99_ms"]) == (10, 1, 5.0, 10.0, 10.0)
    (staging,) = receiver.get("/api/v1/stats", environment="staging").json()["functions"]
    assert staging["calls"] == 3
    window = receiver.get("/api/v1/stats", start=1_700_000_002, end="2023-11-14T22:13:24Z").json()["functions"]
    assert window[0]["calls"] == 3
    errors = receiver.get("/api/v1/errors").json()["errors"]
    assert [(e["error_type"], e["count"], e["sample_message"]) for e in errors] == [("KeyError", 1, "missing")]
    assert receiver.get("/api/v1/errors", limit="0").status_code == 400
    recorded = receiver.post("/api/v1/metrics", {"name": "queue.depth", "value": 4, "timestamp": 1_700_000_000})
    assert recorded.status_code == 200 and recorded.json()["status"] == "success"
    receiver.post("/api/v1/metrics", {"name": "queue.depth", "value": 8, "timestamp": 1_700_000_001})
    metrics = receiver.get("/api/v1/metrics", names="queue.depth", aggregation="MAX").json()
    assert metrics["metrics"]["queue.depth"]["value"] == 8.0
    bad = receiver.get("/api/v1/metrics", aggregation="MEDIAN")
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "INVALID_AGGREGATION")
    bad_time = receiver.get("/api/v1/stats", start="soon")
    assert (bad_time.status_code, bad_time.json()["error"]["code"]) == (400, "INVALID_TIME_RANGE")


def test_health_and_openapi(receiver: Running) -> None:
    receiver.post("/v1/metrics/invocations", [invocation(1)])
    health = receiver.get("/health").json()
    assert health["status"] == "healthy"
    assert health["version"]
    assert health["uptime_seconds"] >= 0
    assert health["stats"]["events_recorded"] == 1
    assert health["stats"]["storage_bytes"] > 0
    assert health["receiver"]["committed_rows"] == 1
    document = httpx.get(receiver.url + "/openapi.json").json()
    assert document["openapi"].startswith("3.")
    invocations = document["paths"]["/v1/metrics/invocations"]["post"]
    schema = invocations["requestBody"]["content"]["application/json"]["schema"]
    assert schema["type"] == "array"
    assert "functionName" in document["components"]["schemas"]["Invocation"]["required"]
    assert set(invocations["responses"]) >= {"200", "400", "401", "413", "415", "503"}
    assert "/api/v1/telemetry" in document["paths"]


def test_concurrent_clients_are_all_stored(receiver: Running) -> None:
    async def send_all() -> list[int]:
        async with httpx.AsyncClient(headers={"X-API-Key": KEY}) as client:
            responses = await asyncio.gather(
                *(
                    client.post(
                        receiver.url + "/v1/metrics/invocations", json=[invocation(b * 50 + i) for i in range(50)]
                    )
                    for b in range(20)
                )
            )
        return [response.status_code for response in responses]

    assert asyncio.run(send_all()) == [200] * 20
    assert receiver.rows("SELECT COUNT(*) FROM otel_traces") == [(1000,)]
    assert receiver.rows("SELECT SUM(Kept) FROM otel_traces_summary") == [(1000,)]


def test_the_projects_tinker_exporter_lands_session_events(receiver: Running) -> None:
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from sdk_telemetry_exporters.tinker import TinkerLogExporter

    exporter = TinkerLogExporter(endpoint=receiver.url, api_key=KEY, sdk_version="1.0")
    provider = LoggerProvider(resource=Resource.create({"session.id": "s-42"}), shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("app")
    logger.emit(body="hello", severity_text="WARNING", attributes={"user": "u1"}, event_name="app.hello")
    logger.emit(body={"k": 1}, severity_text="ERROR")
    provider.shutdown()
    rows = receiver.rows("SELECT EventName, SeverityText, SessionId FROM otel_logs ORDER BY Timestamp")
    assert [row[0] for row in rows] == ["app.hello", "log"]
    assert {row[2] for row in rows} == {"s-42"}
    assert [row[1] for row in rows] == ["WARNING", "ERROR"]


def test_the_upstream_otlp_log_exporter_lands_on_v1_logs(receiver: Running) -> None:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

    exporter = OTLPLogExporter(endpoint=receiver.url + "/v1/logs", headers={"X-API-Key": KEY})
    provider = LoggerProvider(resource=Resource.create({"service.name": "acme-sdk"}), shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    provider.get_logger("app").emit(body="started", severity_text="INFO", attributes={"event.id": "e-77"})
    provider.shutdown()
    assert receiver.rows("SELECT EventId, Body, ServiceName FROM otel_logs") == [("e-77", "started", "acme-sdk")]
