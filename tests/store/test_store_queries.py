"""Every question the store answers, against a dataset whose answers are known by hand."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from sdk_telemetry.store import LocalStore, _sqlite
from sdk_telemetry.store.queries import Filters, QueryError, function_stats, get_metrics, top_errors
from sdk_telemetry.store.retention import apply_retention
from tests.helpers.store_data import (
    EXPECTED_ALL,
    EXPECTED_WINDOW,
    METRIC_ANSWERS,
    NS,
    T0,
    _span,
    assert_stats,
    by_function,
    dataset,
    load,
)


@pytest.fixture
def store(tmp_path: Path) -> sqlite3.Connection:
    connection = _sqlite.connect(tmp_path / "known.sqlite3")
    load(connection)
    return connection


def test_per_function_stats_over_everything(store: sqlite3.Connection) -> None:
    rows = function_stats(store)
    assert [row.function for row in rows] == ["Api.put", "Api.get", "Api.outer"]  # busiest (scaled) first
    got = by_function(rows)
    for name, expected in EXPECTED_ALL.items():
        assert_stats(got[name], expected)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (Filters(service="svc-a"), {"Api.get": EXPECTED_ALL["Api.get"]}),
        (Filters(environment="staging"), {"Api.put": EXPECTED_ALL["Api.put"]}),
        (Filters(service="svc-c", environment="production"), {"Api.outer": EXPECTED_ALL["Api.outer"]}),
        (Filters(session="s1"), {"Api.get": EXPECTED_ALL["Api.get"]}),
        (Filters(start=T0 + 5, end=T0 + 14), {"Api.get": EXPECTED_WINDOW}),
        (Filters(start="2023-11-14T22:13:25Z", end="2023-11-14T22:13:34Z"), {"Api.get": EXPECTED_WINDOW}),
        (Filters(service="nobody"), {}),
    ],
)
def test_per_function_stats_filtered(store: sqlite3.Connection, filters: Filters, expected: dict[str, Any]) -> None:
    got = by_function(function_stats(store, filters))
    assert set(got) == set(expected)
    for name, answer in expected.items():
        assert_stats(got[name], answer)


def test_a_reversed_time_range_is_refused(store: sqlite3.Connection) -> None:
    with pytest.raises(QueryError) as caught:
        function_stats(store, Filters(start=T0 + 10, end=T0))
    assert caught.value.code == "INVALID_TIME_RANGE"


def test_top_errors_by_type_count_each_error_once(store: sqlite3.Connection) -> None:
    groups = [group.as_dict() for group in top_errors(store)]
    assert [g["error_type"] for g in groups] == ["ValueError", "TimeoutError"]
    value, timeout = groups
    assert (value["count"], value["kept"], value["functions"]) == (5, 2, 2)  # 1 + 1 sampled at 0.25
    assert (value["sample_function"], value["sample_message"]) == ("Api.put", "bad put")  # the latest
    assert value["last_seen"] == "2023-11-14T22:15:10.000Z"
    assert (timeout["count"], timeout["sample_message"]) == (1, "get 7 failed")
    assert [g.error_type for g in top_errors(store, Filters(service="svc-a"), limit=1)] == [
        "TimeoutError"
    ]  # a tie: by name


@pytest.mark.parametrize("aggregation", sorted(METRIC_ANSWERS))
def test_every_aggregation_of_recorded_metrics(store: sqlite3.Connection, aggregation: str) -> None:
    answer = get_metrics(store, aggregation=aggregation.lower() if aggregation == "P95" else aggregation)
    assert answer["status"] == "success"
    latency, queue = answer["metrics"]["latency"], answer["metrics"]["queue"]
    assert (latency["value"], queue["value"]) == METRIC_ANSWERS[aggregation]
    assert latency["aggregation"] == aggregation
    assert (latency["sample_count"], queue["sample_count"]) == (10, 2)
    assert latency["time_range"] == {"start": "2023-11-14T22:13:21.000Z", "end": "2023-11-14T22:13:30.000Z"}


def test_metrics_by_name_and_time_range(store: sqlite3.Connection) -> None:
    answer = get_metrics(store, names=["latency"], time_range=(T0 + 1, T0 + 5), aggregation="MEAN")
    assert list(answer["metrics"]) == ["latency"]
    assert answer["metrics"]["latency"]["value"] == 3.0
    assert answer["metrics"]["latency"]["sample_count"] == 5
    assert answer["metrics"]["latency"]["time_range"]["start"] == "2023-11-14T22:13:21.000Z"


def test_an_unknown_aggregation_is_refused_by_name(store: sqlite3.Connection) -> None:
    with pytest.raises(QueryError) as caught:
        get_metrics(store, aggregation="MEDIAN")
    assert caught.value.code == "INVALID_AGGREGATION"
    assert "MEDIAN" in caught.value.message


def test_a_span_stored_twice_is_kept_and_counted_once(store: sqlite3.Connection) -> None:
    spans, _ = dataset()
    with store:
        store.execute("BEGIN IMMEDIATE")
        assert _sqlite.insert_spans(store, spans[:5] + spans[:5]) == []
    assert store.execute("SELECT COUNT(*) FROM otel_traces").fetchone() == (len(spans),)
    assert_stats(by_function(function_stats(store))["Api.get"], EXPECTED_ALL["Api.get"])


def test_retention_deletes_old_rows_and_the_summary_follows(store: sqlite3.Connection) -> None:
    # "now" is 7 days after T0 + 10.5 s: Api.get 1..10 and latency 1..10 are older than 7 days.
    now = (T0 + 10) * NS + 7 * 86_400 * NS + NS // 2
    deleted = apply_retention(store, 7, now_ns=now)
    assert deleted == {"spans": 10, "events": 0, "metrics": 10, "rollups": 0}
    got = by_function(function_stats(store))
    assert got["Api.get"]["calls"] == 10
    assert got["Api.get"]["p50_ms"] == 15.0  # 11..20: rank 5
    assert got["Api.get"]["errors"] == 0
    assert got["Api.put"]["calls"] == 40
    forever = {"hour": 0.0, "day": 0.0, "week": 0.0, "month": 0.0}
    assert apply_retention(store, 0, now_ns=now * 2, rollup_days=forever) == {
        "spans": 0,
        "events": 0,
        "metrics": 0,
        "rollups": 0,
    }


def test_local_store_api_records_and_answers(tmp_path: Path) -> None:
    with LocalStore(tmp_path / "api.sqlite3", retention_days=3) as local:
        ids = {local.record_metric("tokens", value, {"model": "m"}, timestamp=T0 + value) for value in (1, 2, 3)}
        assert len(ids) == 3
        recorded = local.record_event("COMMAND", {"command": "run"}, source="cli", timestamp=T0, event_id="e-1")
        assert recorded == {"status": "success", "event_id": "e-1", "timestamp": "2023-11-14T22:13:20.000Z"}
        local.record_event("COMMAND", {"command": "run"}, event_id="e-1")  # a retry: stored once
        assert local.get_metrics(["tokens"], aggregation="SUM")["metrics"]["tokens"]["value"] == 6.0
        health = local.health_check()
        assert health["status"] == "healthy"
        assert health["stats"]["metrics_recorded"] == 3
        assert health["stats"]["events_recorded"] == 1
        assert health["stats"]["data_retention_days"] == 3
        assert health["stats"]["storage_bytes"] > 0
        assert 0 < health["stats"]["storage_usage_percentage"] < 100
        row = local.connection().execute("SELECT Body, EventName, LogAttributes FROM otel_logs").fetchone()
        assert row[0] == "COMMAND" and row[1] == "COMMAND" and '"event.source":"cli"' in row[2]
        with pytest.raises(QueryError, match="number"):
            local.record_metric("tokens", "many")  # type: ignore[arg-type]


def test_a_version_1_store_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        """
        CREATE TABLE otel_traces (Timestamp INTEGER NOT NULL, TraceId TEXT NOT NULL, SpanId TEXT NOT NULL,
            ParentSpanId TEXT NOT NULL DEFAULT '', TraceState TEXT NOT NULL DEFAULT '', SpanName TEXT NOT NULL,
            SpanKind TEXT NOT NULL, ServiceName TEXT NOT NULL DEFAULT '', ResourceAttributes TEXT NOT NULL DEFAULT '{}',
            ScopeName TEXT NOT NULL DEFAULT '', ScopeVersion TEXT NOT NULL DEFAULT '',
            SpanAttributes TEXT NOT NULL DEFAULT '{}',
            Duration INTEGER NOT NULL, StatusCode TEXT NOT NULL, StatusMessage TEXT NOT NULL DEFAULT '',
            Events TEXT NOT NULL DEFAULT '[]', Links TEXT NOT NULL DEFAULT '[]',
            PRIMARY KEY (TraceId, SpanId)) WITHOUT ROWID;
        INSERT INTO otel_traces VALUES (1, 'a', 'b', '', '', 'F.x', 'Internal', 'svc',
            '{"deployment.environment.name":"ci"}',
            'sdk_telemetry', '', '{"sdk_telemetry.sample_rate":0.5}', 2000000, 'Error', 'x', '[]', '[]');
        """
    )
    old.close()
    connection = _sqlite.connect(path)
    (row,) = function_stats(connection, Filters(environment="ci"))
    assert (row.function, row.calls, row.errors, row.kept, row.p50_ms) == ("F.x", 2, 2, 1, 2.0)


def _write_spans(path: str, start: int) -> None:
    connection = _sqlite.connect(Path(path))
    for batch in range(10):
        rows = [_span(start + batch * 50 + i, "Multi.write", 1, "svc", "production", "s") for i in range(50)]
        with connection:
            connection.execute("BEGIN IMMEDIATE")
            _sqlite.insert_spans(connection, rows)
    connection.close()


def test_several_processes_write_one_store_at_once(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    _sqlite.connect(path).close()
    context = multiprocessing.get_context("spawn")
    # Overlapping id ranges: 0-499, 250-749, 500-999 -> 1,000 distinct spans.
    workers = [context.Process(target=_write_spans, args=(str(path), start)) for start in (0, 250, 500)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    connection = _sqlite.connect(path)
    assert connection.execute("SELECT COUNT(*) FROM otel_traces").fetchone() == (1000,)
    (row,) = function_stats(connection)
    assert (row.calls, row.kept) == (1000, 1000)
