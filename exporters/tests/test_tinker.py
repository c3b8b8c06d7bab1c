"""The `tinker` exporter on its own: built by its entry point, one request per session, and the same
event ids through retries, the spool and the resend. (Through `sdk_telemetry`'s sessions:
`tests/exporters/test_tinker_exporter.py` and `test_tinker_spool.py` of the repository root.)"""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

from helpers.faults import Fault, FaultServer
from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from sdk_telemetry_exporters import ExporterSettings, TinkerLogExporter, WireBatch
from sdk_telemetry_exporters import attributes as attr

PATH = "/api/v1/telemetry"


def spooled_batches(directory: Path) -> list[WireBatch]:
    """The pending spool files, oldest first."""
    return [WireBatch.from_record(path.read_bytes()) for path in sorted(directory.rglob("*.batch"))]


def record(session: str, n: int) -> ReadableLogRecord:
    """A log record with its own event id and index, as `sdk_telemetry`'s sessions write them."""
    log = LogRecord(
        timestamp=1_700_000_000_000_000_000 + n,
        body={"n": n},
        event_name="tick",
        severity_text="INFO",
        attributes={
            attr.SESSION_ID: session,
            attr.EVENT_TYPE: attr.GENERIC_EVENT,
            attr.EVENT_ID: f"id-{n}",
            attr.EVENT_INDEX: n,
        },
    )
    return ReadableLogRecord(log_record=log, resource=Resource.get_empty())


def test_retries_exhausted_go_to_the_spool_and_are_resent_with_the_same_ids(tmp_path):
    settings = ExporterSettings(retry_base=0.01, retry_cap=0.05, spool_dir=tmp_path / "spool")
    with FaultServer(plan=[Fault(503)] * 3) as server:
        exporter = TinkerLogExporter(endpoint=server.url, settings=settings, sdk_version="9.9")
        records = [record("s-1", n) for n in range(3)]
        exporter.export(records)  # three 503s: spooled, then resent at once by the same export
        bodies = [request.json() for request in server.received]
        assert [outcome for outcome, _ in server.outcomes] == [503, 503, 503, 200]
        assert bodies[0] == bodies[3], "the resend is the same request: envelope, events, ids"
        assert server.accepted_ids() == {"id-0", "id-1", "id-2"}
        assert server.duplicates() == 0
        stats = exporter.stats()
        assert stats["spooled"] == 3 and stats["resent"] == 3 and stats["spool_pending"] == 0
        assert stats["events_failed"] == 0 and stats["dropped"] == {}
        assert spooled_batches(tmp_path / "spool") == []


def test_entry_point_built_with_no_arguments_reads_the_environment_and_sends_any_log_record(server, monkeypatch):
    monkeypatch.setenv("SDK_TELEMETRY_ENDPOINT", server.url)
    monkeypatch.setenv("SDK_TELEMETRY_API_KEY", "env-key")
    [entry] = [ep for ep in entry_points(group="opentelemetry_logs_exporter") if ep.name == "tinker"]
    exporter = entry.load()()
    assert isinstance(exporter, TinkerLogExporter)
    assert exporter.url == server.url + PATH
    provider = LoggerProvider(resource=Resource.create({"session.id": "s-42"}), shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("app")
    logger.emit(body="hello", severity_text="warn", attributes={"user": "u1"}, event_name="app.hello")
    logger.emit(body={"k": 1}, severity_text="ERROR")
    provider.shutdown()
    requests = server.requests_to(PATH)
    assert len(requests) == 2
    assert {request.headers["x-api-key"] for request in requests} == {"env-key"}
    first, second = (request.json() for request in requests)
    assert first["session_id"] == second["session_id"] == "s-42"
    [hello] = first["events"]
    assert hello["event"] == "GENERIC_EVENT"
    assert hello["event_name"] == "app.hello"
    assert hello["event_data"] == {"user": "u1", "body": "hello"}
    assert hello["severity"] == "INFO"  # "warn" is not one of the five names and no number was given
    assert hello["event_session_index"] == 0
    [other] = second["events"]
    assert other["event_name"] == "log" and other["event_data"] == {"k": 1}
    assert other["severity"] == "ERROR"
    assert other["event_session_index"] == 1


def test_records_of_two_sessions_in_one_export_go_in_separate_requests(server):
    exporter = TinkerLogExporter(endpoint=server.url)
    captured = []

    class Keep(SimpleLogRecordProcessor):
        def on_emit(self, log_record):  # collect instead of exporting one by one
            from opentelemetry.sdk._logs import ReadableLogRecord

            captured.append(ReadableLogRecord(log_record.log_record, log_record.resource))

    for session in ("a", "b", "a"):
        provider = LoggerProvider(resource=Resource.create({"session.id": session}), shutdown_on_exit=False)
        provider.add_log_record_processor(Keep(exporter))
        provider.get_logger("x").emit(body={"session": session}, event_name="e")
    exporter.export(captured)
    bodies = [request.json() for request in server.requests_to(PATH)]
    assert [body["session_id"] for body in bodies] == ["a", "b"]
    assert [len(body["events"]) for body in bodies] == [2, 1]


def test_a_record_without_its_own_id_keeps_the_one_drawn_for_it_across_retry_spool_and_resend(tmp_path):
    settings = ExporterSettings(retry_base=0.01, retry_cap=0.05, spool_dir=tmp_path / "spool")
    with FaultServer(plan=[Fault(503)] * 3) as server:
        exporter = TinkerLogExporter(endpoint=server.url, settings=settings)
        plain = [
            ReadableLogRecord(LogRecord(timestamp=n + 1, body=f"line {n}"), Resource.create({"session.id": "s-9"}))
            for n in range(3)
        ]
        first = [exporter.event(item, "s-9") for item in plain]
        exporter.export(plain)  # 503 three times, spooled, resent
        assert exporter.spool(plain) == 3, "already delivered: accounted for, not written again"
        assert spooled_batches(tmp_path / "spool") == []
        bodies = [request.json() for request in server.received]
        assert len(bodies) == 4
        assert all(body["events"] == first for body in bodies), "the same ids and indexes on every mapping"
        assert server.accepted_ids() == {event["event_id"] for event in first}
        assert [event["event_session_index"] for event in first] == [0, 1, 2]
