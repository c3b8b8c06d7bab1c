"""The `tinker` exporter against a real loopback server: each request body field by field."""

from __future__ import annotations

import platform
import re
import time
import uuid
from typing import Any

import pytest

from exporters.tests.helpers.loopback import LoopbackServer, Received, Reply
from sdk_telemetry import configure_telemetry, instrument

PATH = "/api/v1/telemetry"
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
DURATION = re.compile(r"\d+:\d\d:\d\d(\.\d{6})?")
COMMON = {"event", "event_id", "event_session_index", "severity", "timestamp"}
TOP_LEVEL = {"events", "platform", "sdk_version", "session_id", "process_uuid"}


def events_of(requests: list[Received]) -> list[dict[str, Any]]:
    return [event for request in requests for event in request.json()["events"]]


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class Client:
    def fail(self) -> None:
        raise KeyError("missing")


def test_request_body_field_by_field(server):
    telemetry = configure_telemetry(
        exporter="tinker", endpoint=server.url, api_key="key-1", service_version="1.2.3", batch_interval=0.05
    )
    assert telemetry.log("user.action", {"button": "submit", "count": 3, "nested": {"ok": True}}, "warning")
    try:
        raise RuntimeError("it broke")
    except RuntimeError as exc:
        assert telemetry.log_exception(exc)
    telemetry.shutdown()

    requests = server.requests_to(PATH)
    assert requests, [request.path for request in server.received]
    for request in requests:
        assert request.method == "POST"
        assert request.headers["x-api-key"] == "key-1"
        assert request.headers["content-type"] == "application/json"
        body = request.json()
        assert set(body) == TOP_LEVEL
        assert body["session_id"] == telemetry.session_id
        assert body["platform"] == platform.system()
        assert body["sdk_version"] == "1.2.3"
        assert is_uuid(body["process_uuid"])
        assert 1 <= len(body["events"]) <= 100
    events = events_of(requests)
    assert [event["event"] for event in events] == [
        "SESSION_START",
        "GENERIC_EVENT",
        "UNHANDLED_EXCEPTION",
        "SESSION_END",
    ]
    assert [event["event_session_index"] for event in events] == [0, 1, 2, 3]
    assert len({event["event_id"] for event in events}) == 4
    for event in events:
        assert is_uuid(event["event_id"])
        assert TIMESTAMP.fullmatch(event["timestamp"]), event["timestamp"]
    start, generic, error, end = events
    assert set(start) == COMMON and start["severity"] == "INFO"
    assert set(generic) == COMMON | {"event_name", "event_data"}
    assert generic["severity"] == "WARNING"
    assert generic["event_name"] == "user.action"
    assert generic["event_data"] == {"button": "submit", "count": 3, "nested": {"ok": True}}
    assert set(error) == COMMON | {"error_type", "error_message", "traceback"}
    assert error["severity"] == "ERROR"
    assert error["error_type"] == "RuntimeError"
    assert error["error_message"] == "it broke"
    assert error["traceback"].startswith("Traceback (most recent call last):")
    assert error["traceback"].rstrip().endswith("RuntimeError: it broke")
    assert set(end) == COMMON | {"duration"}
    assert DURATION.fullmatch(end["duration"]), end["duration"]
    assert end["severity"] == "INFO"


def test_a_failed_instrumented_call_is_an_unhandled_exception_event(server):
    telemetry = configure_telemetry(exporter="tinker", endpoint=server.url, batch_interval=30)
    instrument(Client)
    with pytest.raises(KeyError):
        Client().fail()
    [request] = server.wait_for(PATH, timeout=5)  # sent at once, not after the 30 s interval
    [start, error] = request.json()["events"]
    assert start["event"] == "SESSION_START"
    assert error["event"] == "UNHANDLED_EXCEPTION"
    assert error["error_type"] == "KeyError"
    assert error["error_message"] == "'missing'"
    assert "in fail" in error["traceback"]
    assert error["event_session_index"] == 1
    telemetry.shutdown()


def test_at_most_100_events_per_request_and_indexes_run_on_across_requests(server):
    telemetry = configure_telemetry(exporter="tinker", endpoint=server.url, batch_interval=30, batch_size=1000)
    for number in range(249):
        assert telemetry.log("tick", {"n": number})
    assert telemetry.flush(timeout=5)
    requests = server.requests_to(PATH)
    assert [len(request.json()["events"]) for request in requests] == [100, 100, 50]
    events = events_of(requests)
    assert [event["event_session_index"] for event in events] == list(range(250))
    assert [event["event_data"]["n"] for event in events[1:]] == list(range(249))
    telemetry.shutdown()


def test_sent_when_100_events_are_queued_without_a_flush(server):
    telemetry = configure_telemetry(exporter="tinker", endpoint=server.url, batch_interval=30)
    for number in range(98):
        telemetry.log("tick", {"n": number})
    time.sleep(0.3)
    assert server.requests_to(PATH) == [], "99 queued events should wait for the interval"
    telemetry.log("tick", {"n": 98})  # the 100th, with SESSION_START
    [request] = server.wait_for(PATH, timeout=5)
    assert len(request.json()["events"]) == 100
    telemetry.shutdown()


def test_sent_every_interval(server):
    telemetry = configure_telemetry(exporter="tinker", endpoint=server.url, batch_interval=0.2)
    telemetry.log("tick")
    started = time.monotonic()
    [request] = server.wait_for(PATH, timeout=5)
    assert time.monotonic() - started < 2
    assert [event["event"] for event in request.json()["events"]] == ["SESSION_START", "GENERIC_EVENT"]
    telemetry.shutdown()


def test_transient_failures_are_retried_by_the_shared_transport():
    answers = iter([503, 503])

    def script(request: Received) -> Reply:
        return Reply(status=next(answers, 200))

    with LoopbackServer(script) as flaky:
        telemetry = configure_telemetry(exporter="tinker", endpoint=flaky.url, batch_interval=30)
        assert telemetry.log("tick")
        assert telemetry.flush(timeout=10)
        requests = flaky.requests_to(PATH)
        assert len(requests) == 3
        assert requests[0].body == requests[2].body, "the retry re-sends the same batch"
        stats = telemetry.stats()["session"]["exporters"]["tinker"]
        assert stats["exported"] == 2
        assert stats["exporter"]["retries"] == 2
        telemetry.shutdown()


def test_a_rejected_batch_is_not_retried_and_is_counted():
    with LoopbackServer(lambda request: Reply(status=422, body=b'{"detail": "bad"}')) as strict:
        telemetry = configure_telemetry(exporter="tinker", endpoint=strict.url, batch_interval=30)
        telemetry.log("tick")
        assert telemetry.flush(timeout=5) is False  # handed over, but the server refused it: lost
        assert len(strict.requests_to(PATH)) == 1
        stats = telemetry.stats()["session"]["exporters"]["tinker"]
        assert stats["failed"] == 2
        assert stats["exporter"]["events_rejected"] == 2
        assert "HTTP 422" in stats["exporter"]["last_error"]
        telemetry.shutdown()


def test_no_endpoint_sends_nothing_and_counts_the_events_as_failed(server, caplog):
    telemetry = configure_telemetry(exporter="tinker", batch_interval=30)
    assert "tinker exporter has no endpoint" in caplog.text
    telemetry.log("tick")
    assert telemetry.flush(timeout=2) is False  # no endpoint: lost
    assert telemetry.stats()["session"]["exporters"]["tinker"]["failed"] == 2
    assert server.received == []
    telemetry.shutdown()
