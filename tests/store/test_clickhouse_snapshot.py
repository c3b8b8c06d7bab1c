"""`ClickHouseReader.snapshot()`: within it an identical statement is run once (a dashboard page asks
where the first and last calls are, and which rollups exist, many times over), nested snapshots
share the outer one, and after it every statement reads the store again."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from chdb import session as chdb_session

from sdk_telemetry.analytics import NS, Source
from sdk_telemetry.dashboard._data import overview
from sdk_telemetry.store.clickhouse import ClickHouseStore, trace_rows_as_json_each_row
from sdk_telemetry.store.clickhouse.reader import ClickHouseReader
from sdk_telemetry.store.reader import Scope
from tests.helpers.engines import DAY, END, dataset, load_clickhouse

DATA = dataset()


class Recorded:
    """A reader over `run` that keeps the statements it ran, with their parameters."""

    def __init__(self, run: Any) -> None:
        self.statements: list[tuple[str, bytes]] = []
        self._run = run
        self.reader = ClickHouseReader(self.run, "chdb")

    def run(self, sql: str, params: Any) -> Any:
        self.statements.append((sql, orjson.dumps(params, option=orjson.OPT_SORT_KEYS)))
        return self._run(sql, params)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseStore]:
    session = chdb_session.Session(str(tmp_path_factory.mktemp("chdb-snapshot")))
    session.query("CREATE DATABASE IF NOT EXISTS snapshot ENGINE = Atomic")
    session.query("USE snapshot")
    loaded = ClickHouseStore.from_chdb(session)
    load_clickhouse(loaded, DATA)
    ClickHouseReader(loaded.run, "chdb").create_rollups(dict.fromkeys(("hour", "day", "week", "month"), 1000))
    yield loaded
    session.close()


def test_a_dashboard_page_runs_no_statement_twice(store: ClickHouseStore) -> None:
    recorded = Recorded(store.run)
    page = overview(Source(recorded.reader), "all", now=END / NS)
    assert page["stored_spans"] == len(DATA.spans) and page["funnel"] is not None
    assert len(recorded.statements) == len(set(recorded.statements)) > 10
    unshared = Recorded(store.run)  # the same analyses without a snapshot repeat some statements
    source = Source(unshared.reader)
    for _ in range(2):
        source.reader.edge(source.scope(), last=True)
    assert len(unshared.statements) > len(set(unshared.statements))


def test_within_a_snapshot_a_statement_is_answered_once_and_after_it_anew(store: ClickHouseStore) -> None:
    recorded = Recorded(store.run)
    reader = recorded.reader
    last = reader.edge(Scope(), last=True)
    assert last is not None
    newer = (last + DAY, *DATA.calls[0][1:2], "eeeeeeeeeeeeeeee", *DATA.calls[0][3:])
    with reader.snapshot():
        assert reader.edge(Scope(), last=True) == last
        ran = len(recorded.statements)
        with reader.snapshot():  # nested: the outer snapshot's answers
            store.run(
                "INSERT INTO otel_traces FORMAT JSONEachRow\n" + trace_rows_as_json_each_row([newer]).decode(), {}
            )
            assert reader.edge(Scope(), last=True) == last
        assert reader.edge(Scope(), last=True) == last and len(recorded.statements) == ran
    assert reader.edge(Scope(), last=True) == last + DAY
