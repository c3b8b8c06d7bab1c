"""Sessions: ids, two handles in one process, the SDK's own enable variable, fork, exit,
HTTP child spans and queue metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
from opentelemetry import trace
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from exporters.tests.helpers.loopback import LoopbackServer
from sdk_telemetry import configure_telemetry, create_telemetry, current_telemetry, instrument
from sdk_telemetry import telemetry as telemetry_setup
from tests.helpers.processes import child_env, run_python

PATH = "/api/v1/telemetry"


@pytest.fixture(autouse=True)
def no_leftover_handles() -> Iterator[None]:
    yield
    for telemetry in list(telemetry_setup._handles):
        telemetry.shutdown(timeout=1.0)


def bodies(server: LoopbackServer) -> list[dict[str, Any]]:
    return [request.json() for request in server.requests_to(PATH)]


class Client:
    def fail(self) -> None:
        raise ValueError("nope")

    def fetch(self, url: str) -> int:
        first = requests.get(url + "/via-requests", timeout=5).status_code
        second = httpx.get(url + "/via-httpx", timeout=5).status_code
        return first + second


# --- ids -----------------------------------------------------------------------------------


def test_the_session_id_is_on_the_resource_on_every_event_and_on_spans(server):
    spans = InMemorySpanExporter()
    provider = TracerProvider()  # the application's own provider: its resource has no session
    provider.add_span_processor(SimpleSpanProcessor(spans))
    trace.set_tracer_provider(provider)
    telemetry = configure_telemetry(exporter="tinker", endpoint=server.url, session_id="sess-1", batch_interval=30)
    assert telemetry.session_id == "sess-1"
    assert telemetry.logger_provider is not None
    assert telemetry.logger_provider.resource.attributes["session.id"] == "sess-1"
    instrument(Client)
    with pytest.raises(ValueError):
        Client().fail()
    [span] = spans.get_finished_spans()
    assert span.attributes["session.id"] == "sess-1"
    telemetry.shutdown()
    assert {body["session_id"] for body in bodies(server)} == {"sess-1"}


def test_generated_ids_differ_and_a_bad_id_is_a_clear_error(server):
    first = create_telemetry(exporter="tinker", endpoint=server.url)
    second = create_telemetry(exporter="tinker", endpoint=server.url)
    assert first.session_id != second.session_id
    with pytest.raises(ValueError, match="session_id"):
        create_telemetry(exporter="tinker", endpoint=server.url, session_id="has spaces")


# --- two handles ---------------------------------------------------------------------------


def test_two_handles_in_one_process_keep_their_sessions_apart(server):
    first = configure_telemetry(exporter="tinker", endpoint=server.url, batch_interval=30)
    second = create_telemetry(exporter="tinker", endpoint=server.url, batch_interval=30)
    assert current_telemetry() is first, "create_telemetry() must not replace the global setup"
    assert second.tracer_provider is not trace.get_tracer_provider()
    for number in range(3):
        first.log("from.first", {"n": number})
        second.log("from.second", {"n": number})
    second.log_exception(ValueError("second only"))
    instrument(Client)
    with pytest.raises(ValueError):
        Client().fail()  # an instrumented call: the global handle's session
    first.shutdown()
    second.shutdown()

    by_session: dict[str, list[dict[str, Any]]] = {}
    for body in bodies(server):
        by_session.setdefault(body["session_id"], []).extend(body["events"])
    assert set(by_session) == {first.session_id, second.session_id}
    for session, events in by_session.items():
        assert [event["event_session_index"] for event in events] == list(range(len(events))), session
    names_first = [e.get("event_name") or e["event"] for e in by_session[first.session_id]]
    names_second = [e.get("event_name") or e["event"] for e in by_session[second.session_id]]
    assert names_first == ["SESSION_START", *["from.first"] * 3, "UNHANDLED_EXCEPTION", "SESSION_END"]
    assert names_second == ["SESSION_START", *["from.second"] * 3, "UNHANDLED_EXCEPTION", "SESSION_END"]
    [error_first] = [e for e in by_session[first.session_id] if e["event"] == "UNHANDLED_EXCEPTION"]
    [error_second] = [e for e in by_session[second.session_id] if e["event"] == "UNHANDLED_EXCEPTION"]
    assert error_first["error_message"] == "nope"
    assert error_second["error_message"] == "second only"


def test_a_second_handles_own_tracer_provider_sends_its_failed_spans_to_its_session(server):
    first = configure_telemetry(exporter="tinker", endpoint=server.url, batch_interval=30)
    second = create_telemetry(exporter="tinker", endpoint=server.url, batch_interval=30)
    tracer = second.tracer_provider.get_tracer("sdk_telemetry")  # the invocation scope
    with pytest.raises(RuntimeError), tracer.start_as_current_span("Other.call"):
        raise RuntimeError("in the second client")
    second.shutdown()
    first.shutdown()
    [errors] = [
        [e for e in body["events"] if e["event"] == "UNHANDLED_EXCEPTION"]
        for body in bodies(server)
        if body["session_id"] == second.session_id and any(e["event"] == "UNHANDLED_EXCEPTION" for e in body["events"])
    ]
    assert [e["error_message"] for e in errors] == ["in the second client"]
    assert not any(
        e["event"] == "UNHANDLED_EXCEPTION"
        for body in bodies(server)
        if body["session_id"] == first.session_id
        for e in body["events"]
    )


def test_configure_telemetry_behaviour_is_unchanged(server):
    settings: dict[str, Any] = {"exporter": "tinker", "endpoint": server.url, "batch_interval": 30}
    first = configure_telemetry(**settings)
    assert configure_telemetry(**settings) is first
    replacement = configure_telemetry(**settings, batch_size=50)
    assert replacement is not first and not first.enabled
    assert replacement.session_id != first.session_id
    replacement.shutdown()
    ends = [body["session_id"] for body in bodies(server) for e in body["events"] if e["event"] == "SESSION_END"]
    assert sorted(ends) == sorted([first.session_id, replacement.session_id])


# --- the SDK's own enable variable ---------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "on"),
    [
        (None, True),
        ("1", True),
        ("true", True),
        ("YES", True),
        (" on ", True),
        ("0", False),
        ("false", False),
        ("no", False),
        ("off", False),
        ("", False),
        ("maybe", False),
    ],
)
def test_the_enable_variable_has_the_tinker_meaning(server, monkeypatch, value, on):
    if value is not None:
        monkeypatch.setenv("TINKER_TELEMETRY", value)
    telemetry = configure_telemetry(
        exporter="tinker", endpoint=server.url, enable_variable="TINKER_TELEMETRY", batch_interval=30
    )
    assert telemetry.enabled is on
    assert telemetry.log("probe") is on
    telemetry.shutdown()
    assert bool(server.requests_to(PATH)) is on
    if not on:
        assert telemetry.stats()["disabled_reason"] == f"TINKER_TELEMETRY={value}"


def test_enabled_true_in_code_does_not_override_the_users_opt_out(server, monkeypatch):
    monkeypatch.setenv("TINKER_TELEMETRY", "0")
    telemetry = create_telemetry(exporter="tinker", endpoint=server.url, enable_variable="TINKER_TELEMETRY")
    assert not telemetry.enabled and telemetry.log("x") is False


# --- fork and exit -------------------------------------------------------------------------

FORK = """
import json, os, sys
from sdk_telemetry import configure_telemetry

telemetry = configure_telemetry(exporter="tinker", endpoint=sys.argv[1] if len(sys.argv) > 1 else "{url}",
                                batch_interval=30)
telemetry.log("parent.before")
pid = os.fork()
if pid == 0:
    telemetry.log("child.event")
    ok = telemetry.flush(timeout=5)
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
telemetry.log("parent.after")
print(json.dumps({{"child_status": status, "session": telemetry.session_id}}))
"""


def test_a_forked_child_sends_with_a_new_process_uuid_in_the_same_session(server):
    result = run_python(FORK.format(url=server.url), env=child_env(), timeout=30)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["child_status"] == 0
    sent = bodies(server)
    assert {body["session_id"] for body in sent} == {report["session"]}
    by_process: dict[str, list[str]] = {}
    for body in sent:
        by_process.setdefault(body["process_uuid"], []).extend(
            e.get("event_name") or e["event"] for e in body["events"]
        )
    assert len(by_process) == 2, by_process
    child = next(names for names in by_process.values() if "child.event" in names)
    parent = next(names for names in by_process.values() if "child.event" not in names)
    assert child == ["child.event"], "the child must not re-send what the parent had queued"
    assert parent == ["SESSION_START", "parent.before", "parent.after", "SESSION_END"]


EXIT = """
from sdk_telemetry import configure_telemetry, create_telemetry

first = configure_telemetry(exporter="tinker", endpoint="{url}", batch_interval=30)
second = create_telemetry(exporter="tinker", endpoint="{url}", batch_interval=30)
first.log("first.event")
second.log("second.event")
print("EXITING")
"""


def test_session_end_exactly_once_per_handle_at_normal_interpreter_exit(server):
    result = run_python(EXIT.format(url=server.url), env=child_env(), timeout=30)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "EXITING" in result.stdout
    events_by_session: dict[str, list[str]] = {}
    for body in bodies(server):
        events_by_session.setdefault(body["session_id"], []).extend(
            e.get("event_name") or e["event"] for e in body["events"]
        )
    assert sorted(events_by_session.values()) == [
        ["SESSION_START", "first.event", "SESSION_END"],
        ["SESSION_START", "second.event", "SESSION_END"],
    ]


# --- HTTP child spans and queue metrics ----------------------------------------------------


@pytest.mark.parametrize("http_spans", [True, False])
def test_http_requests_inside_an_instrumented_call_are_its_child_spans(server, http_spans):
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    trace.set_tracer_provider(provider)
    telemetry = configure_telemetry(exporter="none", http_spans=http_spans)
    instrument(Client)
    assert Client().fetch(server.url) == 400
    telemetry.shutdown()
    finished = spans.get_finished_spans()
    [call] = [span for span in finished if span.name == "Client.fetch"]
    children = [span for span in finished if span.parent is not None and span.parent.span_id == call.context.span_id]
    if not http_spans:
        assert children == [] and len(finished) == 1
        return
    assert [span.instrumentation_scope.name for span in children] == ["sdk_telemetry.http"] * 2
    assert all(span.name == "GET" and span.context.trace_id == call.context.trace_id for span in children)
    assert {span.attributes.get("http.response.status_code") for span in children} == {200}
    assert {request.path for request in server.received} == {"/via-requests", "/via-httpx"}


def test_our_own_requests_make_no_http_spans(server):
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    trace.set_tracer_provider(provider)
    telemetry = configure_telemetry(exporter="tinker", endpoint=server.url, batch_interval=30)
    telemetry.log("tick")
    assert telemetry.flush(timeout=5)
    assert server.requests_to(PATH)
    assert spans.get_finished_spans() == ()
    telemetry.shutdown()


def metric_points(reader: InMemoryMetricReader) -> dict[tuple[str, str, str], int]:
    """(metric name, signal, reason) -> value."""
    points: dict[tuple[str, str, str], int] = {}
    data = reader.get_metrics_data()
    for resource_metrics in data.resource_metrics if data else ():
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                if not metric.name.startswith("sdk_telemetry.queue."):
                    continue
                for point in metric.data.data_points:
                    attributes = point.attributes or {}
                    key = (metric.name, str(attributes["sdk_telemetry.signal"]), str(attributes.get("reason", "")))
                    points[key] = points.get(key, 0) + int(point.value)
    return points


def test_queue_filling_draining_and_dropping_are_metrics(server):
    reader = InMemoryMetricReader()
    telemetry = configure_telemetry(
        exporter="tinker", endpoint=server.url, batch_interval=30, queue_size=4, metric_readers=[reader]
    )
    for number in range(5):
        telemetry.log("tick", {"n": number})
    filling = metric_points(reader)
    assert filling[("sdk_telemetry.queue.size", "events", "")] == 4
    assert filling[("sdk_telemetry.queue.queued", "events", "")] == 4
    assert filling[("sdk_telemetry.queue.dropped", "events", "queue_full")] == 2
    assert filling.get(("sdk_telemetry.queue.exported", "events", ""), 0) == 0
    assert telemetry.flush(timeout=5) is False  # two events were dropped: not all delivered
    drained = metric_points(reader)
    assert drained[("sdk_telemetry.queue.size", "events", "")] == 0
    assert drained[("sdk_telemetry.queue.exported", "events", "")] == 4
    telemetry.shutdown()
