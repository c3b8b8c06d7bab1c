"""Events on the telemetry handle: log, severities, exceptions, capture (sync and async), the
fatal path, drained semantics, echo, privacy, and OTLP carrying the same events."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from exporters.tests.helpers.loopback import LoopbackServer, Received, Reply
from sdk_telemetry import configure_telemetry, instrument

PATH = "/api/v1/telemetry"


def events_of(server: LoopbackServer) -> list[dict[str, Any]]:
    return [event for request in server.requests_to(PATH) for event in request.json()["events"]]


def kinds(server: LoopbackServer) -> list[str]:
    return [event["event"] for event in events_of(server)]


def tinker(server: LoopbackServer, **settings: Any) -> Any:
    settings.setdefault("batch_interval", 30)
    return configure_telemetry(exporter="tinker", endpoint=server.url, **settings)


class Boom(Exception):
    pass


# --- log() ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("info", "INFO"),
        ("Warning", "WARNING"),
        ("DEBUG", "DEBUG"),
        ("critical", "CRITICAL"),
        (logging.ERROR, "ERROR"),
        (logging.WARNING, "WARNING"),
        (50, "CRITICAL"),
    ],
)
def test_severity_in_any_case_or_as_a_logging_level(server, given, sent):
    telemetry = tinker(server)
    assert telemetry.log("e", severity=given)
    telemetry.flush(timeout=5)
    assert events_of(server)[-1]["severity"] == sent


@pytest.mark.parametrize("bad", ["verbose", "warn", "", 25, 0, True, None, 4.0])
@pytest.mark.parametrize("enabled", [True, False])
def test_any_other_severity_is_a_clear_value_error_whether_on_or_off(server, bad, enabled):
    telemetry = tinker(server, enabled=enabled)
    with pytest.raises(ValueError, match="severity must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"):
        telemetry.log("e", severity=bad)
    with pytest.raises(ValueError, match="severity"):
        telemetry.log_exception(Boom(), severity=bad)
    with pytest.raises(ValueError, match="severity"):
        telemetry.capture_exceptions(severity=bad)


def test_bad_names_and_data_are_clear_errors(server):
    telemetry = tinker(server)
    with pytest.raises(ValueError, match="event name"):
        telemetry.log("  ")
    with pytest.raises(TypeError, match="event data must be a mapping"):
        telemetry.log("e", ["not", "a", "dict"])  # type: ignore[arg-type]


def test_off_means_false_no_thread_and_no_request(server):
    before = {thread.name for thread in threading.enumerate()}
    telemetry = tinker(server, enabled=False)
    assert telemetry.log("e", {"a": 1}) is False
    assert telemetry.log_exception(Boom()) is False
    assert telemetry.log_fatal_exception(Boom()) is False
    assert telemetry.flush() is True
    assert telemetry.wait_until_drained(0.1) is True
    started = {thread.name for thread in threading.enumerate()} - before
    assert not any(name.startswith("sdk-telemetry") for name in started), started
    time.sleep(0.1)
    assert server.received == []


def test_false_when_the_queue_is_full_and_the_drop_is_counted(server):
    telemetry = tinker(server, queue_size=3, batch_size=100)
    assert telemetry.log("one") and telemetry.log("two")  # with SESSION_START: 3 queued
    assert telemetry.log("three") is False
    session = telemetry.stats()["session"]
    assert session["exporters"]["tinker"]["dropped"] == {"queue_full": 1}
    assert session["queue"] == 3 and session["pushed"] == 3 and session["flushed"] == 0
    assert telemetry.flush(timeout=5) is False  # one event was dropped: not all delivered
    assert [event.get("event_name") for event in events_of(server)] == [None, "one", "two"]


def test_false_after_shutdown_and_when_no_exporter_takes_events(server):
    telemetry = tinker(server)
    telemetry.shutdown()
    assert telemetry.log("late") is False
    local = configure_telemetry(exporter="local")  # spans only: events go nowhere
    assert local.log("e") is False


def test_event_data_is_scrubbed_and_messages_and_tracebacks_are_redacted(server):
    telemetry = tinker(server)
    telemetry.log("login", {"user": "ada", "api_key": "sk-123", "url": "https://x.test/cb?token=abc"})
    try:
        raise Boom("call failed: Authorization: Bearer abc.def.ghi")
    except Boom as exc:
        telemetry.log_exception(exc)
    telemetry.flush(timeout=5)
    generic, error = events_of(server)[1:]
    # The privacy module decides the marker; here: the secrets are gone and a marker says so.
    data = generic["event_data"]
    assert data["user"] == "ada"
    assert "sk-123" not in data["api_key"] and "REDACTED" in data["api_key"]
    assert "abc" not in data["url"] and "REDACTED" in data["url"]
    assert "abc.def.ghi" not in error["error_message"] and "REDACTED" in error["error_message"]
    assert error["error_message"].startswith("call failed")
    assert "abc.def.ghi" not in error["traceback"] and "REDACTED" in error["traceback"]


def test_echo_writes_every_event_to_python_logging_as_it_happens(server, caplog):
    telemetry = tinker(server, echo_events=True)
    caplog.set_level(logging.DEBUG, logger="sdk_telemetry.events")
    telemetry.log("cache.miss", {"key": "k1"}, "warning")
    [record] = [r for r in caplog.records if r.name == "sdk_telemetry.events"]
    assert record.levelno == logging.WARNING
    assert "GENERIC_EVENT cache.miss #1" in record.getMessage() and "k1" in record.getMessage()
    assert telemetry.session_id in record.getMessage()
    telemetry.echo_events = False
    telemetry.log("quiet")
    assert len([r for r in caplog.records if r.name == "sdk_telemetry.events"]) == 1


# --- exceptions ----------------------------------------------------------------------------


def test_log_exception_sends_at_once_without_blocking_the_caller():
    def slow(request: Received) -> Reply:
        return Reply(delay=2.0)

    with LoopbackServer(slow) as server:
        telemetry = tinker(server)
        started = time.monotonic()
        assert telemetry.log_exception(Boom("x"))
        took = time.monotonic() - started
        # Far below the 2 s reply, and loose enough for a loaded shared machine's stalls.
        assert took < 0.5, f"log_exception took {took:.2f}s against a server that answers after 2 s"
        [request] = server.wait_for(PATH, timeout=5)
        assert [event["event"] for event in request.json()["events"]] == ["SESSION_START", "UNHANDLED_EXCEPTION"]
        telemetry.shutdown(timeout=2)


def test_one_exception_is_one_event_however_many_layers_see_it(server):
    telemetry = tinker(server)

    class Inner:
        def run(self) -> None:
            raise Boom("deep")

    class Outer:
        def run(self) -> None:
            Inner().run()

    instrument(Inner)
    instrument(Outer)
    with pytest.raises(Boom) as caught, telemetry.capture_exceptions(), telemetry.capture_exceptions():
        Outer().run()
    telemetry.log_exception(caught.value)
    telemetry.flush(timeout=5)
    assert kinds(server) == ["SESSION_START", "UNHANDLED_EXCEPTION"]


def test_capture_as_context_manager_and_decorator_reraises_the_same_exception(server):
    telemetry = tinker(server)
    error = Boom("one")
    with pytest.raises(Boom) as caught, telemetry.capture_exceptions(severity="warning"):
        raise error
    assert caught.value is error

    @telemetry.capture_exceptions()
    def decorated(value: int) -> int:
        if value:
            raise Boom("two")
        return 7

    assert decorated(0) == 7
    assert decorated.__name__ == "decorated"
    with pytest.raises(Boom, match="two"):
        decorated(1)
    with pytest.raises(KeyboardInterrupt), telemetry.capture_exceptions():
        raise KeyboardInterrupt  # not an Exception: not recorded
    telemetry.flush(timeout=5)
    events = events_of(server)
    assert [(e["event"], e.get("error_message"), e["severity"]) for e in events] == [
        ("SESSION_START", None, "INFO"),
        ("UNHANDLED_EXCEPTION", "one", "WARNING"),
        ("UNHANDLED_EXCEPTION", "two", "ERROR"),
    ]


async def test_async_capture_context_manager_decorator_and_task(server):
    telemetry = tinker(server)

    async with telemetry.capture_exceptions():
        await asyncio.sleep(0)
    with pytest.raises(Boom, match="ctx"):
        async with telemetry.capture_exceptions():
            await asyncio.sleep(0)
            raise Boom("ctx")

    @telemetry.capture_exceptions(severity="critical")
    async def decorated() -> None:
        await asyncio.sleep(0)
        raise Boom("deco")

    assert asyncio.iscoroutinefunction(decorated)
    with pytest.raises(Boom, match="deco"):
        await decorated()

    async def work(fail: bool) -> str:
        await asyncio.sleep(0.01)
        if fail:
            raise Boom("task")
        return "done"

    assert await telemetry.create_task(work(False), name="ok") == "done"
    task = telemetry.create_task(work(True), name="failing")
    assert task.get_name() == "failing"
    with pytest.raises(Boom, match="task"):
        await task
    assert telemetry.flush(timeout=5)
    errors = [(e["error_message"], e["severity"]) for e in events_of(server) if e["event"] == "UNHANDLED_EXCEPTION"]
    assert errors == [("ctx", "ERROR"), ("deco", "CRITICAL"), ("task", "ERROR")]


async def test_async_fatal_capture_does_not_block_the_event_loop():
    with LoopbackServer(lambda request: Reply(delay=1.0)) as server:
        telemetry = tinker(server, fatal_timeout=3)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        running = asyncio.ensure_future(ticker())
        with pytest.raises(Boom):
            async with telemetry.capture_exceptions(fatal=True):
                raise Boom("fatal")
        running.cancel()
        assert ticks >= 3, "the event loop kept running while the fatal path drained"
        assert kinds(server) == ["SESSION_START", "UNHANDLED_EXCEPTION", "SESSION_END"]


def test_capture_is_a_no_op_when_off(server):
    telemetry = tinker(server, enabled=False)
    with pytest.raises(Boom), telemetry.capture_exceptions(fatal=True):
        raise Boom("x")
    assert server.received == []


# --- fatal path and drained semantics -----------------------------------------------------


def test_fatal_exception_then_session_end_then_drained_and_the_session_id_logged(server, caplog):
    caplog.set_level(logging.INFO, logger="sdk_telemetry")
    telemetry = tinker(server)
    telemetry.log("before")
    assert telemetry.log_fatal_exception(Boom("fatal")) is True
    # Drained: everything is on the server when the call returns, no flush needed.
    events = events_of(server)
    assert [event["event"] for event in events] == [
        "SESSION_START",
        "GENERIC_EVENT",
        "UNHANDLED_EXCEPTION",
        "SESSION_END",
    ]
    assert events[2]["severity"] == "CRITICAL"
    assert telemetry.session_id in caplog.text
    assert telemetry.stats()["session"]["ended"] is True
    assert telemetry.log("after") is False
    telemetry.shutdown()
    telemetry.shutdown()
    assert kinds(server).count("SESSION_END") == 1


def test_fatal_capture_decorator(server):
    telemetry = tinker(server)

    @telemetry.capture_exceptions(fatal=True)
    def main() -> None:
        raise Boom("bye")

    with pytest.raises(Boom):
        main()
    assert kinds(server) == ["SESSION_START", "UNHANDLED_EXCEPTION", "SESSION_END"]


def test_fatal_path_is_bounded_by_its_timeout_when_the_server_hangs():
    with LoopbackServer(lambda request: Reply(hang=True)) as server:
        telemetry = tinker(server, fatal_timeout=0.4, timeout=5)
        started = time.monotonic()
        assert telemetry.log_fatal_exception(Boom("fatal")) is False
        took = time.monotonic() - started
        assert 0.35 <= took < 0.4 + 1.5, f"log_fatal_exception took {took:.2f}s"
        telemetry.shutdown(timeout=0.2)


def test_wait_until_drained_true_once_the_flush_counter_reaches_the_push_counter(server):
    telemetry = tinker(server)
    for number in range(5):
        telemetry.log("tick", {"n": number})
    session = telemetry.stats()["session"]
    assert (session["pushed"], session["flushed"]) == (6, 0)
    assert telemetry.wait_until_drained(5) is True
    session = telemetry.stats()["session"]
    assert (session["pushed"], session["flushed"], session["queue"]) == (6, 6, 0)
    assert len(events_of(server)) == 6


def test_wait_until_drained_false_when_the_time_runs_out():
    with LoopbackServer(lambda request: Reply(hang=True)) as server:
        telemetry = tinker(server, timeout=5)
        telemetry.log("tick")
        started = time.monotonic()
        assert telemetry.wait_until_drained(0.3) is False
        took = time.monotonic() - started
        assert 0.25 <= took < 0.3 + 1.5, f"wait_until_drained(0.3) took {took:.2f}s"
        session = telemetry.stats()["session"]
        assert session["pushed"] == 2 and session["flushed"] == 0
        telemetry.shutdown(timeout=0.2)


def test_flush_without_waiting_returns_at_once_and_sends(server):
    telemetry = tinker(server)
    telemetry.log("tick")
    assert telemetry.flush(wait=False) is True
    assert len(server.wait_for(PATH, timeout=5)) == 1


# --- the same events over OTLP -------------------------------------------------------------


def test_otlp_logs_exporter_carries_the_same_events(server, monkeypatch):
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", server.url)
    telemetry = configure_telemetry(exporter="none", batch_interval=30, session_id="sess-otlp")
    telemetry.log("user.action", {"button": "submit"}, "warning")
    telemetry.shutdown()
    [request] = server.requests_to("/v1/logs")
    message = ExportLogsServiceRequest.FromString(request.body)
    [resource_logs] = message.resource_logs
    resource = {kv.key: kv.value.string_value for kv in resource_logs.resource.attributes}
    assert resource["session.id"] == "sess-otlp"
    records = [record for scope in resource_logs.scope_logs for record in scope.log_records]
    assert [record.event_name for record in records] == ["session.start", "user.action", "session.end"]
    generic = records[1]
    assert generic.severity_text == "WARNING"
    attributes = {kv.key: kv.value for kv in generic.attributes}
    assert attributes["sdk_telemetry.event.type"].string_value == "GENERIC_EVENT"
    assert attributes["sdk_telemetry.event.session_index"].int_value == 1
    assert attributes["session.id"].string_value == "sess-otlp"
    body = {kv.key: kv.value.string_value for kv in generic.body.kvlist_value.values}
    assert body == {"button": "submit"}


def test_events_are_withheld_until_consent_and_minimal_mode_sends_no_event_data(server):
    from sdk_telemetry import grant_consent

    telemetry = configure_telemetry(exporter="tinker", endpoint=server.url, consent_required=True, batch_interval=0.05)
    assert telemetry.log("before_consent", {"plan": "pro"}) is False
    grant_consent()
    assert telemetry.log("after_consent", {"plan": "pro"}) is True
    telemetry.flush(timeout=5)
    names = [e.get("event_name") for r in server.requests_to("/api/v1/telemetry") for e in r.json()["events"]]
    assert "after_consent" in names and "before_consent" not in names
    telemetry.shutdown()

    server.received.clear()
    minimal = configure_telemetry(exporter="tinker", endpoint=server.url, minimal_data=True, batch_interval=0.05)
    assert minimal.log("minimal_event", {"email": "someone@example.com"}) is True
    minimal.log_exception(ValueError("boom with details"))
    minimal.flush(timeout=5)
    events = [e for r in server.requests_to("/api/v1/telemetry") for e in r.json()["events"]]
    generic = [e for e in events if e.get("event_name") == "minimal_event"]
    assert generic and not generic[0].get("event_data")
    failures = [e for e in events if e["event"] == "UNHANDLED_EXCEPTION"]
    assert failures and failures[0]["error_type"] == "ValueError"
    assert "boom" not in str(failures[0])


def test_a_second_handle_that_requires_consent_sends_no_event_before_it_and_scrubs_with_its_own_rules(server):
    from sdk_telemetry import create_telemetry, grant_consent

    handle = create_telemetry(
        exporter="tinker",
        endpoint=server.url,
        consent_required=True,
        scrub_patterns={"pin": "pin"},
        batch_interval=0.05,
    )
    assert handle.log("before_consent", {"plan": "pro"}) is False
    grant_consent()
    assert handle.log("after_consent", {"pin": "1234", "plan": "pro"}) is True
    handle.flush(timeout=5)
    events = [e for r in server.requests_to("/api/v1/telemetry") for e in r.json()["events"]]
    names = [e.get("event_name") for e in events]
    assert "after_consent" in names and "before_consent" not in names
    after = next(e for e in events if e.get("event_name") == "after_consent")
    assert after["event_data"] == {"pin": "[REDACTED:pin]", "plan": "pro"}
    handle.shutdown()
