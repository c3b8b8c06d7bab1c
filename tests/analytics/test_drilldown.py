"""Drill-down over the simulated week, and over what a real instrumented client stored: a function's
calls, a trace with its HTTP child, an error group's occurrences with their stack, sessions, a tail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from sdk_telemetry import configure_telemetry, instrument
from sdk_telemetry.analytics import (
    AnalyticsError,
    NotFound,
    TimeRange,
    error_occurrences,
    open_source,
    recent_calls,
    session_timeline,
    sessions,
    tail,
    top_errors,
    trace,
)
from tests.helpers.spans import DAY, SpanFactory, write_spans
from tests.helpers.week import EXECUTE, HTTP, Made
from tests.helpers.week import WEEK_NOW as NOW


def test_recent_calls_of_a_function_newest_first(source: Any, week_store: Any) -> None:
    made: Made = week_store[1]
    calls = recent_calls(source, EXECUTE, limit=1000)
    assert len(calls) == made.count(0, NOW, function=EXECUTE)
    assert [c["timestamp"] for c in calls] == sorted((c["timestamp"] for c in calls), reverse=True)
    assert {c["function"] for c in calls} == {EXECUTE}
    failed = recent_calls(source, EXECUTE, errors_only=True, limit=1000)
    assert len(failed) == made.count(0, NOW, function=EXECUTE, failed=True) > 0
    assert {c["error_type"] for c in failed} == {"ToolTimeout"}
    one = recent_calls(source, None, session="w-010", limit=100)
    assert len(one) == made.count(0, NOW, session="w-010") and {c["session_id"] for c in one} == {"w-010"}


def test_a_trace_is_a_waterfall_with_its_http_child(source: Any) -> None:
    call = recent_calls(source, EXECUTE, errors_only=True, limit=1)[0]
    found = trace(source, call["trace_id"])
    assert [(s["name"], s["depth"], s["call"]) for s in found["spans"]] == [(EXECUTE, 0, True), (HTTP, 1, False)]
    root, http = found["spans"]
    assert http["parent_span_id"] == root["span_id"] and http["kind"] == "Client"
    assert http["attributes"]["http.response.status_code"] == 504 and http["attributes"]["url.full"].endswith("/run")
    assert 0 < http["offset_ms"] < root["duration_ms"] and found["duration_ms"] == pytest.approx(root["duration_ms"])
    stack = root["events"][0]["attributes"]["exception.stacktrace"]
    assert root["status"] == "Error" and "Traceback (most recent call last)" in stack and "ToolTimeout" in stack
    assert trace(source, call["trace_id"].upper())["trace_id"] == call["trace_id"]
    with pytest.raises(NotFound, match="no trace"):
        trace(source, "f" * 32)
    with pytest.raises(AnalyticsError, match="32 hex digits"):
        trace(source, "not-a-trace")


def test_an_error_group_lists_its_occurrences_with_stack_and_session(source: Any, week_store: Any) -> None:
    made: Made = week_store[1]
    (group,) = top_errors(source)
    assert (group["type"], group["function"]) == ("ToolTimeout", EXECUTE)
    found = error_occurrences(source, "ToolTimeout", EXECUTE, limit=500)
    assert len(found) == group["count"] == made.count(0, NOW, failed=True)
    latest = found[0]
    assert latest["timestamp"] == group["last_seen"] and latest["session_id"] in made.sessions
    assert "raise ToolTimeout(message)" in latest["stacktrace"] and not latest["propagated"]
    assert error_occurrences(source, "ValueError") == []
    with pytest.raises(AnalyticsError, match="type"):
        error_occurrences(source, "")


def test_sessions_and_one_session_in_order(source: Any, week_store: Any) -> None:
    made: Made = week_store[1]
    listed = sessions(source, TimeRange(NOW - 7 * DAY, NOW), limit=500)
    assert len(listed) == len(made.sessions)
    assert [s["end"] for s in listed] == sorted((s["end"] for s in listed), reverse=True)
    row = next(s for s in listed if s["session_id"] == "w-010")
    assert (row["user_id"], row["events"], row["calls"]) == (made.sessions["w-010"]["user"], 2,
                                                             made.count(0, NOW, session="w-010"))  # fmt: skip
    timeline = session_timeline(source, "w-010")
    kinds = [(item["kind"], item.get("name") or item.get("function")) for item in timeline["items"]]
    assert kinds[0] == ("event", "SESSION_START") and kinds[-1] == ("event", "SESSION_END")
    assert [k for k, _ in kinds[1:-1]] == ["call"] * timeline["calls"]
    assert [item["timestamp"] for item in timeline["items"]] == sorted(item["timestamp"] for item in timeline["items"])
    with pytest.raises(NotFound):
        session_timeline(source, "nobody")


def test_tail_returns_only_what_was_stored_after_the_cursor(tmp_path: Path, week_store: Any) -> None:
    path = tmp_path / "tail.sqlite3"
    factory = SpanFactory(first_id=1)
    resource = {"service.name": "acme-sdk", "session.id": "t1"}
    write_spans(path, [factory.call("A.first", NOW, 5, resource), factory.call("A.second", NOW + 1, 5, resource)])
    with open_source(path) as source:
        first = tail(source, None, limit=1)
        assert [c["function"] for c in first["calls"]] == ["A.second"]
        assert tail(source, first["cursor"])["calls"] == []
        write_spans(path, [factory.call("A.third", NOW - DAY, 5, resource)])  # stored later, though older
        update = tail(source, first["cursor"])
        assert [c["function"] for c in update["calls"]] == ["A.third"] and update["cursor"] > first["cursor"]


class Tools:
    """A client whose calls make real HTTP requests (through `requests`) to a loopback server."""

    def __init__(self, url: str) -> None:
        self.url = url

    def run(self, name: str) -> int:
        response = requests.post(f"{self.url}/tools/{name}", json={"name": name}, timeout=5)
        if response.status_code >= 500:
            raise RuntimeError(f"tool {name} failed with {response.status_code}")
        return response.status_code


def test_a_real_instrumented_call_is_a_trace_with_its_requests_child(server: Any, tmp_path: Path) -> None:
    from exporters.tests.helpers.loopback import Reply

    server.script = lambda request: Reply(status=503 if request.path.endswith("/bad") else 200)
    store = tmp_path / "real.sqlite3"
    telemetry = configure_telemetry(exporter="local", store_path=str(store), service_name="real-sdk", session_id="r1")
    instrument(Tools)
    tools = Tools(server.url)
    assert tools.run("good") == 200
    with pytest.raises(RuntimeError):
        tools.run("bad")
    assert telemetry.flush(timeout=5)
    with open_source(store) as source:
        failed = recent_calls(source, "Tools.run", errors_only=True)
        assert len(failed) == 1 and failed[0]["session_id"] == "r1" and failed[0]["service"] == "real-sdk"
        found = trace(source, failed[0]["trace_id"])
        names = [(s["name"], s["depth"], s["scope"]) for s in found["spans"]]
        assert names[0] == ("Tools.run", 0, "sdk_telemetry")
        http = found["spans"][1]
        assert http["depth"] == 1 and http["scope"] == "sdk_telemetry.http"
        assert http["attributes"].get("http.response.status_code", http["attributes"].get("http.status_code")) == 503
        (occurrence,) = error_occurrences(source, "RuntimeError", "Tools.run")
        assert "in run" in occurrence["stacktrace"] and "tool bad failed with 503" in occurrence["stacktrace"]
