"""The `tinker` exporter on the shared delivery path, against real loopback servers.

Retries, 413 splits (each half a whole request with the envelope), final refusals (neither
retried nor spooled), and the disk spool: what could not be sent by the exit bound is written to
disk and a later exporter, in this process or another, sends it with the same event ids.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from sdk_telemetry_exporters import ExporterSettings
from sdk_telemetry_exporters.spool import WireBatch
from sdk_telemetry_exporters.tinker import TinkerLogExporter

from exporters.tests.helpers.faults import Fault, FaultServer
from exporters.tests.helpers.loopback import LoopbackServer, Received, Reply
from sdk_telemetry import configure_telemetry
from tests.helpers.processes import child_env, run_python

PATH = "/api/v1/telemetry"
ENVELOPE = {"session_id", "platform", "sdk_version", "process_uuid"}
FAST_RETRIES = {"SDK_TELEMETRY_RETRY_BASE": "0.01", "SDK_TELEMETRY_RETRY_CAP": "0.05"}


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FAST_RETRIES.items():
        monkeypatch.setenv(name, value)


def ids_of(body: dict[str, Any]) -> list[str]:
    return [event["event_id"] for event in body["events"]]


def spooled_batches(directory: Path) -> list[WireBatch]:
    """The pending spool files, oldest first (whole files only: what the spool promises to resend)."""
    return [WireBatch.from_record(path.read_bytes()) for path in sorted(directory.rglob("*.batch"))]


def spooled_ids(directory: Path) -> list[str]:
    return [event["event_id"] for batch in spooled_batches(directory) for event in batch.items]


def exporter_stats(telemetry: Any) -> dict[str, Any]:
    stats: dict[str, Any] = telemetry.stats()["session"]["exporters"]["tinker"]
    return stats


def test_503_twice_then_200_every_event_arrives_once_and_none_is_lost():
    with FaultServer(plan=[Fault(503), Fault(503)]) as server:
        telemetry = configure_telemetry(exporter="tinker", endpoint=server.url, batch_interval=30)
        for number in range(5):
            assert telemetry.log("tick", {"n": number})
        assert telemetry.flush(timeout=10)
        stats = exporter_stats(telemetry)
        telemetry.shutdown(timeout=2.0)  # SESSION_END too
        bodies = [request.json() for request in server.received]
        assert [outcome for outcome, _ in server.outcomes[:3]] == [503, 503, 200]
        assert ids_of(bodies[0]) == ids_of(bodies[1]) == ids_of(bodies[2]), "each retry sends the same events"
        assert bodies[0] == bodies[2]
        sent = [event_id for body in bodies for event_id in ids_of(body)]
        assert len(set(sent)) == 7  # SESSION_START, 5 events, SESSION_END
        assert server.accepted_ids() == set(sent)
        assert server.duplicates() == 0
    assert stats["exported"] == 6
    assert stats["exporter"]["events_sent"] == 6
    assert stats["exporter"]["retries"] == 2
    assert stats["exporter"]["spooled"] == 0


def test_413_splits_into_halves_each_a_whole_request_with_the_envelope():
    def script(request: Received) -> Reply:
        return Reply(status=413 if len(request.json()["events"]) > 25 else 200)

    with LoopbackServer(script) as server:
        telemetry = configure_telemetry(
            exporter="tinker", endpoint=server.url, batch_interval=30, batch_size=1000, service_version="1.2.3"
        )
        for number in range(99):
            assert telemetry.log("tick", {"n": number})  # with SESSION_START: 100 events, one request
        assert telemetry.flush(timeout=10)
        stats = exporter_stats(telemetry)
        requests = server.requests_to(PATH)
        telemetry.shutdown(timeout=2.0)
    bodies = [request.json() for request in requests]
    assert [len(body["events"]) for body in bodies] == [100, 50, 25, 25, 50, 25, 25]
    first = bodies[0]
    accepted = [body for body in bodies if len(body["events"]) <= 25]
    for body in accepted:
        assert set(body) == ENVELOPE | {"events"}
        assert {key: body[key] for key in ENVELOPE} == {key: first[key] for key in ENVELOPE}
        assert body["session_id"] == telemetry.session_id and body["sdk_version"] == "1.2.3"
    assert [event for body in accepted for event in body["events"]] == first["events"], "in order, none lost"
    assert [event["event_session_index"] for body in accepted for event in body["events"]] == list(range(100))
    assert stats["exported"] == 100
    assert stats["exporter"]["splits"] == 3
    assert stats["exporter"]["events_sent"] == 100
    assert stats["exporter"]["spooled"] == 0


def test_422_is_neither_retried_nor_spooled(tmp_path):
    with LoopbackServer(lambda request: Reply(status=422, body=b'{"detail": "bad"}')) as server:
        telemetry = configure_telemetry(exporter="tinker", endpoint=server.url, batch_interval=30)
        telemetry.log("tick")
        assert telemetry.flush(timeout=5) is False  # refused for good: lost, so not delivered
        exporter = telemetry.session.queues[0][1].exporter
        assert exporter.spool_directory is not None
        assert exporter.resend_spooled() == 0
        stats = exporter_stats(telemetry)
        assert len(server.requests_to(PATH)) == 1
        telemetry.shutdown(timeout=2.0)
    assert stats["failed"] == 2
    assert stats["exporter"]["events_rejected"] == 2
    assert stats["exporter"]["dropped"] == {"rejected": 2}
    assert stats["exporter"]["retries"] == 0
    assert stats["exporter"]["spooled"] == 0
    assert "HTTP 422" in stats["exporter"]["last_error"]
    assert spooled_batches(Path(exporter.spool_directory)) == []


def test_an_export_stuck_at_the_exit_bound_is_spooled_and_a_new_exporter_sends_the_same_ids(tmp_path):
    spool_dir = tmp_path / "spool"
    hanging = threading.Event()
    hanging.set()

    def decide(request: Received, ids: list[str]) -> Fault:
        return Fault(hang=True) if hanging.is_set() else Fault()

    with FaultServer(decide=decide) as server:
        telemetry = configure_telemetry(exporter="tinker", endpoint=server.url, batch_interval=30, timeout=5)
        session_id = telemetry.session_id
        for number in range(3):
            assert telemetry.log("tick", {"n": number})
        telemetry.shutdown(timeout=1.0)  # the export hangs: the exit bound is reached
        queue_stats = exporter_stats(telemetry)
        stuck = [request.json() for request in server.received]
        assert stuck, "the export was in flight when the bound was reached"
        assert server.accepted_ids() == set()

        spooled = spooled_ids(spool_dir)
        assert len(spooled) == len(set(spooled)) == 5  # SESSION_START, 3 events, SESSION_END
        assert {event_id for body in stuck for event_id in ids_of(body)} <= set(spooled)
        assert queue_stats["spooled"] == 5
        assert queue_stats["dropped"] == {}
        for batch in spooled_batches(spool_dir):
            assert batch.envelope is not None and set(batch.envelope) == ENVELOPE
            assert batch.envelope["session_id"] == session_id

        hanging.clear()  # the endpoint answers again
        exporter = TinkerLogExporter(endpoint=server.url, settings=ExporterSettings(spool_dir=spool_dir))
        assert exporter.resend_spooled(timeout=5) == 5
        assert server.accepted_ids() == set(spooled)
        assert server.duplicates() == 0
        resent = [request.json() for request in server.received[len(stuck) :]]
        assert resent[0] == stuck[0], "the resend is the request that hung, byte for byte"
        assert spooled_ids(spool_dir) == []
        exporter.shutdown()


CHILD = """
from sdk_telemetry import configure_telemetry

telemetry = configure_telemetry(exporter="tinker", endpoint={url!r}, batch_interval=30, timeout=0.5)
for number in range(4):
    telemetry.log("tick", {{"n": number}})
print(telemetry.session_id, flush=True)
"""  # no shutdown: the exit hook ends the session and sends (or spools) at the bound


def test_endpoint_down_at_exit_then_a_new_process_resends_the_spooled_events_when_idle(tmp_path):
    spool_dir = tmp_path / "spool"
    server = FaultServer()
    server.up()
    url = server.url
    server.down()  # the outage
    try:
        env = child_env(SDK_TELEMETRY_SPOOL_DIR=str(spool_dir), **FAST_RETRIES)
        child = run_python(CHILD.format(url=url), env=env, timeout=30)
        assert child.returncode == 0, child.stderr
        session_id = child.stdout.strip()
        batches = spooled_batches(spool_dir)
        spooled = spooled_ids(spool_dir)
        assert len(spooled) == len(set(spooled)) == 6  # SESSION_START, 4 events, SESSION_END
        assert {batch.envelope["session_id"] for batch in batches if batch.envelope} == {session_id}

        server.up()  # the endpoint is back, on the same address
        telemetry = configure_telemetry(exporter="tinker", endpoint=url, batch_interval=0.05)
        missing = server.wait_for_ids(set(spooled), timeout=10)
        assert not missing, f"{len(missing)} spooled event(s) not resent"
        assert spooled_ids(spool_dir) == []
        resent = [body for body in (request.json() for request in server.received) if body["session_id"] == session_id]
        assert sorted(event_id for body in resent for event_id in ids_of(body)) == sorted(spooled)
        for body in resent:
            assert set(body) == ENVELOPE | {"events"}
        assert server.duplicates() == 0
        assert exporter_stats(telemetry)["exporter"]["resent"] == 6
        telemetry.shutdown(timeout=2.0)
    finally:
        server.down()
