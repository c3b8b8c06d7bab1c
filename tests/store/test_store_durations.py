"""Percentiles from the sorted durations table plus the rows still waiting to join it: the same
answers as sorting every duration, whatever the split, filters, deletions and migrations."""

from __future__ import annotations

import math
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sdk_telemetry_exporters import attributes as attr

from sdk_telemetry.store import _rows, _sqlite
from sdk_telemetry.store.queries import Filters, function_stats
from sdk_telemetry.store.retention import apply_retention

NS = 1_000_000_000
MS = 1_000_000
T0 = 1_700_000_000
SERVICES = ("svc-a", "svc-b")
ENVIRONMENTS = ("production", "staging")


def _rows_for(start: int, count: int, rng: random.Random) -> list[tuple[Any, ...]]:
    rows = []
    for i in range(start, start + count):
        rows.append(
            _rows.trace_row(
                timestamp=(T0 + i) * NS,
                trace_id=f"{i + 1:032x}",
                span_id=f"{i + 1:016x}",
                name=f"F.f{i % 3}",
                # Few distinct values: ties across the sorted and the waiting rows.
                duration=rng.randrange(1, 40) * MS,
                resource={
                    attr.SERVICE_NAME: SERVICES[i % 2],
                    attr.DEPLOYMENT_ENVIRONMENT: ENVIRONMENTS[(i // 2) % 2],
                },
                attributes={},
                scope=attr.INVOCATION_SCOPE,
            )
        )
    return rows


def _write(connection: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    with connection:
        connection.execute("BEGIN IMMEDIATE")
        _sqlite.insert_spans(connection, rows)


def _expected(connection: sqlite3.Connection, filters: Filters) -> dict[str, tuple[float, ...]]:
    """Nearest-rank p50/p95/p99/min/max by sorting every matching duration."""
    where, params = "", []
    for column, value in (("ServiceName", filters.service), ("Environment", filters.environment)):
        if value is not None:
            where += f" AND {column} = ?"
            params.append(value)
    durations: dict[str, list[int]] = {}
    for name, duration in connection.execute(f"SELECT SpanName, Duration FROM otel_traces WHERE 1{where}", params):
        durations.setdefault(name, []).append(duration)
    answer = {}
    for name, values in durations.items():
        values.sort()

        def pick(fraction: float, values: list[int] = values) -> float:
            return values[max(1, math.ceil(round(fraction * len(values), 9))) - 1] / MS

        answer[name] = (pick(0.5), pick(0.95), pick(0.99), values[0] / MS, values[-1] / MS)
    return answer


def _actual(connection: sqlite3.Connection, filters: Filters) -> dict[str, tuple[float, ...]]:
    return {
        row.function: (row.p50_ms, row.p95_ms, row.p99_ms, row.min_ms, row.max_ms)
        for row in function_stats(connection, filters)
    }


FILTERS = [Filters(), Filters(service="svc-a"), Filters(service="svc-b", environment="staging")]


@pytest.fixture
def connection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> sqlite3.Connection:
    monkeypatch.setattr(_sqlite, "DURATION_BATCH_ROWS", 50)
    return _sqlite.connect(tmp_path / "durations.sqlite3")


def _waiting(connection: sqlite3.Connection) -> int:
    (count,) = connection.execute(
        "SELECT COUNT(*) FROM otel_traces WHERE rowid > ?", (_sqlite.durations_through(connection),)
    ).fetchone()
    return int(count)


def test_rows_join_the_sorted_durations_in_bulk_and_answers_match_a_full_sort(connection: sqlite3.Connection) -> None:
    rng = random.Random(5)
    for start in range(0, 230, 23):
        _write(connection, _rows_for(start, 23, rng))
        (sorted_rows,) = connection.execute("SELECT COUNT(*) FROM otel_traces_durations").fetchone()
        # Either all rows are sorted in, or fewer than a bulk step wait outside.
        assert sorted_rows + _waiting(connection) == start + 23
        assert _waiting(connection) < 50
        for filters in FILTERS:
            assert _actual(connection, filters) == _expected(connection, filters)
    assert _waiting(connection) > 0  # the last answers did read waiting rows


def test_answers_are_the_same_with_everything_waiting_or_everything_sorted(
    connection: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_sqlite, "DURATION_BATCH_ROWS", 10_000)
    _write(connection, _rows_for(0, 300, random.Random(7)))
    assert _waiting(connection) == 300
    waiting = {str(filters): _actual(connection, filters) for filters in FILTERS}
    with connection:
        _sqlite.rebuild_durations(connection)
    assert _waiting(connection) == 0
    for filters in FILTERS:
        assert _actual(connection, filters) == waiting[str(filters)] == _expected(connection, filters)


def test_deleted_rows_leave_the_sorted_durations(connection: sqlite3.Connection) -> None:
    rng = random.Random(9)
    _write(connection, _rows_for(0, 60, rng))
    _write(connection, _rows_for(60, 30, rng))
    assert _waiting(connection) == 30
    # Keep the rows of the last 40 seconds (retention by timestamp): 10 sorted in, 30 waiting.
    apply_retention(connection, days=40 / 86_400, now_ns=(T0 + 90) * NS)
    (kept,) = connection.execute("SELECT COUNT(*) FROM otel_traces").fetchone()
    (sorted_rows,) = connection.execute("SELECT COUNT(*) FROM otel_traces_durations").fetchone()
    assert kept == 40
    assert sorted_rows + _waiting(connection) == 40
    for filters in FILTERS:
        assert _actual(connection, filters) == _expected(connection, filters)


def test_new_rows_below_the_mark_after_the_newest_were_deleted_are_still_counted(
    connection: sqlite3.Connection,
) -> None:
    rng = random.Random(11)
    _write(connection, _rows_for(0, 60, rng))
    mark = _sqlite.durations_through(connection)
    assert mark == 60
    with connection:
        connection.execute("DELETE FROM otel_traces WHERE rowid > 40")
    _write(connection, _rows_for(1000, 5, rng))  # their rowids are 41..45, below the old mark
    assert _sqlite.durations_through(connection) == 40
    assert _waiting(connection) == 5
    for filters in FILTERS:
        assert _actual(connection, filters) == _expected(connection, filters)


def test_a_version_4_store_gets_its_durations_sorted_in(tmp_path: Path) -> None:
    path = tmp_path / "v4.sqlite3"
    connection = _sqlite.connect(path)
    _write(connection, _rows_for(0, 80, random.Random(13)))
    expected = _expected(connection, Filters())
    # Back to version 4's layout: a per-row duration index, no durations table.
    with connection:
        for table in ("otel_traces_durations", "otel_traces_durations_through"):
            connection.execute(f"DROP TABLE {table}")
        connection.execute("DROP TRIGGER otel_traces_durations_delete")
        connection.execute("CREATE INDEX otel_traces_name_duration ON otel_traces (ScopeName, SpanName, Duration)")
        connection.execute("PRAGMA user_version = 4")
    connection.close()
    migrated = _sqlite.connect(path)
    assert migrated.execute("PRAGMA user_version").fetchone() == (_sqlite.SCHEMA_VERSION,)
    indexes = {name for (name,) in migrated.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "otel_traces_name_duration" not in indexes
    assert _waiting(migrated) == 0
    assert _actual(migrated, Filters()) == expected
