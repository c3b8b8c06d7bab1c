"""Rollups: filled from the rows each insert newly stored (once per call, whatever the retries),
filled once from older stores, trimmed per tier, and the plan of which tier answers which part."""

from __future__ import annotations

import random
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sdk_telemetry_exporters.attributes import INVOCATION_SCOPE, SAMPLE_RATE

from sdk_telemetry.store import _sqlite
from sdk_telemetry.store._rows import trace_row
from sdk_telemetry.store.reader import Buckets, Scope
from sdk_telemetry.store.retention import apply_retention, retention_step, rollup_cutoffs
from sdk_telemetry.store.rollups import (
    NS_PER_DAY,
    NS_PER_HOUR,
    add_calls,
    bucket_start,
    complete_since,
    fold_rollups,
    folded_through,
    next_start,
    plan_tiers,
    raw_complete_since,
    read_rollups,
    record_complete_since,
)
from sdk_telemetry.store.sketch import Sketch

NS = 1_000_000_000
DAY, HOUR = NS_PER_DAY, NS_PER_HOUR


def utc(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=timezone.utc).timestamp()) * NS  # type: ignore[arg-type]


#: Thursday 2026-12-03 15:20 UTC.
NOW = utc(2026, 12, 3, 15, 20)


def span(n: int, timestamp: int, name: str = "Api.get", duration: int = 1_000_000, **extra: Any) -> tuple[Any, ...]:
    """An `otel_traces` row; `extra`: rate, service, env, scope, status."""
    rate = extra.pop("rate", 1.0)
    return trace_row(
        timestamp=timestamp,
        trace_id=f"{n + 1:032x}",
        span_id=f"{n + 1:016x}",
        name=name,
        duration=duration,
        resource={"service.name": extra.pop("service", "svc"), "deployment.environment.name": extra.pop("env", "prod")},
        attributes={SAMPLE_RATE: rate} if rate != 1.0 else {},
        scope=extra.pop("scope", INVOCATION_SCOPE),
        status=extra.pop("status", "Unset"),
    )


def store(path: Path, rows: list[tuple[Any, ...]], batch: int = 500) -> sqlite3.Connection:
    connection = _sqlite.connect(path)
    for start in range(0, len(rows), batch):
        with connection:
            connection.execute("BEGIN IMMEDIATE")
            _sqlite.insert_spans(connection, rows[start : start + batch])
    return connection


def rollup_table(connection: sqlite3.Connection, fold: bool = True) -> list[tuple[Any, ...]]:
    """Every rollup bucket; with `fold`, the latest hours folded into the coarser tiers first."""
    if fold:
        with connection:
            fold_rollups(connection, 2**62)
    return connection.execute(
        "SELECT * FROM otel_traces_rollups ORDER BY Tier, BucketStart, SpanName, ServiceName, Environment"
    ).fetchall()


def recount(connection: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """The rollups computed afresh from the raw rows, in a scratch database."""
    scratch = sqlite3.connect(":memory:")
    for statement in _sqlite._statements(_sqlite.SCHEMA):
        scratch.execute(statement)
    add_calls(
        scratch,
        connection.execute(
            "SELECT Timestamp, SpanName, ServiceName, Environment, Duration, StatusCode, SampleRate "
            "FROM otel_traces WHERE ScopeName = ?",
            (INVOCATION_SCOPE,),
        ).fetchall(),
    )
    return rollup_table(scratch)


def test_bucket_starts_are_utc_hours_days_mondays_and_calendar_months() -> None:
    moment = utc(2026, 12, 3, 15, 20) + 123
    assert bucket_start("hour", moment) == utc(2026, 12, 3, 15)
    assert bucket_start("day", moment) == utc(2026, 12, 3)
    assert bucket_start("week", moment) == utc(2026, 11, 30)  # a Monday
    assert bucket_start("week", utc(2026, 11, 30)) == utc(2026, 11, 30)
    assert bucket_start("week", utc(2026, 11, 29, 23, 59)) == utc(2026, 11, 23)
    assert bucket_start("month", moment) == utc(2026, 12, 1)
    assert next_start("month", utc(2026, 12, 1)) == utc(2027, 1, 1)
    assert next_start("month", utc(2026, 1, 1)) == utc(2026, 2, 1)
    assert next_start("week", utc(2026, 11, 30)) == utc(2026, 12, 7)
    assert bucket_start("day", utc(1969, 12, 31, 12)) == utc(1969, 12, 31)


def test_every_tier_counts_each_new_call_once_with_its_figures(tmp_path: Path) -> None:
    rows = [
        span(0, utc(2026, 11, 30, 10, 5), duration=2_000_000),
        span(1, utc(2026, 11, 30, 10, 50), duration=4_000_000, status="Error", rate=0.25),
        span(2, utc(2026, 12, 1, 9), duration=6_000_000),
        span(3, utc(2026, 12, 1, 9), name="Api.put", service="other", env="dev"),
        span(4, utc(2026, 12, 1, 9), name="GET", scope="opentelemetry.instrumentation.requests"),  # not a call
    ]
    connection = store(tmp_path / "s.sqlite3", rows)
    got = {(tier, start, name): figures for tier, start, name, _, _, *figures in rollup_table(connection)}
    first_hour = ("hour", utc(2026, 11, 30, 10), "Api.get")
    assert got[first_hour][:6] == [2, 5.0, 4.0, 6_000_000, 2_000_000, 4_000_000]
    assert Sketch.from_json(got[first_hour][6]) == Sketch.of([2_000_000, 4_000_000])
    assert got[("day", utc(2026, 12, 1), "Api.get")][:3] == [1, 1.0, 0.0]
    assert got[("week", utc(2026, 11, 30), "Api.get")][:6] == [3, 6.0, 4.0, 12_000_000, 2_000_000, 6_000_000]
    assert got[("month", utc(2026, 11, 1), "Api.get")][:2] == [2, 5.0]
    assert got[("month", utc(2026, 12, 1), "Api.get")][:2] == [1, 1.0]
    assert [key for key in got if key[2] == "GET"] == []
    assert sum(1 for key in got if key[0] == "hour") == 3


def test_the_same_batch_inserted_twice_and_overlapping_batches_count_once(tmp_path: Path) -> None:
    rng = random.Random(3)
    rows = [span(n, NOW - rng.randrange(40 * DAY), duration=rng.randrange(1, 10**9)) for n in range(3000)]
    connection = store(tmp_path / "s.sqlite3", rows)
    once = rollup_table(connection)
    for start in (0, 0, 250, 1000):  # retries of whole and partial batches
        with connection:
            connection.execute("BEGIN IMMEDIATE")
            _sqlite.insert_spans(connection, rows[start : start + 700] + rows[:10])
    assert rollup_table(connection) == once == recount(connection)
    assert connection.execute("SELECT SUM(Kept) FROM otel_traces_rollups GROUP BY Tier").fetchall() == [(3000,)] * 4


def test_the_latest_hours_reach_the_coarser_tiers_a_batch_later_and_late_calls_at_once(tmp_path: Path) -> None:
    connection = store(tmp_path / "s.sqlite3", [span(0, NOW), span(1, NOW - 3 * HOUR)])
    assert folded_through(connection) == bucket_start("hour", NOW) - HOUR

    def days() -> list[tuple[Any, ...]]:
        return connection.execute("SELECT BucketStart, Kept FROM otel_traces_rollups WHERE Tier = 'day'").fetchall()

    assert days() == [(bucket_start("day", NOW), 1)]  # the call of 3 hours before, not yet the latest
    store(tmp_path / "s.sqlite3", [span(2, NOW - 5 * HOUR)])  # late: its hour was folded
    assert days() == [(bucket_start("day", NOW), 2)]
    # Read through the reader, the latest hour counts (from the hour tier).
    overall, origins = read_rollups(connection, Scope(start=bucket_start("day", NOW)), None, before=NOW + HOUR)
    assert ([group.kept for group in overall], origins) == ([3], ["hour"])
    store(tmp_path / "s.sqlite3", [span(3, NOW + 2 * HOUR)])  # a later batch folds the hour, not itself
    assert days() == [(bucket_start("day", NOW), 3)]


def test_a_rolled_back_insert_leaves_no_rollups(tmp_path: Path) -> None:
    connection = store(tmp_path / "s.sqlite3", [span(0, NOW)])
    before = rollup_table(connection)
    with pytest.raises(RuntimeError), connection:
        connection.execute("BEGIN IMMEDIATE")
        _sqlite.insert_spans(connection, [span(1, NOW), span(2, NOW - DAY)])
        raise RuntimeError("the writer failed before the commit")
    assert rollup_table(connection) == before


def test_a_store_without_rollups_gets_them_once_from_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "v5.sqlite3"
    rng = random.Random(5)
    rows = [span(n, NOW - rng.randrange(100 * DAY), duration=rng.randrange(10**9)) for n in range(2000)]
    connection = store(path, rows)
    expected = rollup_table(connection)
    assert len(expected) > 100
    # As a version-5 file: no rollup tables.
    connection.execute("DROP TABLE otel_traces_rollups")
    connection.execute("DROP TABLE otel_traces_complete_since")
    connection.execute("DROP TABLE otel_traces_rollups_folded")
    connection.execute("PRAGMA user_version = 5")
    connection.close()
    migrated = _sqlite.connect(path)
    assert migrated.execute("PRAGMA user_version").fetchone() == (_sqlite.SCHEMA_VERSION,)
    assert rollup_table(migrated) == expected
    migrated.execute("PRAGMA user_version = 5")  # migrating again (a later version) keeps the rollups as they are
    migrated.execute("DELETE FROM otel_traces WHERE rowid % 2 = 0")
    migrated.close()
    assert rollup_table(_sqlite.connect(path)) == expected


def test_retention_trims_each_tier_and_records_from_when_each_origin_is_complete(tmp_path: Path) -> None:
    rows = [span(n, NOW - n * HOUR - 17 * NS) for n in range(400 * 24)]  # one call an hour, 400 days
    connection = store(tmp_path / "s.sqlite3", rows, batch=2000)
    assert raw_complete_since(connection) is None
    deleted = apply_retention(connection, 7, now_ns=NOW)
    assert deleted["spans"] == sum(1 for row in rows if row[0] < NOW - 7 * DAY)
    assert deleted["rollups"] > 0
    since = complete_since(connection)
    assert since["raw"] == raw_complete_since(connection) == bucket_start("hour", NOW - 7 * DAY) + HOUR
    assert since["hour"] == NOW - 30 * DAY
    assert since["day"] == NOW - 90 * DAY
    assert since["week"] == NOW - 180 * DAY
    assert since["month"] == NOW - 365 * DAY
    widths = {"hour": HOUR, "day": DAY, "week": 7 * DAY, "month": 31 * DAY}
    for tier, days in (("hour", 30), ("day", 90), ("week", 180), ("month", 365)):
        (oldest,) = connection.execute(
            "SELECT MIN(BucketStart) FROM otel_traces_rollups WHERE Tier = ?", (tier,)
        ).fetchone()
        assert oldest >= NOW - days * DAY > oldest - widths[tier], tier
    # Raw rows from the recorded moment on are all there.
    (kept,) = connection.execute("SELECT COUNT(*) FROM otel_traces WHERE Timestamp >= ?", (since["raw"],)).fetchone()
    assert kept == sum(1 for row in rows if row[0] >= since["raw"])
    # A later sweep moves the moments on; one with an older cutoff never moves them back.
    apply_retention(connection, 7, now_ns=NOW + DAY)
    assert complete_since(connection)["hour"] == NOW + DAY - 30 * DAY
    apply_retention(connection, 7, now_ns=NOW)
    assert complete_since(connection)["hour"] == NOW + DAY - 30 * DAY
    # Tiers kept forever (0 days) are not trimmed.
    forever = {"hour": 0.0, "day": 0.0, "week": 0.0, "month": 0.0}
    assert apply_retention(connection, 0, now_ns=NOW * 2, rollup_days=forever)["rollups"] == 0


def test_retention_deletes_rollups_in_small_steps(tmp_path: Path) -> None:
    rows = [span(n, NOW - 40 * DAY - n * HOUR) for n in range(100)]  # 100 hours, 40 days ago and older
    connection = store(tmp_path / "s.sqlite3", rows)
    cutoffs = rollup_cutoffs({"day": 0.0, "week": 0.0, "month": 0.0}, NOW)
    assert list(cutoffs) == ["hour"]
    steps = []
    while deleted := retention_step(connection, None, rows=30, rollups=cutoffs)["rollups"]:
        steps.append(deleted)
    assert steps == [30, 30, 30, 10]  # the 100 hour buckets, at most 30 a step
    assert connection.execute("SELECT COUNT(*) FROM otel_traces").fetchone() == (100,)  # raw kept (no cutoff)
    assert connection.execute("SELECT Tier, COUNT(*) FROM otel_traces_rollups GROUP BY Tier").fetchall() == [
        ("day", 5),
        ("month", 1),
        ("week", 1),
    ]


DEFAULT_SINCE = {
    "raw": NOW - 7 * DAY,
    "hour": NOW - 30 * DAY,
    "day": NOW - 90 * DAY,
    "week": NOW - 180 * DAY,
    "month": NOW - 365 * DAY,
}
ALL_TIERS = ("hour", "day", "week", "month")


def test_the_plan_takes_the_finest_tier_for_the_latest_part_then_coarser_ones() -> None:
    before = bucket_start("hour", NOW - 7 * DAY) + HOUR
    start = bucket_start("day", NOW - 60 * DAY)
    change = bucket_start("day", NOW - 30 * DAY) + DAY
    assert plan_tiers(ALL_TIERS, DEFAULT_SINCE, start, before) == [("hour", change, before), ("day", start, change)]
    # Everything: hour, day, then month (weeks do not end where months start), reaching a year back.
    plan = plan_tiers(ALL_TIERS, DEFAULT_SINCE, None, before)
    assert [tier for tier, _, _ in plan] == ["hour", "day", "month"]
    month_change = utc(2026, 10, 1)  # the first month start the day tier holds (it holds from 2026-09-04)
    assert plan[1] == ("day", month_change, change)
    assert plan[2] == ("month", utc(2026, 1, 1), month_change)  # the months from 2025-12-03 15:20 on
    # Per week (no month tier fits): hour, day, then weeks from the first Monday the day tier holds.
    weekly = plan_tiers(("hour", "day", "week"), DEFAULT_SINCE, None, before)
    assert [tier for tier, _, _ in weekly] == ["hour", "day", "week"]
    assert weekly[1][1] == bucket_start("week", NOW - 90 * DAY) + 7 * DAY
    # Within the hour tier's reach: the hour tier alone.
    assert plan_tiers(ALL_TIERS, DEFAULT_SINCE, NOW - 20 * DAY, before) == [("hour", NOW - 20 * DAY, before)]
    # Nothing trimmed yet: the finest tier for all of it.
    assert plan_tiers(ALL_TIERS, {}, None, before) == [("hour", -(2**63), before)]


def test_read_rollups_fits_time_buckets_and_refuses_what_rollups_cannot_answer(tmp_path: Path) -> None:
    rows = [span(n, NOW - n * HOUR, duration=(n % 50 + 1) * 1_000_000) for n in range(24 * 20)]
    rows += [span(10_000 + n, NOW - n * HOUR, name="Api.put", service="other") for n in range(24 * 20)]
    connection = store(tmp_path / "s.sqlite3", rows)
    start = bucket_start("day", NOW - 14 * DAY)
    scope = Scope(start=start, end=NOW + HOUR, function="Api.get")
    # Per day: 24 calls a day (the last day's fewer): whole days from the day tier, the hours of
    # the last one from the hour tier.
    daily, origins = read_rollups(connection, scope, Buckets(start, DAY), before=NOW + HOUR)
    assert origins == ["day", "hour"]
    assert [group.key for group in daily] == list(range(15))
    assert [group.kept for group in daily[:-1]] == [24] * 14
    assert sum(group.kept for group in daily) == sum(1 for row in rows if row[5] == "Api.get" and row[0] >= start)
    # Weeks from a Monday: the week tier answers when nothing finer is kept.
    monday = bucket_start("week", NOW - 14 * DAY)
    with connection:  # as the batches of the next week would have
        fold_rollups(connection, bucket_start("week", NOW) + 7 * DAY)
    connection.execute("DELETE FROM otel_traces_rollups WHERE Tier IN ('hour', 'day')")
    for tier in ("hour", "day"):  # as retention would have noted
        record_complete_since(connection, tier, NOW + HOUR)
    weekly, origins = read_rollups(connection, Scope(start=monday), Buckets(monday, 7 * DAY), before=NOW + HOUR)
    assert origins == ["week"]
    newer = sum(1 for row in rows if row[0] >= monday)
    assert [group.kept for group in weekly] == [7 * 24 * 2, 7 * 24 * 2, newer - 4 * 7 * 24]
    # Five-minute buckets: no tier fits.
    assert read_rollups(connection, Scope(start=monday), Buckets(monday, 300 * NS), before=NOW) == ([], [])
    # Filters: service, environment, a set of functions.
    overall, _ = read_rollups(connection, Scope(start=monday, service="other"), None, before=NOW + HOUR)
    assert [(group.key, group.kept) for group in overall] == [(None, newer // 2)]
    assert read_rollups(connection, Scope(start=monday, environment="dev"), "function", before=NOW + HOUR) == ([], [])
    chosen, _ = read_rollups(connection, Scope(start=monday, functions=("Api.put",)), "function", before=NOW + HOUR)
    assert [group.key for group in chosen] == ["Api.put"]
    for refused in (Scope(session="s1"), Scope(errors_only=True)):
        with pytest.raises(ValueError, match="raw rows"):
            read_rollups(connection, refused, None, before=NOW)
