"""What real Composio clients send, over real HTTP on 127.0.0.1: the `composio` package's own
telemetry (no key, raw environment values, one request per call), keyless ingest on the Composio
routes only with a per-client rate limit, distinct items never merged, resends stored once, and
the schema's leniency (clamped, truncated, dropped values counted)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import orjson
import pytest

from sdk_telemetry.receiver import ReceiverSettings
from tests.helpers.receiver import KEY, Running, invocation, serve

INVOCATIONS = "/v1/metrics/invocations"


@pytest.fixture
def settings(tmp_path: Path) -> ReceiverSettings:
    return ReceiverSettings(store_path=tmp_path / "received.sqlite3", api_keys=(KEY,), composio_keyless=True)


@pytest.fixture
def keyless(settings: ReceiverSettings) -> Iterator[Running]:
    with serve(settings) as running:
        yield running


def anonymous_post(running: Running, path: str, body: Any, **headers: str) -> httpx.Response:
    return httpx.post(
        running.url + path, content=orjson.dumps(body), headers={"Content-Type": "application/json", **headers}
    )


def wait_for_rows(running: Running, sql: str, expected: int) -> None:
    deadline = time.monotonic() + 10
    while running.rows(sql)[0][0] < expected:
        assert time.monotonic() < deadline, f"only {running.rows(sql)[0][0]} of {expected} rows arrived"
        time.sleep(0.02)


def test_the_real_composio_client_is_stored_without_a_key(keyless: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    from composio.core.models import _telemetry, base

    monkeypatch.setattr(_telemetry, "METRIC_ENDPOINT", keyless.url + INVOCATIONS)
    monkeypatch.setattr(_telemetry, "ERROR_ENDPOINT", keyless.url + "/v1/errors")
    monkeypatch.setattr(base, "_environment", "prod")  # the raw ENVIRONMENT value, as the client sends it

    class Tools(base.Resource):
        def execute(self, fail: bool = False) -> int:
            if fail:
                raise ValueError("")
            return 1

    tools = Tools(SimpleNamespace(provider="openai"))  # type: ignore[arg-type]
    for _ in range(5):
        tools.execute()
    with pytest.raises(ValueError):
        tools.execute(fail=True)
    wait_for_rows(keyless, "SELECT COUNT(*) FROM otel_traces", 6)
    rows = keyless.rows("SELECT SpanName, StatusCode, StatusMessage, Environment, ResourceAttributes FROM otel_traces")
    assert sorted((row[0], row[1]) for row in rows) == [("Tools.execute", "Error")] + [("Tools.execute", "Unset")] * 5
    assert {row[3] for row in rows} == {"production"}  # "prod", mapped
    assert {orjson.loads(row[4])["sdk_telemetry.provider"] for row in rows} == {"openai"}
    assert [row[2] for row in rows if row[1] == "Error"] == [""]


def test_keyless_is_for_the_composio_routes_only(keyless: Running) -> None:
    assert anonymous_post(keyless, INVOCATIONS, [invocation(1)]).status_code == 200
    assert anonymous_post(keyless, "/v1/errors", invocation(2, error={"name": "E"})).status_code == 200
    wrong = anonymous_post(keyless, INVOCATIONS, [invocation(3)], **{"X-API-Key": "wrong"})
    assert wrong.status_code == 401  # a wrong key is still refused
    tinker = {"events": [], "platform": "Linux", "sdk_version": "1", "session_id": "s", "process_uuid": "p"}
    for path, body in (
        ("/api/v1/telemetry", tinker),
        ("/v1/traces", {}),
        ("/api/v1/metrics", {"name": "m", "value": 1}),
    ):
        assert anonymous_post(keyless, path, body).status_code == 401, path
    assert httpx.get(keyless.url + "/api/v1/stats").status_code == 401
    assert keyless.rows("SELECT COUNT(*) FROM otel_traces") == [(2,)]


def test_without_the_option_keyless_clients_are_refused(settings: ReceiverSettings) -> None:
    with serve(replace(settings, composio_keyless=False)) as running:
        assert anonymous_post(running, INVOCATIONS, [invocation(1)]).status_code == 401
        assert running.rows("SELECT COUNT(*) FROM otel_traces") == [(0,)]


def test_keyless_clients_are_rate_limited_per_client(settings: ReceiverSettings) -> None:
    with serve(replace(settings, keyless_rate=0.5, keyless_burst=3)) as running:
        answers = [anonymous_post(running, INVOCATIONS, [invocation(i)]) for i in range(5)]
        assert [answer.status_code for answer in answers] == [200, 200, 200, 429, 429]
        limited = answers[3]
        assert limited.headers["Retry-After"] == "2"
        assert limited.json()["error"]["code"] == "RATE_LIMITED"
        assert running.post(INVOCATIONS, [invocation(9)]).status_code == 200  # with a key: not limited
        assert running.rows("SELECT COUNT(*) FROM otel_traces") == [(4,)]
        assert running.get("/health").json()["receiver"]["keyless_rate_limited"] == 2


def test_identical_items_of_one_request_are_distinct_calls_and_a_resend_lands_once(keyless: Running) -> None:
    # The TypeScript client stamps whole milliseconds: two fast calls are byte-identical.
    item = {"functionName": "Tools.list", "durationMs": 3, "timestamp": 1_700_000_000.123}
    batch = [item, item, item, {**item, "durationMs": 4}]
    first = anonymous_post(keyless, INVOCATIONS, batch)
    assert first.json() == {"status": "accepted", "accepted": 4, "stored": 4, "duplicates": 0}
    again = anonymous_post(keyless, INVOCATIONS, batch)  # the same body again: a resend
    assert again.json() == {"status": "accepted", "accepted": 4, "stored": 0, "duplicates": 4}
    assert keyless.rows("SELECT COUNT(*) FROM otel_traces") == [(4,)]
    keyed = [item, item]
    assert anonymous_post(keyless, INVOCATIONS, keyed, **{"Idempotency-Key": "k-1"}).json()["stored"] == 2
    # A resend under the same key, even re-encoded (here with one item's timestamp re-stamped), lands once.
    resent = anonymous_post(
        keyless, INVOCATIONS, [item, {**item, "timestamp": 1_700_000_001}], **{"Idempotency-Key": "k-1"}
    )
    assert (resent.json()["stored"], resent.json()["duplicates"]) == (0, 2)
    assert keyless.rows("SELECT COUNT(*) FROM otel_traces") == [(6,)]
    totals = keyless.get("/health").json()["receiver"]
    assert (totals["committed_rows"], totals["duplicate_rows"]) == (6, 6)


def test_as_lenient_as_the_real_schema_and_every_adjustment_counted(keyless: Running) -> None:
    batch = [
        {"functionName": "A.env", "source": {"environment": "$NODE_ENV", "service": "sdk"}},
        {"functionName": "A.env", "source": {"environment": "Staging", "language": "ts"}},
        {"functionName": "A.step", "durationMs": -1.7976931348623157e308},
        {"functionName": ""},
        {"functionName": "N" * 5000, "error": {"name": ""}},
        {"functionName": "A.svc", "source": {"service": "unknown-service", "language": "cobol"}},
    ]
    response = anonymous_post(keyless, INVOCATIONS, batch)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["accepted"], answer["stored"]) == (6, 6)
    assert answer["adjusted"] == {"source_values_dropped": 3, "durations_clamped": 1, "names_truncated": 1}
    rows = keyless.rows("SELECT SpanName, Environment, Duration, ResourceAttributes FROM otel_traces ORDER BY rowid")
    assert [row[1] for row in rows[:2]] == ["", "staging"]
    assert orjson.loads(rows[1][3])["telemetry.sdk.language"] == "typescript"
    assert rows[2][2] == 0
    assert rows[3][0] == ""
    assert rows[4][0] == "N" * 1024
    assert "telemetry.sdk.language" not in orjson.loads(rows[5][3])
    assert keyless.get("/health").json()["receiver"]["adjusted"] == answer["adjusted"]


def test_extension_fields_carry_service_session_and_user(keyless: Running) -> None:
    item = invocation(1, metadata={"serviceName": "acme-sdk", "sessionId": "sess-7", "userId": "u-3", "projectId": "p"})
    assert anonymous_post(keyless, INVOCATIONS, [item]).status_code == 200
    ((service, session, resource),) = keyless.rows("SELECT ServiceName, SessionId, ResourceAttributes FROM otel_traces")
    assert (service, session) == ("acme-sdk", "sess-7")
    assert orjson.loads(resource)["enduser.id"] == "u-3"
    (row,) = keyless.get("/api/v1/stats", service="acme-sdk").json()["functions"]
    assert row["calls"] == 1


def test_our_exporter_carries_service_session_and_user_and_sends_no_hostname(keyless: Running) -> None:
    import socket

    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import StatusCode
    from sdk_telemetry_exporters import attributes as attr
    from sdk_telemetry_exporters.composio import ComposioSpanExporter

    from sdk_telemetry.store import Filters, connect, function_stats

    exporter = ComposioSpanExporter(endpoint=keyless.url + "/v1", api_key=KEY)
    resource = Resource.create(
        {"service.name": "acme-sdk", "session.id": "sess-42", "enduser.id": "user-7", "host.name": socket.gethostname()}
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer(attr.INVOCATION_SCOPE)
    with tracer.start_as_current_span("Tools.list"):
        pass
    with tracer.start_as_current_span("Tools.execute") as span:
        span.set_attribute(attr.ERROR_TYPE, "ValueError")
        span.add_event("exception", {"exception.type": "ValueError", "exception.message": ""})
        span.set_status(StatusCode.ERROR, "ValueError")
    provider.shutdown()
    rows = keyless.rows("SELECT SpanName, ServiceName, SessionId, ResourceAttributes, StatusMessage FROM otel_traces")
    assert {row[0] for row in rows} == {"Tools.list", "Tools.execute"}
    assert {(row[1], row[2]) for row in rows} == {("acme-sdk", "sess-42")}
    for row in rows:
        resource_attributes = orjson.loads(row[3])
        assert resource_attributes["enduser.id"] == "user-7"
        assert "host.name" not in resource_attributes
        assert socket.gethostname() not in row[3]
    assert [row[4] for row in rows if row[0] == "Tools.execute"] == [""]  # the empty message, not "ValueError"
    connection = connect(keyless.store)
    assert {row.function for row in function_stats(connection, Filters(service="acme-sdk"))} == {
        "Tools.list",
        "Tools.execute",
    }
    assert {row.function for row in function_stats(connection, Filters(session="sess-42"))} == {
        "Tools.list",
        "Tools.execute",
    }
