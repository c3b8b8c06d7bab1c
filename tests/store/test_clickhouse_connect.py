"""The real `clickhouse-connect` client over HTTP, against a ClickHouse HTTP endpoint on 127.0.0.1
backed by the real engine (chDB; tests/helpers/clickhouse_http.py): the store's tables, inserts and
questions, and the receiver's copy (`--clickhouse-url`) fed by the real OpenTelemetry SDK."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import clickhouse_connect
import httpx
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from sdk_telemetry_exporters import attributes as attr

from sdk_telemetry.receiver import ReceiverSettings
from sdk_telemetry.store.clickhouse import TABLES, ClickHouseStore, columns, rollups
from sdk_telemetry.store.clickhouse.reader import ClickHouseReader
from sdk_telemetry.store.queries import Filters
from sdk_telemetry.store.reader import Scope
from tests.helpers.clickhouse_http import ClickHouseHTTP, serve_clickhouse
from tests.helpers.receiver import KEY, serve
from tests.helpers.store_data import EXPECTED_ALL, METRIC_ANSWERS, T0, assert_stats, by_function, dataset

USER, PASSWORD = "otel", "s3cret"


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseHTTP]:
    with serve_clickhouse(tmp_path_factory.mktemp("clickhouse-http"), user=USER, password=PASSWORD) as running:
        for database in ("otel", "mirror"):
            running.rows(f"CREATE DATABASE IF NOT EXISTS {database} ENGINE = Atomic")
        yield running


def _client(endpoint: ClickHouseHTTP, database: str) -> Any:
    return clickhouse_connect.get_client(
        host="127.0.0.1", port=endpoint.port, username=USER, password=PASSWORD, database=database
    )


@pytest.fixture(scope="module")
def store(endpoint: ClickHouseHTTP) -> Iterator[ClickHouseStore]:
    client = _client(endpoint, "otel")
    store = ClickHouseStore.from_client(client)
    store.create_tables()
    spans, metrics = dataset()
    store.insert_spans(spans)
    store.insert_metrics(metrics)
    yield store
    client.close()


def test_the_client_connects_and_creates_the_collector_tables(endpoint: ClickHouseHTTP, store: ClickHouseStore) -> None:
    client = _client(endpoint, "otel")
    assert client.server_version == endpoint.version
    tables = {row[0] for row in client.query("SELECT name FROM system.tables WHERE database = 'otel'").result_rows}
    assert set(TABLES) <= tables
    assert client.query("SELECT count() FROM otel_traces").result_rows == [(32,)]
    client.close()


def test_the_inserts_went_over_http_with_their_deduplication_tokens(
    endpoint: ClickHouseHTTP, store: ClickHouseStore
) -> None:
    inserts = [r for r in endpoint.requests if r.statement.startswith("INSERT INTO otel_")]
    assert {r.statement.split()[2] for r in inserts} >= {"otel_traces", "otel_metrics_gauge"}
    assert all("insert_deduplication_token = '" in r.statement and r.data_bytes > 0 for r in inserts)
    assert all(r.headers.get("Authorization", "").startswith("Basic ") for r in inserts)


def test_per_function_stats_over_http_match_sqlite(store: ClickHouseStore) -> None:
    got = by_function(store.function_stats())
    assert set(got) == set(EXPECTED_ALL)
    for name, expected in EXPECTED_ALL.items():
        assert_stats(got[name], expected)


def test_query_parameters_are_bound_by_the_server_and_answers_come_compressed(
    endpoint: ClickHouseHTTP, store: ClickHouseStore
) -> None:
    got = by_function(store.function_stats(Filters(service="svc-a")))
    assert set(got) == {"Api.get"}
    assert_stats(got["Api.get"], EXPECTED_ALL["Api.get"])
    asked = endpoint.requests[-1]
    assert asked.params["param_service"] == "svc-a"
    assert "{service:String}" in asked.statement  # sent as a parameter, not spliced into the SQL
    assert asked.statement.rstrip().endswith("FORMAT Native")
    assert asked.answer_encoding in ("lz4", "zstd")


def test_top_errors_over_http(store: ClickHouseStore) -> None:
    groups = [group.as_dict() for group in store.top_errors()]
    assert [g["error_type"] for g in groups] == ["ValueError", "TimeoutError"]
    assert (groups[0]["count"], groups[0]["kept"], groups[0]["functions"]) == (5, 2, 2)


@pytest.mark.parametrize("aggregation", sorted(METRIC_ANSWERS))
def test_metrics_over_http(store: ClickHouseStore, aggregation: str) -> None:
    answer = store.get_metrics(aggregation=aggregation)
    values = (answer["metrics"]["latency"]["value"], answer["metrics"]["queue"]["value"])
    assert values == METRIC_ANSWERS[aggregation]
    assert store.get_metrics(names=["latency"], time_range=(T0 + 1, T0 + 5))["metrics"]["latency"]["value"] == 3.0


def test_a_wrong_password_and_an_unknown_table_are_the_servers_errors(
    endpoint: ClickHouseHTTP, store: ClickHouseStore
) -> None:
    with pytest.raises(DatabaseError, match="516"):
        clickhouse_connect.get_client(host="127.0.0.1", port=endpoint.port, username=USER, password="wrong")
    with pytest.raises(DatabaseError, match="code: 60"):
        store.run("SELECT count() FROM no_such_table", {})


def test_the_receiver_copies_spans_events_and_metrics_once_even_when_an_answer_is_lost(
    endpoint: ClickHouseHTTP, tmp_path: Path
) -> None:
    settings = ReceiverSettings(
        store_path=tmp_path / "local.sqlite3",
        api_keys=(KEY,),
        clickhouse_url=f"http://{USER}:{PASSWORD}@127.0.0.1:{endpoint.port}/mirror",
    )
    before = len(endpoint.requests)
    with serve(settings) as running:
        endpoint.lose_insert_answers = 1  # the first copy lands, but its answer never comes back
        tracer_provider = TracerProvider(resource=Resource.create({"service.name": "acme", "session.id": "s-1"}))
        tracer_provider.add_span_processor(
            SimpleSpanProcessor(OTLPSpanExporter(endpoint=running.url + "/v1/traces", headers={"X-API-Key": KEY}))
        )
        tracer = tracer_provider.get_tracer(attr.INVOCATION_SCOPE, "1.0")
        for name in ("Tools.run", "Tools.run", "Tools.plan"):
            with tracer.start_as_current_span(name):
                pass
        tracer_provider.shutdown()
        logger_provider = LoggerProvider(resource=Resource.create({"service.name": "acme"}), shutdown_on_exit=False)
        logger_provider.add_log_record_processor(
            SimpleLogRecordProcessor(OTLPLogExporter(endpoint=running.url + "/v1/logs", headers={"X-API-Key": KEY}))
        )
        logger = logger_provider.get_logger("app")
        logger.emit(body="signed up", attributes={"event.id": "ev-1", "plan": "pro"}, event_name="user.signed_up")
        logger.emit(body="paid", attributes={"event.id": "ev-2"}, event_name="user.paid")
        logger_provider.shutdown()
        metric = {"name": "queue.depth", "value": 4.0, "timestamp": T0}
        response = httpx.post(running.url + "/api/v1/metrics", json=metric, headers={"X-API-Key": KEY}, timeout=10)
        assert response.status_code == 200
        deadline = time.monotonic() + 10
        while (health := running.get("/health").json()["receiver"])["clickhouse_copied_rows"] < 6:
            assert time.monotonic() < deadline, health  # a copy follows its commit's answer
            time.sleep(0.02)
    assert (health["clickhouse_copied_rows"], health["clickhouse_failed_rows"]) == (6, 0)
    assert endpoint.lose_insert_answers == 0
    copies = [r.statement for r in endpoint.requests[before:] if r.statement.startswith("INSERT INTO otel_")]
    assert copies.count(copies[0]) == 2  # sent again after its answer was lost
    assert len(copies) == 3 + 1 + 2 + 1  # three span batches (one twice), two of events, one metric
    client = _client(endpoint, "mirror")
    try:
        mirror = ClickHouseStore.from_client(client)
        stats = {row.function: row.calls for row in mirror.function_stats()}
        assert stats == {"Tools.run": 2, "Tools.plan": 1}  # stored once, though inserted twice
        events = client.query(
            "SELECT EventName, LogAttributes['event.name'], LogAttributes['plan'], Body, ServiceName"
            " FROM otel_logs ORDER BY EventName"
        ).result_rows
        assert events == [
            ("user.paid", "user.paid", "", "paid", "acme"),
            ("user.signed_up", "user.signed_up", "pro", "signed up", "acme"),
        ]
        assert mirror.get_metrics(["queue.depth"], aggregation="SUM")["metrics"]["queue.depth"]["value"] == 4.0
    finally:
        client.close()


def test_the_clients_own_native_insert_and_other_formats_work_on_the_collector_tables(
    endpoint: ClickHouseHTTP, store: ClickHouseStore
) -> None:
    client = _client(endpoint, "otel")
    try:
        assert client.ping()
        row = ["0" * 31 + "9", "0" * 15 + "9", "Native.insert", "svc-n", {"k": "v"}, 1_700_000_000_000_000_000, 7]
        names = ["TraceId", "SpanId", "SpanName", "ServiceName", "SpanAttributes", "Timestamp", "Duration"]
        client.insert("otel_traces", [row], column_names=names)
        insert = endpoint.requests[-1]
        assert insert.statement.startswith("INSERT INTO `otel_traces`") and insert.headers["Content-Encoding"] == "lz4"
        (stored,) = client.query(
            "SELECT SpanAttributes, Duration, toUnixTimestamp64Nano(Timestamp)"
            " FROM otel_traces WHERE ServiceName = 'svc-n'"
        ).result_rows
        assert stored == ({"k": "v"}, 7, 1_700_000_000_000_000_000)
        text = client.raw_query(
            "SELECT SpanName, Duration FROM otel_traces WHERE ServiceName = {s:String}",
            parameters={"s": "svc-n"},
            fmt="TabSeparatedWithNamesAndTypes",
        )
        assert text.decode().splitlines() == [
            "SpanName\tDuration",
            "LowCardinality(String)\tUInt64",
            "Native.insert\t7",
        ]
        assert endpoint.requests[-1].headers.get("Accept-Encoding")
    finally:
        client.command("DELETE FROM otel_traces WHERE ServiceName = 'svc-n'")
        client.close()


def test_rollups_error_rollups_and_analysis_columns_are_made_and_read_over_http(endpoint: ClickHouseHTTP) -> None:
    endpoint.rows("CREATE DATABASE IF NOT EXISTS rolled ENGINE = Atomic")
    client = _client(endpoint, "rolled")
    store = ClickHouseStore.from_client(client)
    store.create_tables()
    spans, _ = dataset()
    store.insert_spans(spans)
    reader = ClickHouseReader.from_client(client)

    def answers(reader: ClickHouseReader) -> Any:
        return (
            reader.error_groups(Scope(), 10),
            reader.funnel(Scope(), ["Api.get", "Api.put"], 3600 * 10**9, "session"),
            reader.active_actors(Scope(), "session"),
            reader.sessions(Scope(), 10),
            [(row.key, row.kept, row.calls, row.errors) for row in reader.aggregate(Scope(), "function").rows],
        )

    before = answers(reader)
    copied = reader.create_rollups()
    calls = sum(1 for span in spans if span[9] == attr.INVOCATION_SCOPE)
    tiers = ("hour", "day", "week", "month")
    assert copied == {**dict.fromkeys(tiers, calls), **{f"{t} errors": calls for t in tiers}, "analysis columns": calls}
    assert any(r.statement.startswith("ALTER TABLE otel_traces ADD COLUMN") for r in endpoint.requests)
    assert columns.present(reader.run)
    assert rollups.existing(reader.run, errors=True) == {"hour", "day", "week", "month"}
    after = answers(ClickHouseReader.from_client(client))
    assert after == before and before[0] and before[1][0] > 0
    client.close()
