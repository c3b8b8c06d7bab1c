"""ClickHouse rollups on the real engine (chDB): materialized views over `otel_traces` per tier,
the one-time copy of the calls already stored, and `aggregate` reading rollups for the part of a
range older than the raw rows kept (and saying so in `origins`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from chdb import session as chdb_session

from sdk_telemetry.store import trace_row
from sdk_telemetry.store.clickhouse import ClickHouseStore, rollups, trace_rows_as_json_each_row
from sdk_telemetry.store.clickhouse.reader import ClickHouseReader
from sdk_telemetry.store.reader import Buckets, Scope
from sdk_telemetry.store.sketch import Sketch
from tests.helpers.engines import (
    DAY,
    END,
    NS,
    START,
    Call,
    assert_close,
    calls_of,
    dataset,
    grouped,
    load_clickhouse,
)

DATA = dataset()
#: Stored after the rollups exist: they reach the tiers through the views.
LATER = DATA.spans[-60:]
EARLIER = DATA.spans[:-60]
CALLS = calls_of(DATA)
#: Raw rows before this are deleted (retention), after the rollups were filled.
KEPT_FROM = START + 55 * DAY + 5 * 3600 * NS + 123
HOUR = 3600 * NS
MONDAY = 4 * DAY
#: Long enough that no tier's TTL drops the dataset's buckets (the retention test has its own).
LONG_RETENTION = dict.fromkeys(("hour", "day", "week", "month"), 1000)


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseReader]:
    session = chdb_session.Session(str(tmp_path_factory.mktemp("chdb-rollups")))
    session.query("CREATE DATABASE IF NOT EXISTS rollups ENGINE = Atomic")
    session.query("USE rollups")
    store = ClickHouseStore.from_chdb(session)
    load_clickhouse(store, type(DATA)(EARLIER, DATA.events))
    reader = ClickHouseReader(store.run, "chdb")
    copied = reader.create_rollups(LONG_RETENTION)
    earlier_calls = sum(1 for row in EARLIER if row[9] == "sdk_telemetry")
    tiers = ("hour", "day", "week", "month")
    assert copied == {
        **dict.fromkeys(tiers, earlier_calls),
        **{f"{tier} errors": earlier_calls for tier in tiers},
        "analysis columns": earlier_calls,
    }
    store.run(
        "INSERT INTO otel_traces SETTINGS async_insert = 0 FORMAT JSONEachRow\n"
        + trace_rows_as_json_each_row(LATER).decode(),
        {},
    )
    yield reader
    session.close()


def tier_rows(reader: ClickHouseReader, tier: str) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    rows = reader.run(
        f"""SELECT toInt64(toUnixTimestamp(Bucket)) * {NS}, SpanName, ServiceName, Environment, sum(Kept), sum(Calls),
                   sum(Errors), sum(DurationSum), min(DurationMin), max(DurationMax), sumMap(Sketch)
            FROM sdk_telemetry_rollup_{tier} GROUP BY 1, 2, 3, 4""",
        {},
    )
    return {tuple(row[:4]): tuple(row[4:]) for row in rows}


def expected_tier(tier: rollups.Tier) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    groups = grouped(CALLS, lambda c: (tier.floor(c.timestamp), c.name, c.service, c.environment))
    return {key: _figures(members) for key, members in groups.items()}


def _figures(members: list[Call]) -> tuple[Any, ...]:
    durations = [c.duration for c in members]
    return (
        len(members),
        sum(c.weight for c in members),
        sum(c.weight for c in members if c.failed),
        sum(durations),
        min(durations),
        max(durations),
        Sketch.of(durations).counts,
    )


@pytest.mark.parametrize("tier", rollups.TIERS, ids=lambda tier: tier.name)
def test_each_tier_holds_every_call_once_copied_or_through_its_view(
    reader: ClickHouseReader, tier: rollups.Tier
) -> None:
    got = tier_rows(reader, tier.name)
    expected = expected_tier(tier)
    assert set(got) == set(expected)
    for key, answer in expected.items():
        kept, calls, errors, total, low, high, sketch = got[key]
        assert (int(kept), int(total), int(low), int(high)) == (answer[0], answer[3], answer[4], answer[5])
        assert float(calls) == pytest.approx(answer[1], rel=1e-9) and float(errors) == pytest.approx(
            answer[2], rel=1e-9
        )
        # The engine's sketch keys are Python's, bucket for bucket.
        assert {int(k): int(v) for k, v in dict(sketch).items()} == answer[6]


def test_creating_the_rollups_again_copies_nothing(reader: ClickHouseReader) -> None:
    before = tier_rows(reader, "day")
    assert reader.create_rollups(LONG_RETENTION) == {}
    assert tier_rows(reader, "day") == before


def test_a_bad_retention_is_refused_by_name(reader: ClickHouseReader) -> None:
    with pytest.raises(ValueError, match=r"rollup retention.*hour=-1"):
        reader.create_rollups({"hour": -1})
    with pytest.raises(ValueError, match=r"rollup retention.*minute=3"):
        reader.create_rollups({"minute": 3})


def test_rollups_need_the_collectors_table(reader: ClickHouseReader) -> None:
    reader.run("CREATE DATABASE IF NOT EXISTS empty ENGINE = Atomic", {})
    reader.run("USE empty", {})
    try:
        with pytest.raises(ValueError, match="no otel_traces table"):
            reader.create_rollups()
        assert reader.run("SELECT count() FROM system.tables WHERE database = 'empty'", {}) == [[0]]
    finally:
        reader.run("USE rollups", {})


def test_each_tier_keeps_its_buckets_for_its_retention(reader: ClickHouseReader) -> None:
    now = time.time_ns()
    ages = (10, 40, 100, 200, 400)  # days
    spans = [
        trace_row(
            timestamp=now - age * DAY,
            trace_id=f"{age:032x}",
            span_id=f"{age:016x}",
            name="Api.aged",
            duration=1000,
            resource={"service.name": "svc-aged"},
            attributes={},
            scope="sdk_telemetry",
        )
        for age in ages
    ]
    reader.run("CREATE DATABASE IF NOT EXISTS aged ENGINE = Atomic", {})
    reader.run("USE aged", {})
    try:
        store = ClickHouseStore(reader.run)
        store.create_tables()
        store.insert_spans(spans)
        aged = ClickHouseReader(reader.run, "aged")
        aged.create_rollups()  # the default retention: 30, 90, 180 and 365 days
        kept = {}
        for tier in rollups.TIERS:
            reader.run(f"OPTIMIZE TABLE {tier.table} FINAL", {})  # TTLs apply on merges
            ((count,),) = reader.run(f"SELECT sum(Kept) FROM {tier.table}", {})
            kept[tier.name] = int(count)
        assert kept == {"hour": 1, "day": 2, "week": 3, "month": 4}
    finally:
        reader.run("USE rollups", {})


@pytest.fixture(scope="module")
def retained(reader: ClickHouseReader) -> ClickHouseReader:
    """The store after retention deleted the raw rows before `KEPT_FROM` (the rollups keep them),
    read with rollups only where raw rows are gone."""
    reader.run(
        f"ALTER TABLE otel_traces DELETE WHERE Timestamp < fromUnixTimestamp64Nano({KEPT_FROM}) "
        "SETTINGS mutations_sync = 2",
        {},
    )
    assert reader.raw_complete_since() == min(c.timestamp for c in CALLS if c.timestamp >= KEPT_FROM)
    # Rollups only before the raw rows (long ranges reading them also within: test_clickhouse_long_ranges.py).
    return ClickHouseReader(reader.run, "chdb", long_range=None)


def test_a_range_older_than_the_raw_rows_reads_rollups_beyond_them(retained: ClickHouseReader) -> None:
    result = retained.aggregate(Scope())
    assert result.origins == ["hour", "raw"]
    (row,) = result.rows
    assert_close(row, CALLS)
    since = retained.raw_complete_since()
    assert since is not None and retained.aggregate(Scope(start=since)).origins == ["raw"]


@pytest.mark.parametrize(
    ("group", "tier"),
    [
        ("function", "hour"),
        (Buckets(0, DAY), "hour"),
        (Buckets(MONDAY, 7 * DAY), "hour"),
        (Buckets(START, 3 * HOUR), "hour"),
    ],
)
def test_every_group_sums_raw_and_rollups(retained: ClickHouseReader, group: Any, tier: str) -> None:
    scope = Scope(start=START, end=END, service="svc-api")
    result = retained.aggregate(scope, group)
    assert result.origins == [tier, "raw"]
    calls = [c for c in CALLS if c.service == "svc-api"]
    key = (lambda c: c.name) if group == "function" else (lambda c: group.index(c.timestamp))
    expected = grouped(calls, key)
    assert [row.key for row in result.rows] == list(expected)
    for row in result.rows:
        assert_close(row, expected[row.key])


def test_buckets_no_tier_fits_read_raw_rows_only(retained: ClickHouseReader) -> None:
    result = retained.aggregate(Scope(), Buckets(0, 60 * NS * 7))  # 7 minutes: no tier makes those
    assert result.origins == ["raw"]
    assert sum(row.kept for row in result.rows) == sum(1 for c in CALLS if c.timestamp >= KEPT_FROM)


def test_a_range_before_the_raw_rows_reads_rollups_only(retained: ClickHouseReader) -> None:
    end = START + 30 * DAY
    result = retained.aggregate(Scope(start=START, end=end), "function")
    assert result.origins == ["hour"]
    expected = grouped([c for c in CALLS if START <= c.timestamp < end], lambda c: c.name)
    for row in result.rows:
        assert_close(row, expected[row.key])
    assert [row.key for row in result.rows] == list(expected)


def test_rollup_buckets_count_whole_when_their_start_is_in_the_range(retained: ClickHouseReader) -> None:
    start = START + 10 * DAY + HOUR // 2  # mid-hour: that hour is left out, the next ones count whole
    result = retained.aggregate(Scope(start=start, end=START + 30 * DAY))
    first = rollups.TIERS[0].ceil(start)
    (row,) = result.rows
    assert_close(row, [c for c in CALLS if first <= c.timestamp < START + 30 * DAY])


def test_session_and_errors_only_scopes_read_raw_rows_only(retained: ClickHouseReader) -> None:
    for scope in (Scope(session="session-01"), Scope(errors_only=True)):
        result = retained.aggregate(scope, "function")
        assert result.origins == ["raw"]
        assert sum(row.kept for row in result.rows) == sum(
            1
            for c in CALLS
            if c.timestamp >= KEPT_FROM and (c.failed if scope.errors_only else c.session == scope.session)
        )


def test_the_finest_tier_still_holding_the_start_is_read(retained: ClickHouseReader) -> None:
    # As the hour tier's TTL would: its buckets before day 60 (after the raw rows' start) are gone.
    cut = START + 60 * DAY
    retained.run(
        f"ALTER TABLE sdk_telemetry_rollup_hour DELETE WHERE Bucket < fromUnixTimestamp64Nano({cut}) "
        "SETTINGS mutations_sync = 2",
        {},
    )
    result = retained.aggregate(Scope(start=START + 20 * DAY), Buckets(0, DAY))
    assert result.origins == ["day", "raw"]
    expected = grouped([c for c in CALLS if c.timestamp >= START + 20 * DAY], lambda c: c.timestamp // DAY)
    assert [row.key for row in result.rows] == list(expected)
    for row in result.rows:
        assert_close(row, expected[row.key])
    # Buckets of 3 hours: only the hour tier fits, and it holds nothing older than the raw rows.
    assert retained.aggregate(Scope(start=START), Buckets(0, 3 * HOUR)).origins == ["raw"]


def test_dimensions_come_from_the_month_rollup(reader: ClickHouseReader) -> None:
    reader.run(
        "INSERT INTO sdk_telemetry_rollup_month (Bucket, ServiceName, Environment, Kept) "
        "VALUES (toDateTime('2025-06-01 00:00:00', 'UTC'), 'svc-rolled', 'canary', 1)",
        {},
    )
    try:
        assert reader.dimensions() == {
            "services": ["svc-api", "svc-batch", "svc-rolled", "svc-web"],
            "environments": ["canary", "production", "staging"],
        }
    finally:
        reader.run("DELETE FROM sdk_telemetry_rollup_month WHERE ServiceName = 'svc-rolled'", {})


def test_the_tier_covering_most_of_the_range_is_read(retained: ClickHouseReader) -> None:
    start = START + 20 * DAY  # a Monday: week buckets count from it
    assert (start - MONDAY) % (7 * DAY) == 0
    retained.run(
        f"ALTER TABLE sdk_telemetry_rollup_day DELETE WHERE Bucket < fromUnixTimestamp64Nano({start + DAY}) "
        "SETTINGS mutations_sync = 2",
        {},
    )
    result = retained.aggregate(Scope(start=start))
    assert result.origins == ["week", "raw"]  # the day tier lost the range's first day
    (row,) = result.rows
    assert_close(row, [c for c in CALLS if c.timestamp >= start])


def test_a_resent_batch_is_counted_once_in_every_tier(reader: ClickHouseReader) -> None:
    """A writer killed after its insert resends the batch with the same deduplication token: the
    table drops it, and so no view sees it again."""
    reader.run("CREATE DATABASE IF NOT EXISTS resent ENGINE = Atomic", {})
    reader.run("USE resent", {})
    try:
        store = ClickHouseStore(reader.run)
        store.create_tables()
        reader.run("ALTER TABLE otel_traces MODIFY SETTING non_replicated_deduplication_window = 100", {})
        ClickHouseReader(reader.run, "resent").create_rollups(LONG_RETENTION)
        batch = trace_rows_as_json_each_row(DATA.spans[:50]).decode()
        for _ in range(2):
            reader.run(
                "INSERT INTO otel_traces SETTINGS async_insert = 0, insert_deduplication_token = 'batch-1' "
                "FORMAT JSONEachRow\n" + batch,
                {},
            )
        calls = sum(1 for row in DATA.spans[:50] if row[9] == "sdk_telemetry")
        for tier in rollups.TIERS:
            ((kept,),) = reader.run(f"SELECT sum(Kept) FROM {tier.table}", {})
            assert int(kept) == calls, tier.name
    finally:
        reader.run("USE rollups", {})
