"""`ClickHouseReader.snapshot()`: within it an identical statement is run once (a dashboard page asks
where the first and last calls are, and which rollups exist, many times over), nested snapshots
share the outer one, and after it every statement reads the store again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from chdb import session as chdb_session

from sdk_telemetry.analytics import NS, Source
from sdk_telemetry.dashboard._data import _overview, overview
from sdk_telemetry.store.clickhouse import ClickHouseStore, rollups, trace_rows_as_json_each_row
from sdk_telemetry.store.clickhouse.reader import ClickHouseReader
from sdk_telemetry.store.reader import Scope
from tests.helpers.engines import DAY, END, Recorded, dataset, load_clickhouse

DATA = dataset()


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
    unshared = Recorded(store.run)  # the same page without a snapshot repeats what it asks
    _overview(Source(unshared.reader), "all", None, None, 3600.0, None, END / NS)
    assert len(unshared.statements) > len(set(unshared.statements)) > 10


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


def test_a_change_within_a_snapshot_forgets_what_it_had_learnt(store: ClickHouseStore) -> None:
    reader = ClickHouseReader(store.run, "chdb")
    last = reader.edge(Scope(), last=True)
    assert last is not None
    newer = (last + 2 * DAY, *DATA.calls[0][1:2], "dddddddddddddddd", *DATA.calls[0][3:])
    with reader.snapshot():
        assert reader.edge(Scope(), last=True) == last
        reader.run("INSERT INTO otel_traces FORMAT JSONEachRow\n" + trace_rows_as_json_each_row([newer]).decode(), {})
        assert reader.edge(Scope(), last=True) == last + 2 * DAY
        # Rollups dropped and made again within one snapshot: the catalog is asked anew.
        rollups.drop_rollups(reader.run)
        assert rollups.existing(reader.run) == set()
        assert set(reader.create_rollups()) >= {"hour", "month", "hour errors", "month errors"}
        assert (
            rollups.existing(reader.run)
            == rollups.existing(reader.run, errors=True)
            == {"hour", "day", "week", "month"}
        )
