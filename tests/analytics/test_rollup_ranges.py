"""Analyses over a range older than the raw rows kept read the rollups beyond them, say so, and stay
within 1 % of the exact figures of the full dataset (counts exactly)."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

import pytest

from sdk_telemetry.analytics import NS, Source, TimeRange, functions, performance, summary
from sdk_telemetry.dashboard._data import overview
from sdk_telemetry.store import SQLiteReader, apply_retention
from sdk_telemetry.store.rollups import bucket_start
from sdk_telemetry.store.sketch import nearest_rank
from tests.store.test_rollups import DAY, HOUR, NOW, store
from tests.store.test_rollups_read import dataset

ROWS = dataset()


@pytest.fixture(scope="module")
def trimmed(tmp_path_factory: pytest.TempPathFactory) -> sqlite3.Connection:
    connection = store(tmp_path_factory.mktemp("ranges") / "trimmed.sqlite3", ROWS, batch=1000)
    assert apply_retention(connection, 7, now_ns=NOW)["spans"] > 0.9 * len(ROWS)
    return connection


def exact(start: int, end: int, function: str | None = None) -> dict[str, float]:
    """Calls, errors and nearest-rank percentiles (ms) of the full dataset's calls in [start, end)."""
    rows = [r for r in ROWS if start <= r[0] < end and function in (None, r[5])]
    durations = sorted(r[12] for r in rows)
    return {
        "calls": sum(1 / r[17] for r in rows),
        "errors": sum(1 / r[17] for r in rows if r[13] == "Error"),
        **{f"p{p}_ms": durations[nearest_rank(len(durations), p) - 1] / 1e6 for p in (50, 95, 99)},
    }


def close(got: dict[str, float], want: dict[str, float]) -> None:
    assert got["calls"] == pytest.approx(want["calls"], rel=1e-9)
    assert got["errors"] == pytest.approx(want["errors"], rel=1e-9)
    for name in ("p50_ms", "p95_ms", "p99_ms"):
        assert abs(got[name] - want[name]) <= 0.01 * want[name], name


def test_a_90_day_daily_performance_series_reads_rollups_then_raw_rows(trimmed: sqlite3.Connection) -> None:
    source = Source(SQLiteReader(trimmed, Path("trimmed.sqlite3")))
    start = bucket_start("day", NOW - 90 * DAY) + DAY
    result = performance(source, None, TimeRange(start, start + 90 * DAY), 86400).as_dict()
    # The series from days, then the hours and raw rows of the last days; the whole range's figures
    # also from the weeks and months that hold it.
    assert result["summary"]["read_from"][:3] == ["day", "hour", "raw"]
    assert len(result["buckets"]) == 90
    close(result["summary"], exact(start, NOW))
    for index in (0, 45, 85, 89):  # from the day tier, and the last days (hours, then raw rows)
        bucket = result["buckets"][index]
        close(bucket, exact(start + index * DAY, min(NOW, start + (index + 1) * DAY)))
    # Within the raw rows: exact, and said so.
    recent = performance(source, "Tools.run", TimeRange(NOW - 3 * DAY, NOW), 3600).as_dict()
    assert recent["summary"]["read_from"] == ["raw"]
    assert recent["summary"]["p95_ms"] == exact(NOW - 3 * DAY, NOW, "Tools.run")["p95_ms"]


def test_functions_summary_and_the_dashboard_over_30_days(trimmed: sqlite3.Connection) -> None:
    source = Source(SQLiteReader(trimmed, Path("trimmed.sqlite3")))
    month = TimeRange(NOW - 30 * DAY, NOW)
    # Rollup buckets count whole when they start in the range: from the first hour starting in it.
    first = bucket_start("hour", NOW - 30 * DAY) + HOUR
    table = {row["function"]: row for row in functions(source, month)}
    assert sorted(table) == ["Client.search", "Client.upload", "Tools.run"]
    for name, row in table.items():
        close(row, exact(first, NOW, name))
    figures = summary(source, "Client.upload", month)
    # Whole days and weeks inside the hours' part come from the coarser tiers (the same sums).
    assert figures["read_from"][0] == "hour" and figures["read_from"][-1] == "raw"
    close(figures, exact(first, NOW, "Client.upload"))
    page = overview(source, "30d", now=NOW / NS)
    close(page["totals"], exact(first, NOW))
    assert sum(bucket["calls"] for bucket in page["overall_series"]) == pytest.approx(page["totals"]["calls"])


def test_the_whole_range_reaches_back_through_the_rollups(trimmed: sqlite3.Connection) -> None:
    source = Source(SQLiteReader(trimmed, Path("trimmed.sqlite3")))
    page = overview(source, "all", now=NOW / NS)
    start = int(datetime.fromisoformat(page["time_range"]["start"].replace("Z", "+00:00")).timestamp()) * NS
    first = min(row[0] for row in ROWS)
    assert start <= first and first - start < 7 * DAY  # the oldest week's Monday at most: not the raw week
    assert {"week", "raw"} <= set(page["totals"]["read_from"])
    assert page["totals"]["calls"] == pytest.approx(sum(1 / row[17] for row in ROWS), rel=1e-9)
