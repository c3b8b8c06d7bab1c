"""Every analysis, the dashboard's overview, the MCP tools' figures and the monitors' summary give
the same answer on both engines: the embedded SQLite store and ClickHouse (chDB, the real
engine) holding the same known dataset as the Collector's ClickHouse exporter writes it."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from chdb import session as chdb_session

from sdk_telemetry.analytics import (
    NS,
    Source,
    TimeRange,
    adoption,
    common_paths,
    error_occurrences,
    export,
    functions,
    funnel,
    journeys,
    performance,
    recent_calls,
    retention,
    session_timeline,
    sessions,
    summary,
    tail,
    top_errors,
    trace,
)
from sdk_telemetry.dashboard._data import overview
from sdk_telemetry.store import Buckets, ClickHouseReader, ClickHouseStore, Scope, SQLiteReader
from tests.helpers.engines import DAY, END, START, Dataset, assert_same, dataset, load_clickhouse, load_sqlite, plain

DATA: Dataset = dataset()
WHOLE = TimeRange(START, END)
LAST_WEEK = TimeRange(END - 7 * DAY, END)
#: Ranges that cut the data: a month inside it, and an open start.
RANGES = [TimeRange(START + 40 * DAY, START + 70 * DAY), TimeRange(None, START + 50 * DAY)]


#: ClickHouse read from the attribute maps, and with the analysis columns (`rollups --create`).
@pytest.fixture(scope="module", params=["maps", "analysis columns"])
def engines(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Source]]:
    connection = load_sqlite(tmp_path_factory.mktemp("sqlite") / "telemetry.sqlite3", DATA)
    session = chdb_session.Session(str(tmp_path_factory.mktemp("chdb-analytics")))
    database = "analytics" if request.param == "maps" else "analytics_columns"
    session.query(f"CREATE DATABASE IF NOT EXISTS {database} ENGINE = Atomic")
    session.query(f"USE {database}")
    store = ClickHouseStore.from_chdb(session)
    load_clickhouse(store, DATA, analysis_columns=request.param != "maps")
    yield {
        "sqlite": Source(SQLiteReader(connection, Path("telemetry.sqlite3"))),
        "clickhouse": Source(ClickHouseReader(store.run, "chdb")),
    }
    session.close()
    connection.close()


#: Attribute maps: ClickHouse's Map(String, String) holds every value as text.
MAPS = {"attributes", "resource"}


def as_text(value: Any, key: str = "") -> Any:
    """`value` with the values of its attribute maps as ClickHouse holds them (text)."""
    if isinstance(value, dict):
        if key in MAPS:
            return {k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in value.items()}
        return {k: as_text(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [as_text(item, key) for item in value]
    return value


def same(left: Any, right: Any) -> None:
    """The same plain answers, attribute maps as text, floats to 1e-9 relative."""
    assert_same(as_text(plain(left)), as_text(plain(right)))


def both(engines: dict[str, Source], compute: Any) -> Any:
    """`compute(source)` on both engines, asserted the same; the SQLite answer."""
    answers = {name: compute(source) for name, source in engines.items()}
    answered = {name: answer.as_dict() if hasattr(answer, "as_dict") else answer for name, answer in answers.items()}
    same(answered["sqlite"], answered["clickhouse"])
    return answered["sqlite"]


def test_the_dataset_is_the_same_in_both(engines: dict[str, Source]) -> None:
    counts = {name: source.reader.stored_spans() for name, source in engines.items()}
    assert counts["sqlite"] == counts["clickhouse"] == len(DATA.spans)
    assert engines["sqlite"].recorded_functions() == engines["clickhouse"].recorded_functions()
    assert engines["sqlite"].recorded_events() == engines["clickhouse"].recorded_events() != []
    same(engines["sqlite"].dimensions(), engines["clickhouse"].dimensions())


@pytest.mark.parametrize("step", [None, 6 * 3600, 86400])
@pytest.mark.parametrize("function", [None, "Api.search"])
def test_performance_over_time(engines: dict[str, Source], function: str | None, step: int | None) -> None:
    answer = both(engines, lambda s: performance(s, function, WHOLE, step))
    assert answer["summary"]["stored_calls"] > 0
    assert answer["summary"]["read_from"] == ["raw"]
    assert sum(bucket["stored_calls"] for bucket in answer["buckets"]) == answer["summary"]["stored_calls"]


@pytest.mark.parametrize("time_range", [WHOLE, LAST_WEEK, TimeRange(), *RANGES])
def test_functions_summary_and_errors(engines: dict[str, Source], time_range: TimeRange) -> None:
    table = both(engines, lambda s: functions(s, time_range))
    both(engines, lambda s: summary(s, None, time_range))
    both(engines, lambda s: summary(s, "Api.get", time_range, "svc-web"))
    errors = both(engines, lambda s: top_errors(s, time_range))
    if time_range != LAST_WEEK:
        assert len(table) == len(engines["sqlite"].recorded_functions()) >= 5
        assert errors and any(group["type"] == "Error" for group in errors)


@pytest.mark.parametrize("service, environment", [("svc-web", None), (None, "staging"), ("svc-api", "production")])
def test_filtered_by_service_and_environment(engines: dict[str, Source], service: Any, environment: Any) -> None:
    narrowed = {name: source.filtered(service, environment) for name, source in engines.items()}
    both(narrowed, lambda s: functions(s, WHOLE))
    both(narrowed, lambda s: funnel(s, ["Api.login", "Api.search"], 3600, "session", WHOLE))
    both(narrowed, lambda s: sessions(s, WHOLE, limit=100))


@pytest.mark.parametrize("by", ["session", "user", "host.name"])
def test_funnels_journeys_retention_adoption(engines: dict[str, Source], by: str) -> None:
    flow = both(engines, lambda s: funnel(s, ["Api.login", "page_view", "Api.checkout"], 1800, by, WHOLE))
    assert flow["entered"] > 0
    both(engines, lambda s: funnel(s, ["Api.login", "Api.search", "Api.get"], 600, by, WHOLE))
    paths = both(engines, lambda s: journeys(s, by, WHOLE, max_steps=4, limit=20))
    assert paths["sessions"] > 0
    assert both(engines, lambda s: common_paths(s, by, WHOLE, max_steps=4, limit=20)) == paths["paths"]
    assert (
        both(engines, lambda s: common_paths(s, by, LAST_WEEK, 2, 5))
        == journeys(engines["sqlite"], by, LAST_WEEK, 2, 5).paths
    )
    both(engines, lambda s: journeys(s, by, WHOLE, top_level=False))
    both(engines, lambda s: retention(s, by, "week", 6, WHOLE))
    both(engines, lambda s: retention(s, by, "day", 8, LAST_WEEK, now=END / NS))
    both(engines, lambda s: adoption(s, by, "week", WHOLE))
    for part in RANGES:
        both(engines, lambda s, r=part: funnel(s, ["Api.login", "Api.search", "Api.get"], 600, by, r))
        both(engines, lambda s, r=part: journeys(s, by, r))
        both(engines, lambda s, r=part: retention(s, by, "week", 4, r))
        both(engines, lambda s, r=part: adoption(s, by, "day", r))


def test_drill_down(engines: dict[str, Source]) -> None:
    calls = both(engines, lambda s: recent_calls(s, None, WHOLE, limit=30))
    both(engines, lambda s: recent_calls(s, "Api.checkout", WHOLE, limit=10, errors_only=True))
    both(engines, lambda s: recent_calls(s, None, WHOLE, limit=10, session="session-03"))
    waterfall = both(engines, lambda s: trace(s, calls[0]["trace_id"]))
    assert waterfall["spans"]
    both(engines, lambda s: trace(s, calls[3]["trace_id"][:28]))
    groups = top_errors(engines["sqlite"], WHOLE)
    for group in groups[:3]:
        found = both(engines, lambda s, g=group: error_occurrences(s, g["type"], g["function"], WHOLE, 5))
        assert found and all(item["error_type"] == group["type"] for item in found)
    listed = both(engines, lambda s: sessions(s, WHOLE, limit=50))
    assert listed and sum(item["events"] for item in listed) > 0
    timeline = both(engines, lambda s: session_timeline(s, listed[0]["session_id"]))
    assert {item["kind"] for item in timeline["items"]} == {"call", "event"}


def test_tail_gives_the_last_calls(engines: dict[str, Source]) -> None:
    # The cursor differs by engine (a rowid, a timestamp): the calls are the same.
    answers = {name: tail(source, None, 20)["calls"] for name, source in engines.items()}
    by_span = {name: sorted(calls, key=lambda call: call["span_id"]) for name, calls in answers.items()}
    same(by_span["sqlite"], by_span["clickhouse"])


@pytest.mark.parametrize("kind", ["calls", "events", "aggregates"])
def test_exports(engines: dict[str, Source], kind: str) -> None:
    texts = {}
    for name, source in engines.items():
        out = io.StringIO()
        rows = export(source, out, kind, "csv", WHOLE, None, 86400 * 7 if kind == "aggregates" else None)
        texts[name] = (rows, out.getvalue())
    assert texts["sqlite"][0] == texts["clickhouse"][0] > 0
    assert texts["sqlite"][1] == texts["clickhouse"][1]


def test_the_dashboard_overview(engines: dict[str, Source]) -> None:
    pages = {name: overview(source, "all", now=END / NS) for name, source in engines.items()}
    for page in pages.values():
        page.pop("generated_at")
        page.pop("store")
    assert pages["sqlite"].pop("engine") == "sqlite"
    assert pages["clickhouse"].pop("engine") == "clickhouse"
    same(pages["sqlite"], pages["clickhouse"])
    assert pages["sqlite"]["funnel"] is not None and pages["sqlite"]["series"]


def test_buckets_before_their_origin_round_down_alike(engines: dict[str, Source]) -> None:
    # An origin after the data: every index is negative, and rounds toward minus infinity on both.
    grid = Buckets(END + 3600 * NS // 2, DAY)
    answers = {name: source.reader.aggregate(Scope(START, END), grid) for name, source in engines.items()}
    same(answers["sqlite"].rows, answers["clickhouse"].rows)
    keys = [row.key for row in answers["sqlite"].rows]
    first, last = min(row[0] for row in DATA.calls), max(row[0] for row in DATA.calls)
    assert keys[0] == (first - grid.origin) // DAY < keys[-1] == (last - grid.origin) // DAY < 0
    cohorts = {name: source.reader.cohorts(Scope(START, END), "user", grid, 4) for name, source in engines.items()}
    assert cohorts["sqlite"] == cohorts["clickhouse"] and min(cohorts["sqlite"]) < 0


@pytest.mark.parametrize("text", ["Api.se\\arch", "Api.\\x73earch", "a\tb", "a\nb", "back\\"])
def test_names_with_escapes_are_read_literally_on_both(engines: dict[str, Source], text: str) -> None:
    """A name holding a backslash, tab or newline is that text on both engines: never an error, never
    a different name after the engine unescapes it (`\\x73` is not `s`)."""
    answers = {
        name: [call["function"] for call in recent_calls(source, text, WHOLE, limit=5)]
        for name, source in engines.items()
    }
    assert answers == {"sqlite": [], "clickhouse": []}
    narrowed = {name: source.filtered(text, None) for name, source in engines.items()}
    assert both(narrowed, lambda s: functions(s, WHOLE)) == []
