"""The ClickHouse SQL runs on the real ClickHouse engine (chDB) and answers as SQLite does,
over the same known dataset, loaded through the same rows into the Collector's tables."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chdb import session as chdb_session

from sdk_telemetry.store import connect, insert_spans, log_row, metric_row, top_errors, trace_row
from sdk_telemetry.store.clickhouse import DEDUPLICATION_WINDOW, TABLES, ClickHouseStore
from sdk_telemetry.store.queries import Filters, QueryError
from tests.helpers.store_data import (
    EXPECTED_ALL,
    EXPECTED_WINDOW,
    METRIC_ANSWERS,
    T0,
    assert_stats,
    by_function,
    dataset,
)


@pytest.fixture(scope="module")
def clickhouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseStore]:
    path: Path = tmp_path_factory.mktemp("chdb")
    session = chdb_session.Session(str(path))
    session.query("CREATE DATABASE IF NOT EXISTS otel ENGINE = Atomic")
    session.query("USE otel")
    store = ClickHouseStore.from_chdb(session)
    store.create_tables()
    spans, metrics = dataset()
    store.insert_spans(spans)
    store.insert_metrics(metrics)
    yield store
    session.close()


def test_the_rows_landed_in_the_collector_tables(clickhouse: ClickHouseStore) -> None:
    (row,) = clickhouse.run(
        "SELECT count(), countIf(ScopeName = 'sdk_telemetry'), toUnixTimestamp64Nano(min(Timestamp)) FROM otel_traces",
        {},
    )
    assert [int(value) for value in row] == [32, 31, (T0 + 1) * 1_000_000_000]
    ((attributes,),) = clickhouse.run(
        "SELECT SpanAttributes FROM otel_traces WHERE SpanName = 'Api.put' AND StatusCode = 'Error'", {}
    )
    assert attributes["sdk_telemetry.sample_rate"] == "0.25"


def test_per_function_stats_match_sqlite(clickhouse: ClickHouseStore) -> None:
    rows = clickhouse.function_stats()
    assert [row.function for row in rows] == ["Api.put", "Api.get", "Api.outer"]
    got = by_function(rows)
    for name, expected in EXPECTED_ALL.items():
        assert_stats(got[name], expected)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (Filters(service="svc-a"), {"Api.get": EXPECTED_ALL["Api.get"]}),
        (Filters(environment="staging"), {"Api.put": EXPECTED_ALL["Api.put"]}),
        (Filters(session="s1"), {"Api.get": EXPECTED_ALL["Api.get"]}),
        (Filters(start=T0 + 5, end=T0 + 14), {"Api.get": EXPECTED_WINDOW}),
    ],
)
def test_filtered_stats_match_sqlite(clickhouse: ClickHouseStore, filters: Filters, expected: dict[str, Any]) -> None:
    got = by_function(clickhouse.function_stats(filters))
    assert set(got) == set(expected)
    for name, answer in expected.items():
        assert_stats(got[name], answer)


def test_top_errors_match_sqlite(clickhouse: ClickHouseStore) -> None:
    groups = [group.as_dict() for group in clickhouse.top_errors()]
    assert [g["error_type"] for g in groups] == ["ValueError", "TimeoutError"]
    assert (groups[0]["count"], groups[0]["kept"], groups[0]["functions"]) == (5, 2, 2)
    assert (groups[0]["sample_function"], groups[0]["sample_message"]) == ("Api.put", "bad put")
    assert groups[0]["last_seen"] == "2023-11-14T22:15:10.000Z"


@pytest.mark.parametrize("aggregation", sorted(METRIC_ANSWERS))
def test_every_aggregation_matches_sqlite(clickhouse: ClickHouseStore, aggregation: str) -> None:
    answer = clickhouse.get_metrics(aggregation=aggregation)
    latency, queue = answer["metrics"]["latency"], answer["metrics"]["queue"]
    assert (latency["value"], queue["value"]) == METRIC_ANSWERS[aggregation]
    assert (latency["sample_count"], queue["sample_count"]) == (10, 2)
    assert latency["time_range"] == {"start": "2023-11-14T22:13:21.000Z", "end": "2023-11-14T22:13:30.000Z"}


def test_metrics_by_name_and_range_and_a_bad_aggregation(clickhouse: ClickHouseStore) -> None:
    answer = clickhouse.get_metrics(names=["latency"], time_range=(T0 + 1, T0 + 5))
    assert answer["metrics"]["latency"]["value"] == 3.0
    with pytest.raises(QueryError) as caught:
        clickhouse.get_metrics(aggregation="AVG")
    assert caught.value.code == "INVALID_AGGREGATION"


def test_the_receiver_copies_what_it_stores_to_clickhouse(tmp_path: Path, clickhouse: ClickHouseStore) -> None:
    from sdk_telemetry.receiver import ReceiverSettings, create_app
    from tests.helpers.receiver import KEY, invocation, serve

    # chDB has one data directory per process: a second database in the same session.
    clickhouse.run("CREATE DATABASE IF NOT EXISTS mirror ENGINE = Atomic", {})
    clickhouse.run("USE mirror", {})
    settings = ReceiverSettings(store_path=tmp_path / "local.sqlite3", api_keys=(KEY,))
    with serve(settings, app_factory=lambda s: create_app(s, clickhouse=clickhouse)) as running:
        batch = [invocation(i) for i in range(1, 11)]
        batch[2]["error"] = {"name": "ValueError", "message": "bad"}
        for _ in range(2):  # the retry is stored once, and copied once
            assert running.post("/v1/metrics/invocations", batch).status_code == 200
        assert running.post("/api/v1/metrics", {"name": "depth", "value": 2.0, "timestamp": T0}).status_code == 200
        events = {
            "events": [
                {
                    "event": "GENERIC_EVENT",
                    "event_id": "e-1",
                    "event_session_index": 1,
                    "severity": "INFO",
                    "timestamp": "2025-05-21T14:32:17.123Z",
                    "event_name": "model.loaded",
                },
                {
                    "event": "SESSION_END",
                    "event_id": "e-2",
                    "event_session_index": 2,
                    "severity": "INFO",
                    "timestamp": "2025-05-21T14:32:18.123Z",
                },
            ],
            "platform": "Linux",
            "sdk_version": "0.38.0",
            "session_id": "sess-9",
            "process_uuid": "p-1",
        }
        for _ in range(2):  # a resent event batch is stored once, and copied once
            assert running.post("/api/v1/telemetry", events).status_code == 200
        copied = running.get("/health").json()["receiver"]
    try:
        assert copied["clickhouse_copied_rows"] == 13
        assert copied["clickhouse_failed_rows"] == 0
        (row,) = clickhouse.function_stats()
        assert (row.function, row.calls, row.errors, row.p50_ms, row.max_ms) == ("Tools.execute", 10, 1, 5.0, 10.0)
        assert clickhouse.get_metrics(["depth"], aggregation="SUM")["metrics"]["depth"]["value"] == 2.0
        logs = clickhouse.run(
            "SELECT EventName, LogAttributes['event.name'], LogAttributes['log.record.uid'] != '', ScopeName"
            " FROM otel_logs ORDER BY Timestamp",
            {},
        )
        assert [list(row) for row in logs] == [
            ["model.loaded", "model.loaded", True, "tinker"],
            ["SESSION_END", "SESSION_END", True, "tinker"],
        ]
    finally:
        clickhouse.run("USE otel", {})


def test_an_error_reported_by_every_layer_counts_once_in_both_engines(
    clickhouse: ClickHouseStore, tmp_path: Path
) -> None:
    # A Composio client reports each layer an exception went through, all with one errorId.
    layers = [
        ("Outer.run", "err-1", 2),
        ("Middle.step", "err-1", 1),
        ("Inner.fail", "err-1", 0),
        ("Other.call", "err-2", 3),
    ]
    rows = [
        trace_row(
            timestamp=(T0 + offset) * 1_000_000_000,
            trace_id=f"{n + 1:032x}",
            span_id=f"{n + 1:016x}",
            name=name,
            duration=1000,
            resource={"service.name": "svc"},
            attributes={"error.type": "ToolError", "sdk_telemetry.error.id": error_id},
            scope="sdk_telemetry",
            status="Error",
            status_message=f"from {name}",
        )
        for n, (name, error_id, offset) in enumerate(layers)
    ]
    sqlite = connect(tmp_path / "s.sqlite3")
    with sqlite:
        sqlite.execute("BEGIN IMMEDIATE")
        insert_spans(sqlite, rows)
    clickhouse.run("CREATE DATABASE IF NOT EXISTS layers ENGINE = Atomic", {})
    clickhouse.run("USE layers", {})  # beside the known dataset, for this test alone
    try:
        clickhouse.create_tables()
        clickhouse.insert_spans(rows)
        for groups in (top_errors(sqlite), clickhouse.top_errors()):
            (group,) = groups
            assert (group.error_type, group.count, group.kept, group.functions) == ("ToolError", 2, 2, 2)
            assert (group.sample_function, group.sample_message) == ("Other.call", "from Other.call")
    finally:
        clickhouse.run("USE otel", {})


def test_create_tables_makes_every_collector_table_with_its_columns(clickhouse: ClickHouseStore) -> None:
    names = {
        row[0]: row[1]
        for row in clickhouse.run("SELECT name, create_table_query FROM system.tables WHERE database = 'otel'", {})
    }
    assert set(TABLES) <= set(names)
    assert len(TABLES) == 7
    for name in TABLES:
        assert f"non_replicated_deduplication_window = {DEDUPLICATION_WINDOW}" in names[name]
    columns = {
        (row[0], row[1]): row[2]
        for row in clickhouse.run("SELECT table, name, type FROM system.columns WHERE database = 'otel'", {})
    }
    assert columns[("otel_logs", "EventName")] == "String"
    assert columns[("otel_logs", "LogAttributes")] == "Map(LowCardinality(String), String)"
    assert columns[("otel_traces", "Events.Timestamp")] == "Array(DateTime64(9))"
    assert columns[("otel_metrics_sum", "IsMonotonic")] == "Bool"
    assert columns[("otel_metrics_histogram", "ExplicitBounds")] == "Array(Float64)"
    assert columns[("otel_metrics_exponential_histogram", "PositiveBucketCounts")] == "Array(UInt64)"
    assert columns[("otel_metrics_summary", "ValueAtQuantiles.Quantile")] == "Array(Float64)"


def test_the_same_rows_inserted_twice_are_stored_once(clickhouse: ClickHouseStore) -> None:
    clickhouse.run("CREATE DATABASE IF NOT EXISTS twice ENGINE = Atomic", {})
    clickhouse.run("USE twice", {})
    try:
        clickhouse.create_tables()
        spans = [
            trace_row(
                timestamp=(T0 + n) * 1_000_000_000,
                trace_id=f"{n + 1:032x}",
                span_id=f"{n + 1:016x}",
                name="A.b",
                duration=n,
                resource={},
                attributes={},
                scope="sdk_telemetry",
            )
            for n in range(3)
        ]
        events = [
            log_row(timestamp=T0 * 1_000_000_000, event_id="e-1", body="b", resource={}, attributes={}, event_name="x")
        ]
        metrics = [
            metric_row(timestamp=T0 * 1_000_000_000, metric_id="m-1", name="m", value=1.0, attributes={}, resource={})
        ]
        for _ in range(2):  # a retried copy: the same rows, the same token
            clickhouse.insert_spans(spans)
            clickhouse.insert_events(events)
            clickhouse.insert_metrics(metrics)
        clickhouse.insert_spans(spans[:2])  # other rows, another token: stored
        counts = clickhouse.run(
            "SELECT (SELECT count() FROM otel_traces), (SELECT count() FROM otel_logs),"
            " (SELECT count() FROM otel_metrics_gauge)",
            {},
        )
        assert [int(value) for value in counts[0]] == [5, 1, 1]
    finally:
        clickhouse.run("USE otel", {})


def test_without_the_deduplication_window_a_plain_merge_tree_would_store_a_retry_twice(
    clickhouse: ClickHouseStore,
) -> None:
    # Why the tables we create carry non_replicated_deduplication_window: the token alone is ignored.
    clickhouse.run("CREATE DATABASE IF NOT EXISTS windowless ENGINE = Atomic", {})
    clickhouse.run("USE windowless", {})
    try:
        clickhouse.run(
            TABLES["otel_metrics_gauge"].replace(f", non_replicated_deduplication_window = {DEDUPLICATION_WINDOW}", ""),
            {},
        )
        metrics = [
            metric_row(timestamp=T0 * 1_000_000_000, metric_id="m-1", name="m", value=1.0, attributes={}, resource={})
        ]
        for _ in range(2):
            clickhouse.insert_metrics(metrics)
        assert [int(value) for value in clickhouse.run("SELECT count() FROM otel_metrics_gauge", {})[0]] == [2]
    finally:
        clickhouse.run("USE otel", {})
