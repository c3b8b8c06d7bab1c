"""Long ranges on ClickHouse (chDB): a range of two days or more reads the whole buckets of the
rollups also where raw rows exist (the coarsest fitting tier in the middle, finer ones towards the
ends, raw rows for what is left), with the same counts as the raw rows and percentiles within the
sketch's 1 %; shorter ranges, sessions and errors read raw rows, exactly."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from chdb import session as chdb_session
from hypothesis import given
from hypothesis import strategies as st

from sdk_telemetry.store.clickhouse import ClickHouseStore, columns, rollups
from sdk_telemetry.store.clickhouse.reader import LONG_RANGE, ClickHouseReader, _staircase
from sdk_telemetry.store.reader import Buckets, Scope
from tests.helpers.engines import (
    DAY,
    END,
    NS,
    START,
    Recorded,
    assert_close,
    assert_rows_equal,
    calls_of,
    dataset,
    error_groups,
    grouped,
    in_scope,
    load_clickhouse,
)

DATA = dataset()
CALLS = calls_of(DATA)
HOUR = 3600 * NS
MONDAY = 4 * DAY
HOURS = rollups.TIERS[0]
_API = sorted(c.timestamp for c in CALLS if c.service == "svc-api" and HOURS.floor(c.timestamp) != c.timestamp)
#: Cut mid-hour at both ends, on calls of svc-api: the partial first and last hours are read from raw rows.
CUT_START = next(at for at in _API if at >= START + 3 * DAY)
CUT_END = next(at for at in reversed(_API) if at < END - 5 * DAY) + 1


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseReader]:
    session = chdb_session.Session(str(tmp_path_factory.mktemp("chdb-long-ranges")))
    session.query("CREATE DATABASE IF NOT EXISTS long_ranges ENGINE = Atomic")
    session.query("USE long_ranges")
    store = ClickHouseStore.from_chdb(session)
    load_clickhouse(store, DATA)
    reader = ClickHouseReader(store.run, "chdb")
    reader.create_rollups(dict.fromkeys(("hour", "day", "week", "month"), 1000))
    yield reader
    session.close()


def exact(reader: ClickHouseReader) -> ClickHouseReader:
    return ClickHouseReader(reader.run, "chdb", long_range=None)


@pytest.mark.parametrize(
    ("group", "tiers"),
    [
        (None, ["hour", "day", "week", "month"]),
        ("function", ["hour", "day", "week", "month"]),
        (Buckets(0, DAY), ["hour", "day"]),
        (Buckets(MONDAY, 7 * DAY), ["hour", "day", "week"]),
        (Buckets(START, 3 * HOUR), ["hour"]),
    ],
)
def test_a_long_range_reads_whole_buckets_from_rollups_and_its_ends_raw(
    reader: ClickHouseReader, group: Any, tiers: list[str]
) -> None:
    scope = Scope(start=CUT_START, end=CUT_END, service="svc-api")
    result = reader.aggregate(scope, group)
    # In the order they first answer: raw rows for the partial first hour, then hours up to the
    # next bucket of a coarser tier; the coarsest fitting tier answers the middle.
    assert result.origins[:2] == ["raw", "hour"] and tiers[-1] in result.origins
    assert set(result.origins) <= {"raw", *tiers}
    calls = [c for c in CALLS if c.service == "svc-api" and CUT_START <= c.timestamp < CUT_END]
    if group is None:
        (row,) = result.rows
        assert_close(row, calls)
        return
    key = (lambda c: c.name) if group == "function" else (lambda c: group.index(c.timestamp))
    expected = grouped(calls, key)
    assert [row.key for row in result.rows] == sorted(expected)
    for row in result.rows:
        assert_close(row, expected[row.key])
    if isinstance(group, Buckets):
        assert result.total is not None
        assert_close(result.total, calls)


def test_the_exact_reader_reads_the_same_range_from_raw_rows(reader: ClickHouseReader) -> None:
    scope = Scope(start=CUT_START, end=CUT_END)
    rolled, raw = reader.aggregate(scope, "function"), exact(reader).aggregate(scope, "function")
    assert raw.origins == ["raw"]
    assert [r.key for r in rolled.rows] == [r.key for r in raw.rows]
    for got, want in zip(rolled.rows, raw.rows, strict=True):
        assert (got.kept, got.calls, got.errors, got.duration_min, got.duration_max) == (
            want.kept,
            pytest.approx(want.calls),
            pytest.approx(want.errors),
            want.duration_min,
            want.duration_max,
        )
        for name in ("p50", "p95", "p99"):
            assert abs(getattr(got, name) - getattr(want, name)) <= 0.01 * getattr(want, name), name


def test_everything_stored_reads_the_coarsest_tier_and_counts_every_call(reader: ClickHouseReader) -> None:
    result = reader.aggregate(Scope())
    assert "month" in result.origins
    (row,) = result.rows
    assert_close(row, CALLS)


def test_a_short_range_reads_raw_rows_exactly(reader: ClickHouseReader) -> None:
    scope = Scope(start=CUT_START, end=CUT_START + LONG_RANGE - 1)
    result = reader.aggregate(scope, "function")
    assert result.origins == ["raw"]
    assert result == exact(reader).aggregate(scope, "function")


def test_sessions_and_errors_read_raw_rows_over_a_long_range(reader: ClickHouseReader) -> None:
    for scope in (Scope(session="session-01"), Scope(errors_only=True)):
        result = reader.aggregate(scope, "function")
        assert result.origins == ["raw"]
        assert sum(row.kept for row in result.rows) == sum(
            1 for c in CALLS if (c.failed if scope.errors_only else c.session == scope.session)
        )


def test_buckets_no_tier_fits_read_raw_rows(reader: ClickHouseReader) -> None:
    result = reader.aggregate(Scope(start=CUT_START, end=CUT_END), Buckets(0, 7 * 60 * NS))
    assert result.origins == ["raw"]
    assert sum(row.kept for row in result.rows) == sum(1 for c in CALLS if CUT_START <= c.timestamp < CUT_END)


WHOLE_FROM = {"hour": START, "day": START + DAY, "week": START + 7 * DAY, "month": START + 40 * DAY}


@given(
    low=st.one_of(st.none(), st.integers(START - 10 * DAY, END)),
    length=st.one_of(st.none(), st.integers(1, 120 * DAY)),
)
def test_the_staircase_cuts_a_range_into_whole_buckets_and_raw_parts(low: int | None, length: int | None) -> None:
    high = None if length is None else (START if low is None else low) + length
    parts, raw = _staircase(list(reversed(rollups.TIERS)), WHOLE_FROM, low, high)
    for tier, start, end in parts:  # whole buckets of a tier that holds them
        assert start is not None and start >= WHOLE_FROM[tier.name] and tier.floor(start) == start
        assert end is None or tier.floor(end) == end
    pieces = sorted([(start, end) for _, start, end in parts] + raw, key=lambda p: -(2**63) if p[0] is None else p[0])
    assert pieces, "the range is covered"
    assert pieces[0][0] == low and pieces[-1][1] == high  # from the range's start to its end
    for (_, end), (start, _) in itertools.pairwise(pieces):  # without gaps or overlaps
        assert end is not None and end == start
    assert all(start is None or start >= (low or start) for start, _ in raw)


ERROR_SCOPES = {
    "cut at both ends": Scope(start=CUT_START, end=CUT_END),
    "one service": Scope(start=CUT_START, end=CUT_END, service="svc-api"),
    "one environment, open start": Scope(end=CUT_END, environment="staging"),
    "one error type": Scope(start=CUT_START, end=CUT_END, error_type="ValueError"),
    "two functions": Scope(start=CUT_START, end=CUT_END, functions=("Api.get", "Api.checkout")),
    "everything": Scope(),
}


@pytest.mark.parametrize("name", ERROR_SCOPES)
def test_error_groups_over_a_long_range_read_error_rollups_with_raw_figures(
    reader: ClickHouseReader, name: str
) -> None:
    scope = ERROR_SCOPES[name]
    recorded = Recorded(reader.run)
    got = recorded.reader.error_groups(scope, 50)
    assert any("FROM sdk_telemetry_errors_month" in sql for sql in recorded.sql)
    # The same groups, counts, messages and last times as the calls themselves and the raw rows alone.
    assert_rows_equal(got, error_groups([c for c in CALLS if in_scope(c, scope)], 50))
    assert got and got == exact(reader).error_groups(scope, 50)
    assert got[:3] == recorded.reader.error_groups(scope, 3)


def test_error_groups_of_a_short_range_or_a_session_read_raw_rows_only(reader: ClickHouseReader) -> None:
    for scope in (Scope(start=CUT_START, end=CUT_START + LONG_RANGE - 1), Scope(session="session-01")):
        recorded = Recorded(reader.run)
        got = recorded.reader.error_groups(scope, 50)
        assert not any("sdk_telemetry_errors_" in sql for sql in recorded.sql)
        assert_rows_equal(got, error_groups([c for c in CALLS if in_scope(c, scope)], 50))


@pytest.fixture
def other_database(reader: ClickHouseReader) -> Iterator[ClickHouseStore]:
    """A database of its own in the module's engine (chDB runs one per process), the module's again after."""
    reader.run("DROP DATABASE IF EXISTS long_ranges_other", {})
    reader.run("CREATE DATABASE long_ranges_other ENGINE = Atomic", {})
    reader.run("USE long_ranges_other", {})
    try:
        yield ClickHouseStore(reader.run)
    finally:
        reader.run("USE long_ranges", {})
        reader.run("DROP DATABASE IF EXISTS long_ranges_other", {})


def test_error_groups_after_raw_rows_were_trimmed_count_what_raw_rows_hold(other_database: ClickHouseStore) -> None:
    load_clickhouse(other_database, DATA)
    ClickHouseReader(other_database.run, "chdb").create_rollups(dict.fromkeys(("hour", "day", "week", "month"), 1000))
    kept_from = START + 50 * DAY + 7 * HOUR // 3  # mid-hour: the error rollups hold older failures
    other_database.run(
        f"ALTER TABLE otel_traces DELETE WHERE Timestamp < fromUnixTimestamp64Nano({kept_from}) "
        "SETTINGS mutations_sync = 2",
        {},
    )
    for scope in (Scope(), Scope(start=START + 10 * DAY, end=CUT_END), Scope(end=CUT_END, service="svc-web")):
        recorded = Recorded(other_database.run)
        got = recorded.reader.error_groups(scope, 50)
        assert any("FROM sdk_telemetry_errors_" in sql for sql in recorded.sql)
        held = [c for c in CALLS if c.timestamp >= kept_from and in_scope(c, scope)]
        assert got and got == ClickHouseReader(other_database.run, "chdb", long_range=None).error_groups(scope, 50)
        assert_rows_equal(got, error_groups(held, 50))


def test_a_store_of_the_previous_release_gains_error_rollups_and_columns(other_database: ClickHouseStore) -> None:
    load_clickhouse(other_database, DATA)
    reader = ClickHouseReader(other_database.run, "chdb")
    reader.create_rollups(dict.fromkeys(("hour", "day", "week", "month"), 1000))
    for tier in rollups.TIERS:  # as the previous release left it: call rollups only
        other_database.run(f"DROP VIEW {tier.errors_view}", {})
        other_database.run(f"DROP TABLE {tier.errors_table}", {})
    other_database.run(
        "ALTER TABLE otel_traces " + ", ".join(f"DROP COLUMN {name}" for name in columns.DEFINITIONS), {}
    )
    upgraded = ClickHouseReader(other_database.run, "chdb")
    made = upgraded.create_rollups(dict.fromkeys(("hour", "day", "week", "month"), 1000))
    assert made == {**{f"{t.name} errors": len(CALLS) for t in rollups.TIERS}, "analysis columns": len(CALLS)}
    assert columns.present(other_database.run) and rollups.existing(other_database.run, errors=True) == {
        t.name for t in rollups.TIERS
    }
    assert upgraded.create_rollups() == {}
    got = upgraded.error_groups(Scope(), 50)
    assert got and got == ClickHouseReader(other_database.run, "chdb", long_range=None).error_groups(Scope(), 50)
    assert_rows_equal(got, error_groups(CALLS, 50))
