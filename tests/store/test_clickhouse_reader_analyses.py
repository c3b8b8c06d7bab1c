"""Every analysis, export and the dashboard's data answer the same over both engines: the same
known dataset in the embedded SQLite store and in ClickHouse (chDB), read through `Source`."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from chdb import session as chdb_session

from sdk_telemetry import analytics
from sdk_telemetry.analytics import Source, TimeRange
from sdk_telemetry.analytics._export import rows, write_csv
from sdk_telemetry.dashboard._data import overview
from sdk_telemetry.store.clickhouse import ClickHouseStore
from sdk_telemetry.store.clickhouse_reader import ClickHouseReader
from sdk_telemetry.store.sqlite_reader import SQLiteReader
from tests.helpers.engines import (
    DAY,
    END,
    NS,
    START,
    assert_same,
    calls_of,
    dataset,
    load_clickhouse,
    load_sqlite,
    plain,
)

DATA = dataset()
CALLS = calls_of(DATA)
NOW = END / NS
RANGES = {
    "all": TimeRange(),
    "month": TimeRange(START + 40 * DAY, START + 70 * DAY),
    "open start": TimeRange(None, START + 50 * DAY),
}


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Source]]:
    base: Path = tmp_path_factory.mktemp("analyses")
    connection = load_sqlite(base / "store.db", DATA)
    session = chdb_session.Session(str(base / "chdb"))
    session.query("CREATE DATABASE IF NOT EXISTS analyses ENGINE = Atomic")
    session.query("USE analyses")
    store = ClickHouseStore.from_chdb(session)
    load_clickhouse(store, DATA)
    yield {
        "sqlite": Source(SQLiteReader(connection, base / "store.db")),
        "clickhouse": Source(ClickHouseReader(store.run, "chdb")),
    }
    session.close()
    connection.close()


def same(sources: dict[str, Source], analysis: Callable[[Source], Any], drop: tuple[str, ...] = ()) -> Any:
    """Run `analysis` on both engines (and on one service of each); assert the same answer."""
    for narrowed in (lambda s: s, lambda s: s.filtered(service="svc-api")):
        answers = {}
        for name, source in sources.items():
            answer = plain(analytics.json_ready(analysis(narrowed(source))))
            if isinstance(answer, dict):
                answer = {key: value for key, value in answer.items() if key not in drop}
            answers[name] = answer
        assert_same(answers["sqlite"], answers["clickhouse"])
    return answers["sqlite"]


@pytest.mark.parametrize("span", RANGES)
def test_performance_functions_and_errors(sources: dict[str, Source], span: str) -> None:
    period = RANGES[span]
    assert same(sources, lambda s: analytics.performance(s, None, period))["buckets"]
    same(sources, lambda s: analytics.performance(s, "Api.get", period, step_seconds=86400))
    assert same(sources, lambda s: analytics.functions(s, period))
    same(sources, lambda s: analytics.top_errors(s, period))


@pytest.mark.parametrize("by", ["session", "user"])
@pytest.mark.parametrize("span", RANGES)
def test_funnels_journeys_retention_adoption(sources: dict[str, Source], span: str, by: str) -> None:
    period = RANGES[span]
    steps = ["Api.login", "page_view", "Api.checkout"]
    assert same(sources, lambda s: analytics.funnel(s, steps, 3600, by, period))["entered"]
    assert same(sources, lambda s: analytics.journeys(s, by, period, max_steps=4))["paths"]
    same(sources, lambda s: analytics.retention(s, by, "week", 6, period, now=NOW))
    same(sources, lambda s: analytics.adoption(s, by, "week", period))


def test_drilldown(sources: dict[str, Source]) -> None:
    failed = next(c for c in CALLS if c.failed and c.error_type == "ValueError" and c.service == "svc-api")
    assert same(sources, lambda s: analytics.recent_calls(s, limit=30))
    same(sources, lambda s: analytics.recent_calls(s, "Api.checkout", errors_only=True))
    assert same(sources, lambda s: analytics.error_occurrences(s, "ValueError"))
    assert same(sources, lambda s: analytics.sessions(s, limit=20))
    same(sources, lambda s: analytics.session_timeline(s, failed.session))
    trace = {name: analytics.trace(source, failed.trace_id) for name, source in sources.items()}
    for answer in trace.values():  # attribute values are text in ClickHouse's maps
        for span in answer["spans"]:
            span["attributes"] = {
                k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in span["attributes"].items()
            }
            span["resource"] = {k: str(v) for k, v in span["resource"].items()}
    assert_same(plain(trace["sqlite"]), plain(trace["clickhouse"]))


@pytest.mark.parametrize("kind", ["calls", "events", "aggregates"])
def test_exports(sources: dict[str, Source], kind: str) -> None:
    def csv(source: Source) -> str:
        out = io.StringIO()
        write_csv(*rows(source, kind, RANGES["month"], step_seconds=7 * 86400), out)
        return out.getvalue()

    assert same(sources, csv).count("\n") > 2


def test_the_dashboard_data(sources: dict[str, Source]) -> None:
    answer = same(sources, lambda s: overview(s, "all", now=NOW), drop=("store", "engine", "generated_at"))
    assert answer["functions"] and answer["funnel"] and answer["series"]
