"""Hostile input over real HTTP on 127.0.0.1: every value out of range and every bad query
parameter is a 400 naming the field (never a 5xx), one client's unstorable batch fails alone, and
whatever was stored, queries answer valid JSON."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from sdk_telemetry.receiver import ReceiverSettings
from tests.helpers.receiver import KEY, Running, invocation, serve

BIG = 2**64
TINKER = "/api/v1/telemetry"
INVOCATIONS = "/v1/metrics/invocations"


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    path = tmp_path_factory.mktemp("hostile") / "received.sqlite3"
    with serve(ReceiverSettings(store_path=path, api_keys=(KEY,))) as running:
        yield running


def tinker(**fields: Any) -> dict[str, Any]:
    event = {
        "event": "SESSION_START",
        "event_id": str(uuid.uuid4()),
        "event_session_index": 0,
        "severity": "INFO",
        "timestamp": "2025-05-21T14:32:17.123Z",
        **fields,
    }
    return {"events": [event], "platform": "Linux", "sdk_version": "0.38.0", "session_id": "s", "process_uuid": "p"}


def otlp_span(**fields: Any) -> dict[str, Any]:
    span = {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "x", **fields}
    return {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}


def otlp_log(**fields: Any) -> dict[str, Any]:
    return {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": "b"}, **fields}]}]}]}


# Each of these answered 500 before: (path, body, the field the 400 must name).
OUT_OF_RANGE_BODIES = [
    pytest.param(INVOCATIONS, [invocation(1, timestamp=1e10)], "0.timestamp", id="timestamp-after-2262"),
    pytest.param(INVOCATIONS, [invocation(1, timestamp=1e300)], "0.timestamp", id="timestamp-1e300"),
    pytest.param(INVOCATIONS, [invocation(1, timestamp=-1e10)], "0.timestamp", id="timestamp-before-1677"),
    pytest.param(INVOCATIONS, [invocation(1, durationMs=1e13)], "0.durationMs", id="duration-1e13-ms"),
    pytest.param(INVOCATIONS, [invocation(1, durationMs=1e300)], "0.durationMs", id="duration-1e300-ms"),
    pytest.param("/v1/errors", invocation(1, timestamp=1e19, error={"name": "E"}), "timestamp", id="error-timestamp"),
    pytest.param("/v1/errors", invocation(1, durationMs=1e16, error={"name": "E"}), "durationMs", id="error-duration"),
    pytest.param(
        TINKER, tinker(timestamp="9999-12-31T00:00:00Z"), "events.0.SESSION_START.timestamp", id="tinker-9999"
    ),
    pytest.param(
        TINKER, tinker(timestamp="0001-01-01T00:00:00Z"), "events.0.SESSION_START.timestamp", id="tinker-0001"
    ),
    pytest.param(
        TINKER, tinker(event_session_index=BIG), "events.0.SESSION_START.event_session_index", id="index-2**64"
    ),
    pytest.param("/api/v1/metrics", {"name": "m", "value": 1, "timestamp": 1e12}, "timestamp", id="metric-timestamp"),
    pytest.param("/api/v1/metrics", {"name": "m", "value": 1, "timestamp": 1e300}, "timestamp", id="metric-1e300"),
    pytest.param(
        "/v1/traces",
        otlp_span(startTimeUnixNano=str(2**64 - 1), endTimeUnixNano=str(2**64 - 1)),
        "resourceSpans.0.scopeSpans.0.spans.0.startTimeUnixNano",
        id="otlp-start-2**64-1",
    ),
    pytest.param(
        "/v1/traces",
        otlp_span(startTimeUnixNano="1", endTimeUnixNano=str(2**63)),
        "resourceSpans.0.scopeSpans.0.spans.0.endTimeUnixNano",
        id="otlp-end-2**63",
    ),
    pytest.param(
        "/v1/logs",
        otlp_log(timeUnixNano=str(2**63)),
        "resourceLogs.0.scopeLogs.0.logRecords.0.timeUnixNano",
        id="otlp-log-2**63",
    ),
    pytest.param(
        "/v1/logs",
        otlp_log(observedTimeUnixNano=str(2**64 - 1)),
        "resourceLogs.0.scopeLogs.0.logRecords.0.timeUnixNano",
        id="otlp-log-observed",
    ),
    pytest.param(
        "/v1/traces",
        otlp_span(attributes=[{"key": "n", "value": {"intValue": str(BIG)}}]),
        "intValue",
        id="otlp-int-attribute-2**64",
    ),
]


@pytest.mark.parametrize(("path", "body", "field"), OUT_OF_RANGE_BODIES)
def test_values_out_of_range_are_400_naming_the_field(receiver: Running, path: str, body: Any, field: str) -> None:
    before = receiver.rows("SELECT (SELECT COUNT(*) FROM otel_traces) + (SELECT COUNT(*) FROM otel_logs)")
    response = receiver.post(path, raw=json.dumps(body).encode())  # orjson refuses integers beyond 64 bits
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert field in error["message"], error
    assert receiver.rows("SELECT (SELECT COUNT(*) FROM otel_traces) + (SELECT COUNT(*) FROM otel_logs)") == before


def test_the_otlp_protobuf_start_time_beyond_2262_is_400(receiver: Running) -> None:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = b"\x01" * 16, b"\x02" * 8, "x"
    span.start_time_unix_nano = 2**64 - 1
    response = receiver.post(
        "/v1/traces", raw=request.SerializeToString(), headers={"Content-Type": "application/x-protobuf"}
    )
    assert response.status_code == 400
    assert "startTimeUnixNano" in response.json()["error"]["message"]


# Integers beyond 64 bits in free-form objects are kept, as the JavaScript numbers they were.
@pytest.mark.parametrize(
    ("path", "body", "sql", "expected"),
    [
        pytest.param(
            INVOCATIONS,
            [{"functionName": "Big.props", "props": {"n": BIG, "m": -BIG, "deep": [10**400]}}],
            "SELECT json_extract(SpanAttributes, '$.\"sdk_telemetry.props\"') FROM otel_traces"
            " WHERE SpanName = 'Big.props'",
            {"n": float(BIG), "m": -float(BIG), "deep": [str(10**400)]},
            id="props",
        ),
        pytest.param(
            TINKER,
            tinker(event="GENERIC_EVENT", event_name="big.data", event_data={"x": 2**70}),
            "SELECT json_extract(LogAttributes, '$.event_data') FROM otel_logs WHERE EventName = 'big.data'",
            {"x": float(2**70)},
            id="tinker-event-data",
        ),
        pytest.param(
            "/api/v1/metrics",
            {"name": "big.context", "value": 1, "context": {"a": BIG}},
            "SELECT Attributes FROM otel_metrics_gauge WHERE MetricName = 'big.context'",
            {"a": float(BIG)},
            id="metric-context",
        ),
    ],
)
def test_huge_integers_in_free_form_objects_are_stored(
    receiver: Running, path: str, body: Any, sql: str, expected: Any
) -> None:
    response = receiver.post(path, raw=json.dumps(body).encode())
    assert response.status_code == 200, response.text
    (stored,) = receiver.rows(sql)[0]
    assert orjson.loads(stored) == expected


BAD_QUERIES = [
    pytest.param("/api/v1/errors", {"limit": "¹"}, "limit", id="limit-superscript-one"),
    pytest.param("/api/v1/errors", {"limit": "٣"}, "limit", id="limit-arabic-digit"),
    pytest.param("/api/v1/errors", {"limit": "9" * 30}, "limit", id="limit-huge"),
    pytest.param("/api/v1/errors", {"limit": "-1"}, "limit", id="limit-negative"),
    pytest.param("/api/v1/stats", {"start": "1e300"}, "start", id="stats-start-1e300"),
    pytest.param("/api/v1/stats", {"start": "-1e300"}, "start", id="stats-start-minus-1e300"),
    pytest.param("/api/v1/stats", {"end": "9999-12-31"}, "end", id="stats-end-9999"),
    pytest.param("/api/v1/stats", {"end": "0001-01-01T00:00:00Z"}, "end", id="stats-end-0001"),
    pytest.param("/api/v1/stats", {"start": "nan"}, "start", id="stats-start-nan"),
    pytest.param("/api/v1/stats", {"start": "inf"}, "start", id="stats-start-inf"),
    pytest.param("/api/v1/stats", {"session": "s", "start": "1e19"}, "start", id="stats-scan-start"),
    pytest.param("/api/v1/errors", {"start": "1e300"}, "start", id="errors-start-1e300"),
    pytest.param("/api/v1/errors", {"end": "9999-12-31"}, "end", id="errors-end-9999"),
    pytest.param("/api/v1/metrics", {"start": "1e300"}, "start", id="metrics-start-1e300"),
    pytest.param("/api/v1/metrics", {"end": "9999-12-31"}, "end", id="metrics-end-9999"),
    pytest.param("/api/v1/metrics", {"names": ",".join(f"m{i}" for i in range(1500))}, "names", id="names-1500"),
    pytest.param("/api/v1/metrics", {"aggregation": "MEDIAN"}, "MEDIAN", id="aggregation"),
]


@pytest.mark.parametrize(("path", "params", "field"), BAD_QUERIES)
def test_bad_query_parameters_are_400_naming_the_parameter(
    receiver: Running, path: str, params: dict[str, str], field: str
) -> None:
    response = receiver.get(path, **params)
    assert response.status_code == 400, response.text
    assert field in response.json()["error"]["message"]


def test_metric_values_near_the_float_limit_never_break_a_query(receiver: Running) -> None:
    for value in (1.7e308, 1.7e308, 1.6e308):
        assert receiver.post("/api/v1/metrics", {"name": "huge", "value": value}).status_code == 200
    mean = 1.7e308 / 3 * 2 + 1.6e308 / 3
    for aggregation in ("MEAN", "SUM", "MAX", "P50"):
        response = receiver.get("/api/v1/metrics", names="huge", aggregation=aggregation)
        assert response.status_code == 200, response.text
        value = orjson.loads(response.content)["metrics"]["huge"]["value"]
        expected = {"MEAN": pytest.approx(mean), "SUM": None, "MAX": 1.7e308, "P50": 1.7e308}[aggregation]
        assert value == expected


def test_summed_durations_beyond_64_bits_never_break_a_query_or_a_batch(receiver: Running) -> None:
    # Each duration fits; their sum (the summary's DurationSum) does not fit 64 bits.
    batch = [{"functionName": "Long.call", "durationMs": 9e11, "timestamp": 1_700_000_000 + i} for i in range(20)]
    response = receiver.post(INVOCATIONS, batch)
    assert response.status_code == 200, response.text
    assert response.json()["stored"] == 20
    stats = {row["function"]: row for row in receiver.get("/api/v1/stats").json()["functions"]}
    assert stats["Long.call"]["mean_ms"] == pytest.approx(9e11)
    assert stats["Long.call"]["calls"] == 20


# --- bodies ---------------------------------------------------------------------------------------


def test_every_gzip_member_is_read(receiver: Running) -> None:
    first = gzip.compress(orjson.dumps([{"functionName": "Gz.first"}])[:-1] + b",")
    second = gzip.compress(b'{"functionName": "Gz.second"}]')
    response = receiver.post(INVOCATIONS, raw=first + second, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 200, response.text
    assert receiver.rows("SELECT SpanName FROM otel_traces WHERE SpanName LIKE 'Gz.%' ORDER BY SpanName") == [
        ("Gz.first",),
        ("Gz.second",),
    ]


@pytest.mark.parametrize("trailer", [b"garbage", b"\x00\x00\x00\x00", b"\x1f\x8b\x08"])
def test_bytes_after_the_gzip_data_are_refused(receiver: Running, trailer: bytes) -> None:
    body = gzip.compress(orjson.dumps([{"functionName": "Gz.trailer"}])) + trailer
    response = receiver.post(INVOCATIONS, raw=body, headers={"Content-Encoding": "gzip"})
    assert (response.status_code, response.json()["error"]["code"]) == (400, "INVALID_ENCODING")
    assert receiver.rows("SELECT COUNT(*) FROM otel_traces WHERE SpanName = 'Gz.trailer'") == [(0,)]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (INVOCATIONS, b'[{"functionName": "a", "props": {"x": ' + b"[" * 300 + b"]" * 300 + b"}}]"),
        (TINKER, b'{"events": ' + b"[" * 300 + b"]" * 300 + b"}"),
        ("/v1/traces", b'{"resourceSpans": ' + b"[" * 2000 + b"]" * 2000 + b"}"),
    ],
)
def test_too_deeply_nested_json_says_so(receiver: Running, path: str, body: bytes) -> None:
    response = receiver.post(path, raw=body)
    assert response.status_code == 400
    assert "too deeply nested" in response.json()["error"]["message"]


def test_a_client_that_disconnects_mid_body_is_logged_once_at_debug(
    receiver: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    before = receiver.get("/health").json()["receiver"]["client_disconnects"]
    port = int(receiver.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as connection:
        connection.sendall(
            f"POST {INVOCATIONS} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-API-Key: {KEY}\r\n"
            "Content-Length: 100000\r\n\r\n[{".encode()
        )
        time.sleep(0.2)
    deadline = time.monotonic() + 5
    while receiver.get("/health").json()["receiver"]["client_disconnects"] == before:
        assert time.monotonic() < deadline, "the disconnect was not noticed"
        time.sleep(0.02)
    records = [record for record in caplog.records if "disconnected" in record.getMessage()]
    assert [(record.levelname, record.exc_info) for record in records] == [("DEBUG", None)]
    assert not [record for record in caplog.records if record.levelname in ("ERROR", "CRITICAL")]


# --- one client's bad batch never fails another's --------------------------------------------------


def test_an_unstorable_batch_fails_alone_among_good_clients(tmp_path: Path) -> None:
    from sdk_telemetry.receiver._writer import Batch

    with serve(ReceiverSettings(store_path=tmp_path / "s.sqlite3", api_keys=(KEY,))) as running:
        receiver = running.app.state.receiver
        writer = receiver.writer
        gate = threading.Event()
        writer.run_job(lambda connection: gate.wait(10))  # the good and the bad batches queue up together
        poisoned = Batch(spans=[(2**70, *["x"] * 11, 1, "Unset", "", "[]", "[]", 1.0, "", "")])
        bad = writer.submit(poisoned)
        results: list[httpx.Response] = []

        def client(n: int) -> None:
            results.append(running.post(INVOCATIONS, [invocation(n * 10 + i) for i in range(10)]))

        clients = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for thread in clients:
            thread.start()
        deadline = time.monotonic() + 5
        while writer.backlog < 81:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        gate.set()
        for thread in clients:
            thread.join(10)
        with pytest.raises(OverflowError):
            bad.result(5)
        assert sorted(response.status_code for response in results) == [200] * 8
        assert running.rows("SELECT COUNT(*) FROM otel_traces") == [(80,)]
        health = running.get("/health").json()["receiver"]
        assert (health["failed_batches"], health["isolated_groups"]) == (1, 1)


# --- connections and memory -------------------------------------------------------------------------


def test_slow_headers_are_cut_off_and_a_stalled_body_is_408(tmp_path: Path) -> None:
    settings = ReceiverSettings(
        store_path=tmp_path / "s.sqlite3", api_keys=(KEY,), header_timeout=0.3, body_timeout=0.3
    )
    with serve(settings) as running:
        port = int(running.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as slow:
            slow.sendall(b"POST /v1/metrics/invocations HTTP/1.1\r\nHost: x\r\n")  # and never the rest
            slow.settimeout(5)
            started = time.monotonic()
            assert slow.recv(100) == b""  # closed by the server
            assert time.monotonic() - started < 3
        with socket.create_connection(("127.0.0.1", port)) as stalled:
            stalled.sendall(
                f"POST {INVOCATIONS} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-API-Key: {KEY}\r\n"
                "Content-Length: 1000\r\n\r\n[".encode()
            )
            stalled.settimeout(5)
            answer = b""
            while b"BODY_TIMEOUT" not in answer and (chunk := stalled.recv(4096)):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 408")
        assert b"BODY_TIMEOUT" in answer
        assert running.post(INVOCATIONS, [invocation(1)]).status_code == 200  # others are served meanwhile


def test_bodies_held_at_once_are_bounded_in_bytes(tmp_path: Path) -> None:
    settings = ReceiverSettings(
        store_path=tmp_path / "s.sqlite3", api_keys=(KEY,), max_body_bytes=100_000, max_inflight_bytes=150_000
    )
    with serve(settings) as running:
        port = int(running.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as first:  # holds 90 kB, unfinished
            first.sendall(
                f"POST {INVOCATIONS} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-API-Key: {KEY}\r\n"
                "Content-Length: 95000\r\n\r\n".encode()
                + b"["
                + b" " * 90_000
            )
            receiver = running.app.state.receiver
            deadline = time.monotonic() + 5
            while receiver.inflight_bytes < 90_000:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            body = b"[" + b" " * 80_000 + orjson.dumps(invocation(2)) + b"]"
            refused = running.post(INVOCATIONS, raw=body)
            assert refused.status_code == 503
            assert refused.headers["Retry-After"] == "1"
            assert refused.json()["error"]["code"] == "BUSY"
            assert running.post(INVOCATIONS, [invocation(3)]).status_code == 200  # a small one still fits
        deadline = time.monotonic() + 5
        while receiver.inflight_bytes:
            assert time.monotonic() < deadline, "held bytes were not released"
            time.sleep(0.01)
        assert running.post(INVOCATIONS, raw=body).status_code == 200
        assert running.get("/health").json()["receiver"]["rejected_inflight"] == 1


def test_connections_beyond_the_cap_are_503(tmp_path: Path) -> None:
    settings = ReceiverSettings(store_path=tmp_path / "s.sqlite3", api_keys=(KEY,), max_connections=4)
    with serve(settings) as running:
        port = int(running.url.rsplit(":", 1)[1])
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
        try:
            time.sleep(0.2)
            refused = httpx.post(running.url + INVOCATIONS, json=[invocation(1)], headers={"X-API-Key": KEY})
            assert refused.status_code == 503
        finally:
            for connection in idle:
                connection.close()
        # The server frees a slot once it has seen each close: poll rather than guess how long that takes.
        deadline = time.monotonic() + 5
        while (status := running.post(INVOCATIONS, [invocation(1)]).status_code) == 503 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert status == 200, f"closed connections still count against the cap: {status}"


# --- retention and a full disk -------------------------------------------------------------------


def test_a_full_store_says_so_answers_507_and_retention_makes_room(tmp_path: Path) -> None:
    settings = ReceiverSettings(store_path=tmp_path / "s.sqlite3", api_keys=(KEY,), retention_days=7)
    with serve(settings) as running:
        old = time.time() - 10 * 86_400
        for batch in range(10):
            expired = [
                {"functionName": "Old.call", "timestamp": old + batch * 100 + i, "props": {"pad": "x" * 500}}
                for i in range(100)
            ]
            assert running.post(INVOCATIONS, expired).status_code == 200
        writer = running.app.state.receiver.writer
        # SQLite's own "database or disk is full": the store may not grow by another page.
        writer.run_job(
            lambda connection: connection.execute(
                f"PRAGMA max_page_count = {connection.execute('PRAGMA page_count').fetchone()[0]}"
            )
        ).result(5)
        fresh = [
            {"functionName": "New.call", "timestamp": time.time(), "props": {"pad": "y" * 500}} for _ in range(300)
        ]
        full = running.post(INVOCATIONS, fresh)
        assert full.status_code == 507, full.text
        assert full.json()["error"]["code"] == "STORAGE_FULL"
        assert full.headers["Retry-After"] == "1"
        health = running.get("/health")
        assert (health.status_code, health.json()["status"]) == (503, "unhealthy")
        assert "full" in health.json()["problems"][0]
        assert httpx.get(running.url + "/health").json() == {"status": "unhealthy", "version": health.json()["version"]}
        deadline = time.monotonic() + 10  # the refusal started a sweep: the expired rows make room
        while running.rows("SELECT COUNT(*) FROM otel_traces WHERE SpanName = 'Old.call'") != [(0,)]:
            assert time.monotonic() < deadline, "retention did not make room"
            time.sleep(0.05)
        stored = running.post(INVOCATIONS, fresh)
        assert stored.status_code == 200, stored.text
        assert running.get("/health").json()["status"] == "healthy"


def test_retention_sweeps_in_small_steps_between_writes(tmp_path: Path) -> None:
    from sdk_telemetry.store import STEP_ROWS

    settings = ReceiverSettings(store_path=tmp_path / "s.sqlite3", api_keys=(KEY,), retention_days=7)
    with serve(settings) as running:
        old = time.time() - 10 * 86_400
        rows = 3 * STEP_ROWS + 10
        for start in range(0, rows, 1000):
            batch = [{"functionName": "Old.call", "timestamp": old + i} for i in range(start, min(rows, start + 1000))]
            assert running.post(INVOCATIONS, batch).status_code == 200
        receiver = running.app.state.receiver
        jobs: list[int] = []
        original = receiver.writer.run_job
        receiver.writer.run_job = lambda job: jobs.append(1) or original(job)  # type: ignore[func-returns-value]
        deleted = asyncio.run_coroutine_threadsafe(receiver.enforce_retention(), running.loop).result(30)
        assert deleted["spans"] == rows
        assert len(jobs) == 5  # four steps that deleted, one that found nothing left
        assert running.rows("SELECT COUNT(*), COALESCE(SUM(Kept), 0) FROM otel_traces, otel_traces_summary") == [(0, 0)]


@pytest.mark.parametrize("path", ["/v1/traces", "/v1/logs", "/v1/metrics"])
@pytest.mark.parametrize(
    "body",
    [
        b"20362",
        b"[]",
        b'"text"',
        b"null",
        b'{"resourceSpans": 5, "resourceLogs": 5, "resourceMetrics": 5}',
        b'{"resourceSpans": [5], "resourceLogs": [5], "resourceMetrics": [5]}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": 5, "traceId": 7}]}]}]}',
        b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"attributes": {"a": 1}}]}]}]}',
        b'{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "m", "gauge": []}]}]}]}',
    ],
)
def test_otlp_json_of_the_wrong_shape_is_400(receiver: Running, path: str, body: bytes) -> None:
    # Found by schemathesis: a JSON body that is not an object was a 500.
    response = receiver.post(path, raw=body)
    if response.status_code == 200:  # a shape that is valid for another signal: unknown fields are ignored
        assert response.json() == {}
        return
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "INVALID_OTLP"
    assert response.json()["error"]["message"].count("not a valid") == 1
