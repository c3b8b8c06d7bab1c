"""The Composio-style wire format as a real server receives it: endpoints, batching, every field."""

from __future__ import annotations

import platform
import re
import socket
import time
from typing import Any

import orjson
import pytest

from exporters.tests.helpers.loopback import LoopbackServer, Received
from sdk_telemetry import configure_telemetry, instrument

INVOCATIONS = "/metrics/invocations"
ERRORS = "/errors"


Loopback = LoopbackServer


class ToolError(Exception):
    code = "TOOL_FAILED"


class Tools:
    def execute(self, n: int = 0) -> int:
        return n

    def slow(self, seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    def fail(self, message: str = "boom") -> None:
        raise ToolError(message)

    def lookup(self, key: Any = None) -> Any:
        return key


class Inner:
    def fail(self) -> None:
        raise ToolError("inner failure")


class Outer:
    def run(self) -> None:
        Inner().fail()


def configure(server: LoopbackServer, **overrides: Any) -> Any:
    settings: dict[str, Any] = {"exporter": "composio", "endpoint": server.url, "batch_interval": 0.05}
    settings.update(overrides)
    return configure_telemetry(**settings)


def items(requests: list[Received]) -> list[dict[str, Any]]:
    """Every payload of /metrics/invocations requests (each body is an array)."""
    result: list[dict[str, Any]] = []
    for request in requests:
        body = request.json()
        assert isinstance(body, list), f"{request.path} body is not a JSON array: {body!r}"
        result.extend(body)
    return result


def nulls(value: Any, path: str = "$") -> list[str]:
    """JSON paths of every `null` in `value`."""
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in nulls(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [found for index, item in enumerate(value) for found in nulls(item, f"{path}[{index}]")]
    return []


def test_250_successes_arrive_as_json_arrays_of_at_most_100(server):
    telemetry = configure(server)
    instrument(Tools)
    tools = Tools()
    for n in range(250):
        tools.execute(n)
    assert telemetry.flush(timeout=10)

    requests = server.wait_for(INVOCATIONS, 3)
    sizes = [len(request.json()) for request in requests]
    assert all(size <= 100 for size in sizes), f"request sizes {sizes}"
    assert sum(sizes) == 250, f"request sizes {sizes}"
    assert len(requests) >= 3
    for request in requests:
        assert request.method == "POST"
        assert request.headers["content-type"] == "application/json"
    assert {payload["functionName"] for payload in items(requests)} == {"Tools.execute"}
    assert server.requests_to(ERRORS) == []
    assert {request.path for request in server.received} == {INVOCATIONS}


def test_success_payload_field_by_field(server):
    telemetry = configure(
        server, project_id="proj-123", provider="openai", service_version="1.2.3", environment="production"
    )
    instrument(Tools)
    before = time.time()
    Tools().slow(0.05)
    after = time.time()
    assert telemetry.flush(timeout=5)

    [request] = server.wait_for(INVOCATIONS)
    body = request.json()
    assert isinstance(body, list) and len(body) == 1
    [payload] = body
    assert set(payload) == {"functionName", "durationMs", "timestamp", "source", "metadata"}, payload
    assert payload["functionName"] == "Tools.slow"
    assert isinstance(payload["durationMs"], float)
    assert 50.0 <= payload["durationMs"] < 50.0 + 250.0, f"durationMs {payload['durationMs']} for a 50 ms sleep"
    assert isinstance(payload["timestamp"], float)
    assert before - 0.01 <= payload["timestamp"] <= after, f"timestamp {payload['timestamp']} is not epoch seconds"
    assert payload["source"] == {
        "service": "sdk",
        "language": "python",
        "version": "1.2.3",
        "platform": platform.system().lower(),
        "environment": "production",
    }  # no source.host: the machine's name does not leave the process
    assert f'"{socket.gethostname()}"' not in orjson.dumps(body).decode()
    event_id = payload["metadata"].pop("eventId")
    assert re.fullmatch(r"[0-9a-f]{48}", event_id), event_id
    assert payload["metadata"] == {"projectId": "proj-123", "provider": "openai", "sessionId": telemetry.session_id}
    assert nulls(body) == []
    assert request.headers["content-type"] == "application/json"
    assert "x-api-key" not in request.headers


def test_failed_call_is_one_object_at_errors_and_arrives_before_the_batch_interval(server):
    telemetry = configure(server, batch_interval=30, project_id="proj-9", provider="anthropic", service_version="0.4.0")
    instrument(Tools)
    tools = Tools()
    with pytest.raises(ToolError):
        tools.fail("boom")
    raised_at = time.monotonic()

    [request] = server.wait_for(ERRORS, timeout=5)
    assert request.at - raised_at < 2.0, f"/errors arrived {request.at - raised_at:.2f}s after the failing call"
    time.sleep(0.3)
    assert len(server.requests_to(ERRORS)) == 1

    payload = request.json()
    assert isinstance(payload, dict), f"/errors body must be a single object, got {payload!r}"
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    assert set(payload) == {"functionName", "durationMs", "timestamp", "source", "metadata", "error"}, payload
    assert payload["functionName"] == "Tools.fail"
    assert isinstance(payload["durationMs"], float) and payload["durationMs"] >= 0
    assert abs(payload["timestamp"] - time.time()) < 30
    assert re.fullmatch(r"[0-9a-f]{48}", payload["metadata"].pop("eventId"))
    assert payload["metadata"] == {"projectId": "proj-9", "provider": "anthropic", "sessionId": telemetry.session_id}
    error = payload["error"]
    assert set(error) == {"name", "code", "errorId", "message", "stack"}, error
    assert error["name"] == "ToolError"
    assert error["code"] == "TOOL_FAILED"
    assert re.fullmatch(r"[0-9a-f]{32}", error["errorId"]), error["errorId"]
    assert "boom" in error["message"]
    assert "ToolError: boom" in error["stack"] and "in fail" in error["stack"], error["stack"]
    assert all(isinstance(value, str) for value in error.values())
    assert nulls(payload) == []


def test_successes_wait_for_the_interval_or_a_flush(server):
    telemetry = configure(server, batch_interval=30)
    instrument(Tools)
    tools = Tools()
    for n in range(3):
        tools.execute(n)
    time.sleep(0.5)
    assert server.received == [], "successes were sent before the batch interval or a flush"

    assert telemetry.flush(timeout=5) is True
    requests = server.wait_for(INVOCATIONS)
    assert [payload["functionName"] for payload in items(requests)] == ["Tools.execute"] * 3


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ("$ENVIRONMENT", None),
        ("weird", None),
        ("development", "development"),
        ("staging", "staging"),
        ("ci", "ci"),
        ("test", "test"),
    ],
)
def test_source_environment_is_one_of_the_enum_or_omitted(server, environment, expected):
    telemetry = configure(server, environment=environment, enabled=True)
    instrument(Tools)
    Tools().execute()
    assert telemetry.flush(timeout=5)

    [payload] = items(server.wait_for(INVOCATIONS))
    source = payload["source"]
    if expected is None:
        assert "environment" not in source, f"environment {environment!r} sent as {source.get('environment')!r}"
    else:
        assert source["environment"] == expected
    assert source["service"] == "sdk"
    assert source["language"] == "python"
    assert nulls(payload) == []


def test_absent_fields_are_omitted_and_no_api_key_header_by_default(server):
    telemetry = configure(server)
    instrument(Tools)
    tools = Tools()
    tools.execute(1)
    with pytest.raises(ToolError):
        tools.fail()
    assert telemetry.flush(timeout=5)

    [success] = items(server.wait_for(INVOCATIONS))
    [error_request] = server.wait_for(ERRORS)
    failure = error_request.json()
    for payload in (success, failure):
        assert "props" not in payload, "arguments must not be sent by default"
        # the event id and the session, when neither project id, provider nor service name is set
        assert set(payload["metadata"]) == {"eventId", "sessionId"}
        assert "version" not in payload["source"]
        assert "environment" not in payload["source"]
        assert nulls(payload) == []
    assert "error" not in success
    for request in server.received:
        assert "x-api-key" not in request.headers
        assert request.headers["content-type"] == "application/json"


def test_api_key_header_is_sent_when_configured(server):
    telemetry = configure(server, api_key="sk-test-123")
    instrument(Tools)
    tools = Tools()
    tools.execute()
    with pytest.raises(ToolError):
        tools.fail()
    assert telemetry.flush(timeout=5)

    server.wait_for(INVOCATIONS)
    server.wait_for(ERRORS)
    assert {request.path for request in server.received} == {INVOCATIONS, ERRORS}
    for request in server.received:
        assert request.headers.get("x-api-key") == "sk-test-123"
        assert request.headers["content-type"] == "application/json"


def test_reraised_exception_through_two_layers_is_reported_once(server):
    telemetry = configure(server, nested_calls="children")  # both layers make spans
    instrument(Inner)
    instrument(Outer)
    with pytest.raises(ToolError):
        Outer().run()
    assert telemetry.flush(timeout=5)
    server.wait_for(INVOCATIONS)
    time.sleep(0.2)

    errors = server.requests_to(ERRORS)
    assert len(errors) == 1, [request.json() for request in errors]
    reported = errors[0].json()
    assert reported["functionName"] == "Inner.fail"
    outer = [payload for payload in items(server.requests_to(INVOCATIONS)) if payload["functionName"] == "Outer.run"]
    assert len(outer) == 1
    assert outer[0]["error"]["errorId"] == reported["error"]["errorId"]
    assert outer[0]["error"]["name"] == "ToolError"
    assert nulls(outer[0]) == []


def test_two_separate_failures_are_two_reports_with_distinct_error_ids(server):
    telemetry = configure(server)
    instrument(Tools)
    tools = Tools()
    for _ in range(2):
        with pytest.raises(ToolError):
            tools.fail()
    assert telemetry.flush(timeout=5)

    errors = server.wait_for(ERRORS, 2)
    ids = [request.json()["error"]["errorId"] for request in errors]
    assert len(ids) == 2 and ids[0] != ids[1], ids


def test_captured_arguments_contain_no_null(server):
    """With capture on, a `None` argument must not put a `null` on the wire (the schema rejects it)."""
    telemetry = configure(server, capture_args=True)
    instrument(Tools)
    Tools().lookup(key=None)
    assert telemetry.flush(timeout=5)

    [payload] = items(server.wait_for(INVOCATIONS))
    assert "props" in payload, payload
    assert nulls(payload) == [], payload


def test_captured_positional_arguments_of_a_method_keep_their_names(server):
    telemetry = configure(server, capture_args=True)
    instrument(Tools)
    Tools().execute(7)
    Tools().lookup("abc")
    assert telemetry.flush(timeout=5)

    props = {payload["functionName"]: payload.get("props") for payload in items(server.wait_for(INVOCATIONS))}
    assert props == {"Tools.execute": {"n": 7}, "Tools.lookup": {"key": "abc"}}
