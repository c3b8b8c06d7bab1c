"""Both engines answer every `Reader` question identically over the same known dataset: the
embedded SQLite store (`SQLiteReader`) and ClickHouse as the Collector writes it (`ClickHouseReader`
on chDB). Floats agree to 1e-9 (sums in another order); what differs by design is left out and
said so: a call's cursor (SQLite's rowid, ClickHouse's Timestamp), and attribute values, which
ClickHouse's maps hold as text."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from chdb import session as chdb_session

from sdk_telemetry.store.clickhouse import ClickHouseStore
from sdk_telemetry.store.clickhouse.reader import ClickHouseReader
from sdk_telemetry.store.reader import Buckets, PathSummary, Reader, Scope
from sdk_telemetry.store.sqlite_reader import SQLiteReader
from tests.helpers.engines import DAY, NS, START, assert_same, calls_of, dataset, load_clickhouse, load_sqlite, plain

DATA = dataset()
CALLS = calls_of(DATA)
MIDDLE = START + 40 * DAY
SCOPES = {
    "all": Scope(),
    "range": Scope(start=MIDDLE, end=MIDDLE + 30 * DAY),
    "service": Scope(service="svc-api"),
    "environment": Scope(environment="staging"),
    "function": Scope(function="Api.checkout"),
    "functions": Scope(functions=("Api.get", "Api.login")),
    "session": Scope(session="session-07"),
    "errors": Scope(errors_only=True),
    "error type": Scope(error_type="ValueError"),
    "untyped errors": Scope(error_type="Error"),
    "narrow": Scope(start=MIDDLE, end=MIDDLE + 3 * DAY, environment="production"),
}
ACTORS = ("session", "user", "service", "host.name")
DAILY, WEEKLY, HOURLY = Buckets(0, DAY), Buckets(4 * DAY, 7 * DAY), Buckets(START, 3600 * NS)


#: ClickHouse read from the attribute maps, and with the analysis columns (`rollups --create`).
@pytest.fixture(scope="module", params=["maps", "analysis columns"])
def engines(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Reader]]:
    base: Path = tmp_path_factory.mktemp("engines")
    connection = load_sqlite(base / "store.db", DATA)
    session = chdb_session.Session(str(base / "chdb"))
    database = "engines" if request.param == "maps" else "engines_columns"
    session.query(f"CREATE DATABASE IF NOT EXISTS {database} ENGINE = Atomic")
    session.query(f"USE {database}")
    store = ClickHouseStore.from_chdb(session)
    load_clickhouse(store, DATA, analysis_columns=request.param != "maps")
    yield {"sqlite": SQLiteReader(connection, base / "store.db"), "clickhouse": ClickHouseReader(store.run, "chdb")}
    session.close()
    connection.close()


def compare(engines: dict[str, Reader], question: Callable[[Reader], Any]) -> Any:
    """Ask both engines; assert identical answers; return SQLite's (for a check that it is not empty)."""
    answers = {name: plain(question(reader)) for name, reader in engines.items()}
    assert_same(answers["sqlite"], answers["clickhouse"])
    return answers["sqlite"]


def without_cursor(rows: Any, propagated: bool = True) -> list[dict[str, Any]]:
    """Call rows without their cursor (and, without `propagated`, that flag: SQLite reads it only
    with the events; ClickHouse always)."""
    left_out = {"cursor"} if propagated else {"cursor", "propagated"}
    return [{k: v for k, v in row.items() if k not in left_out} for row in plain(rows)]


def as_text(attributes: dict[str, Any]) -> dict[str, str]:
    """Attribute values as the Collector's maps hold them."""
    return {key: value if isinstance(value, str) else orjson.dumps(value).decode() for key, value in attributes.items()}


def test_what_is_stored(engines: dict[str, Reader]) -> None:
    for question in (
        lambda r: r.has_events(),
        lambda r: r.recorded_functions(),
        lambda r: r.recorded_events(),
        lambda r: r.dimensions(),
        lambda r: r.stored_spans(),
        lambda r: r.stored_spans(calls_only=True),
    ):
        assert compare(engines, question)


@pytest.mark.parametrize("name", SCOPES)
def test_edges(engines: dict[str, Reader], name: str) -> None:
    assert compare(engines, lambda r: r.edge(SCOPES[name]))
    assert compare(engines, lambda r: r.edge(SCOPES[name], last=True))


@pytest.mark.parametrize("group", [None, "function", DAILY, WEEKLY, HOURLY], ids=["all", "function", "d", "w", "h"])
@pytest.mark.parametrize("name", SCOPES)
def test_aggregates(engines: dict[str, Reader], name: str, group: Any) -> None:
    assert compare(engines, lambda r: r.aggregate(SCOPES[name], group))["rows"]


@pytest.mark.parametrize("name", SCOPES)
def test_error_groups(engines: dict[str, Reader], name: str) -> None:
    compare(engines, lambda r: r.error_groups(SCOPES[name], 6))


@pytest.mark.parametrize("limit", [0, -1, 1000])
def test_rows_at_any_limit(engines: dict[str, Reader], limit: int) -> None:
    """A negative limit allows no rows on either engine (SQLite alone would read it as no limit)."""
    found = [
        compare(engines, lambda r: r.error_groups(SCOPES["all"], limit)),
        compare(engines, lambda r: r.sessions(SCOPES["all"], limit)),
        compare(engines, lambda r: without_cursor(r.calls(SCOPES["all"], "newest", limit=limit), propagated=False)),
        compare(engines, lambda r: list(r.events(SCOPES["all"], limit))),
    ]
    assert [len(rows) > 1 for rows in found] == [limit > 0] * 4


@pytest.mark.parametrize("by", ACTORS)
@pytest.mark.parametrize("name", SCOPES)
def test_active_actors(engines: dict[str, Reader], name: str, by: str) -> None:
    compare(engines, lambda r: r.active_actors(SCOPES[name], by))


@pytest.mark.parametrize("by", ACTORS)
@pytest.mark.parametrize(
    ("steps", "window"),
    [
        (["Api.login", "Api.search"], 3600 * NS),
        (["Api.login", "page_view", "Api.checkout"], 3600 * NS),
        (["Api.login", "page_view", "Api.checkout"], 120 * NS),
        (["page_view", "signup", "Api.logout", "Api.get"], DAY),
    ],
)
@pytest.mark.parametrize("name", ["all", "range", "service", "environment", "session"])
def test_funnels(engines: dict[str, Reader], name: str, steps: list[str], window: int, by: str) -> None:
    compare(engines, lambda r: r.funnel(SCOPES[name], steps, window, by))


@pytest.mark.parametrize("top_level", [True, False])
@pytest.mark.parametrize("by", ACTORS)
@pytest.mark.parametrize("name", ["all", "range", "service", "functions", "session"])
def test_paths(engines: dict[str, Reader], name: str, by: str, top_level: bool) -> None:
    whole = compare(engines, lambda r: r.paths(SCOPES[name], by, top_level))
    cut = compare(engines, lambda r: r.paths(SCOPES[name], by, top_level, max_steps=2))
    expected: dict[tuple[str, ...], int] = {}
    for path, count in whole:
        expected[tuple(path[:2])] = expected.get(tuple(path[:2]), 0) + count
    assert cut == [[list(path), count] for path, count in sorted(expected.items())]


@pytest.mark.parametrize("top_level", [True, False])
@pytest.mark.parametrize("by", ACTORS)
@pytest.mark.parametrize("name", ["all", "range", "service", "session"])
def test_path_summaries(engines: dict[str, Reader], name: str, by: str, top_level: bool) -> None:
    summary = compare(engines, lambda r: r.path_summary(SCOPES[name], by, top_level, 3, 4))
    # What the whole paths give, counted here.
    whole = engines["sqlite"].paths(SCOPES[name], by, top_level)
    assert summary == plain(PathSummary.of([(tuple(p), n) for p, n in whole], 3, 4))
    assert summary["actors"] == sum(n for _, n in whole) > 0


@pytest.mark.parametrize("period", [DAILY, WEEKLY], ids=["daily", "weekly"])
@pytest.mark.parametrize("by", ACTORS)
@pytest.mark.parametrize("name", ["all", "range", "service", "errors"])
def test_cohorts_and_usage(engines: dict[str, Reader], name: str, by: str, period: Buckets) -> None:
    compare(engines, lambda r: r.cohorts(SCOPES[name], by, period, 6))
    compare(engines, lambda r: r.usage(SCOPES[name], by, period))


@pytest.mark.parametrize("name", SCOPES)
def test_calls(engines: dict[str, Reader], name: str) -> None:
    scope = SCOPES[name]
    for order in ("newest", "oldest"):
        compare(engines, lambda r: without_cursor(r.calls(scope, order, limit=25, with_events=True)))  # noqa: B023
        compare(engines, lambda r: without_cursor(r.calls(scope, order), propagated=False))  # noqa: B023
    compare(engines, lambda r: without_cursor(r.calls(scope, "stored", limit=9, with_events=True)))


def test_calls_after_each_engines_own_cursor(engines: dict[str, Reader]) -> None:
    def after_fifth(reader: Reader) -> list[dict[str, Any]]:
        fifth = list(reader.calls(Scope(), "stored", limit=len(CALLS)))[4]
        return without_cursor(reader.calls(Scope(), "stored", after=fifth.cursor, limit=20, with_events=True))

    assert len(compare(engines, after_fifth)) == 20
    for reader in engines.values():
        last = next(iter(reader.calls(Scope(), "stored", limit=1)))
        assert list(reader.calls(Scope(), "stored", after=last.cursor)) == []


def test_traces(engines: dict[str, Reader]) -> None:
    compare(engines, lambda r: r.trace_ids("0000000", limit=5))
    compare(engines, lambda r: r.trace_ids(CALLS[10].trace_id[:20]))
    for call in CALLS[::9]:
        spans = {name: plain(reader.trace_spans(call.trace_id)) for name, reader in engines.items()}
        for span in spans["sqlite"]:
            span["attributes"] = as_text(span["attributes"])
            span["resource"] = as_text(span["resource"])
            for event in span["events"]:
                event["Attributes"] = as_text(event["Attributes"])
        assert spans["sqlite"]
        assert_same(spans["sqlite"], spans["clickhouse"])


@pytest.mark.parametrize("name", ["all", "range", "service", "errors", "session"])
def test_sessions(engines: dict[str, Reader], name: str) -> None:
    assert compare(engines, lambda r: r.sessions(SCOPES[name], 12))


def test_events(engines: dict[str, Reader]) -> None:
    sessions = [*sorted({call.session for call in CALLS})[:12], "nobody"]
    assert compare(engines, lambda r: r.event_counts(sessions))
    for name in ("all", "range", "service", "environment", "session"):
        compare(engines, lambda r: r.events(SCOPES[name]))  # noqa: B023
        compare(engines, lambda r: r.events(SCOPES[name], limit=7))  # noqa: B023
