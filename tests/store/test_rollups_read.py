"""Reading a range older than the raw rows kept: rollups where raw rows are gone, raw rows where
they are complete, merged per group; the figures match exact ones from the full dataset (counts
exactly, percentiles within 1 %)."""

from __future__ import annotations

import math
import random
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from sdk_telemetry.store.reader import Aggregate, Buckets, Scope
from sdk_telemetry.store.retention import apply_retention
from sdk_telemetry.store.rollups import bucket_start, raw_complete_since, read_rollups
from sdk_telemetry.store.sketch import nearest_rank
from sdk_telemetry.store.sqlite_reader import SQLiteReader
from tests.store.test_rollups import DAY, HOUR, NOW, span, store

FUNCTIONS = {
    "Client.search": (math.log(4e6), 0.6),
    "Client.upload": (math.log(9e7), 1.1),
    "Tools.run": (math.log(2e5), 2.0),
}
# Trace rows: Timestamp 0, SpanName 5, ServiceName 7, Duration 12, StatusCode 13, SampleRate 17, Environment 18.
Call = tuple[int, str, int, str, float]  # timestamp, function, duration, status, sample rate


def dataset() -> list[tuple[Any, ...]]:
    """About 45,000 calls over the 100 days before NOW, in time order, two services and environments."""
    rng = random.Random(16)
    rows = []
    moment = NOW - 100 * DAY
    n = 0
    while moment < NOW:
        name = rng.choice(list(FUNCTIONS))
        mu, sigma = FUNCTIONS[name]
        rows.append(
            span(
                n,
                moment,
                name=name,
                duration=int(rng.lognormvariate(mu, sigma)),
                rate=rng.choice((1.0, 1.0, 0.5, 0.25)),
                status="Error" if rng.random() < 0.05 else "Ok",
                service=rng.choice(("api", "worker")),
                env=rng.choice(("prod", "staging")),
            )
        )
        moment += rng.randrange(1, 380) * 1_000_000_000
        n += 1
    return rows


def calls_of(rows: Iterable[tuple[Any, ...]]) -> list[Call]:
    return [(row[0], row[5], row[12], row[13], row[17]) for row in rows]


def exact(calls: Iterable[Call], key: Callable[[Call], Any]) -> dict[Any, Aggregate]:
    """Aggregates by nearest rank over stored durations, as raw rows give them."""
    groups: dict[Any, list[Call]] = {}
    for call in calls:
        groups.setdefault(key(call), []).append(call)
    answer = {}
    for group_key, members in groups.items():
        durations = sorted(call[2] for call in members)
        ranked = [durations[nearest_rank(len(durations), p) - 1] for p in (50, 95, 99)]
        answer[group_key] = Aggregate(
            key=group_key,
            kept=len(members),
            calls=sum(1 / call[4] for call in members),
            errors=sum(1 / call[4] for call in members if call[3] == "Error"),
            duration_sum=float(sum(durations)),
            duration_min=durations[0],
            duration_max=durations[-1],
            p50=ranked[0],
            p95=ranked[1],
            p99=ranked[2],
        )
    return answer


def read_combined(connection: sqlite3.Connection, scope: Scope, group: Any) -> tuple[list[Aggregate], list[str]]:
    """What the store's reader answers: rollups before the raw rows' complete moment, raw rows from it on."""
    answer = SQLiteReader(connection).aggregate(scope, group)
    return answer.rows, list(answer.origins)


def keyed(scope: Scope, group: Any) -> Callable[[Call], Any]:
    if group is None:
        return lambda call: None
    if group == "function":
        return lambda call: call[1]
    return lambda call: group.index(call[0])


@pytest.fixture(scope="module")
def trimmed(tmp_path_factory: pytest.TempPathFactory) -> tuple[sqlite3.Connection, list[Call]]:
    """The dataset stored, then raw rows older than 7 days and hour rollups older than 30 deleted."""
    rows = dataset()
    connection = store(tmp_path_factory.mktemp("rollups") / "trimmed.sqlite3", rows, batch=1000)
    deleted = apply_retention(connection, 7, now_ns=NOW)
    assert deleted["spans"] > 0.9 * len(rows) and deleted["rollups"] > 0
    return connection, calls_of(rows)


def assert_matches(got: Aggregate, want: Aggregate) -> None:
    assert (got.key, got.kept, got.calls, got.errors) == (want.key, want.kept, want.calls, want.errors)
    assert (got.duration_sum, got.duration_min, got.duration_max) == (
        want.duration_sum,
        want.duration_min,
        want.duration_max,
    )
    for name in ("p50", "p95", "p99"):
        assert abs(getattr(got, name) - getattr(want, name)) <= 0.01 * getattr(want, name), (got.key, name)


def test_a_90_day_daily_series_matches_the_full_dataset(trimmed: tuple[sqlite3.Connection, list[Call]]) -> None:
    connection, calls = trimmed
    start = bucket_start("day", NOW - 90 * DAY) + DAY  # the first whole day the day tier holds
    scope = Scope(start=start, end=start + 90 * DAY)
    series = Buckets(start, DAY)
    got, origins = read_combined(connection, scope, series)
    assert origins[:3] == ["day", "hour", "raw"]  # the rows; then what the overall figures read (weeks, months)
    want = exact([call for call in calls if start <= call[0] < NOW], keyed(scope, series))
    assert [aggregate.key for aggregate in got] == sorted(want) == list(range(90))
    for aggregate in got:
        assert_matches(aggregate, want[aggregate.key])


def test_p95_per_function_over_60_days_matches_the_full_dataset(trimmed: tuple[sqlite3.Connection, list[Call]]) -> None:
    connection, calls = trimmed
    start = bucket_start("day", NOW - 60 * DAY)
    scope = Scope(start=start, end=NOW)
    got, origins = read_combined(connection, scope, "function")
    assert origins == ["day", "week", "hour", "raw"]  # whole weeks inside the days, hours at the end
    want = exact([call for call in calls if start <= call[0] < NOW], keyed(scope, "function"))
    assert [aggregate.key for aggregate in got] == sorted(FUNCTIONS)
    for aggregate in got:
        assert_matches(aggregate, want[aggregate.key])


def test_one_function_overall_ever_reads_weeks_days_and_hours(
    trimmed: tuple[sqlite3.Connection, list[Call]],
) -> None:
    connection, calls = trimmed
    scope = Scope(start=None, end=NOW, function="Tools.run")
    got, origins = read_combined(connection, scope, None)
    # The week tier was never trimmed (the data is 100 days old at most): it answers for what is
    # older than the first Monday the day tier holds.
    assert origins == ["week", "day", "month", "hour", "raw"]  # the whole October from the month tier
    want = exact([call for call in calls if call[1] == "Tools.run"], keyed(scope, None))
    assert len(got) == 1
    assert_matches(got[0], want[None])


def test_within_the_raw_rows_rollups_add_nothing(trimmed: tuple[sqlite3.Connection, list[Call]]) -> None:
    connection, _ = trimmed
    before = raw_complete_since(connection)
    assert before is not None and before == bucket_start("hour", NOW - 7 * DAY) + HOUR
    assert read_rollups(connection, Scope(start=before, end=NOW), "function", before) == ([], [])
