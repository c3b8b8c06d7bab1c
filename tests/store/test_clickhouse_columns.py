"""The analysis columns on `otel_traces` (chDB): added once by `rollups --create`, computed for the
rows already stored and for every row inserted after, read by the analyses instead of the attribute
maps, and kept true when rows are updated or deleted; `SELECT *` and the Collector's inserts do not
see them. (Every analysis gives the same answers with and without them: the engines suites run
twice, `tests/analytics/test_engines.py` and `tests/store/test_clickhouse_reader_engines.py`.)"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from chdb import session as chdb_session

from sdk_telemetry.store.clickhouse import ClickHouseStore, columns, trace_rows_as_json_each_row
from sdk_telemetry.store.clickhouse.reader import ClickHouseReader
from sdk_telemetry.store.reader import Buckets, Scope
from tests.helpers.engines import DAY, START, Recorded, calls_of, dataset, load_clickhouse

DATA = dataset()
CALLS = calls_of(DATA)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    opened = chdb_session.Session(str(tmp_path_factory.mktemp("chdb-columns")))
    yield opened
    opened.close()


def database(session: Any, name: str, with_columns: bool) -> ClickHouseStore:
    session.query(f"DROP DATABASE IF EXISTS {name}")
    session.query(f"CREATE DATABASE {name} ENGINE = Atomic")
    session.query(f"USE {name}")
    store = ClickHouseStore.from_chdb(session)
    load_clickhouse(store, DATA, analysis_columns=with_columns)
    return store


def test_added_once_for_the_rows_stored_and_left_out_of_select_star(session: Any) -> None:
    store = database(session, "plain", with_columns=False)
    (before,) = store.run("SELECT * FROM otel_traces LIMIT 1", {})
    assert not columns.present(store.run)
    assert columns.add_columns(store.run) == list(columns.DEFINITIONS)
    assert columns.present(store.run) and columns.add_columns(store.run) == []
    (after,) = store.run("SELECT * FROM otel_traces LIMIT 1", {})
    assert len(after) == len(before)  # the Collector's `SELECT *` sees its own columns only
    # Computed for the stored rows by the mutation: on disk, not at each read.
    stored = {
        str(row[0])
        for row in store.run(
            "SELECT DISTINCT column FROM system.parts_columns WHERE database = currentDatabase() "
            "AND table = 'otel_traces' AND active",
            {},
        )
    }
    assert set(columns.DEFINITIONS) <= stored
    sessions = store.run("SELECT SdkSession, SdkUser, SdkHasUser, SdkEnvironment FROM otel_traces WHERE SdkCall", {})
    expected = sorted((c.session, c.user or "", int(c.user is not None), c.environment) for c in CALLS)
    assert sorted((str(s), str(u), int(h), str(e)) for s, u, h, e in sessions) == expected


def test_without_otel_traces_adding_them_is_refused(session: Any) -> None:
    session.query("DROP DATABASE IF EXISTS empty")
    session.query("CREATE DATABASE empty ENGINE = Atomic")
    session.query("USE empty")
    with pytest.raises(ValueError, match="no otel_traces table"):
        columns.add_columns(ClickHouseStore.from_chdb(session).run)


def test_a_collector_insert_after_them_fills_them(session: Any) -> None:
    store = database(session, "inserted", with_columns=True)
    row = next(span for span in DATA.calls if '"session.id"' in span[8])
    moved = (START - DAY, *row[1:2], "ffffffffffffffff", *row[3:])
    store.run("INSERT INTO otel_traces FORMAT JSONEachRow\n" + trace_rows_as_json_each_row([moved]).decode(), {})
    ((sid, weight),) = store.run("SELECT SdkSession, SdkWeight FROM otel_traces WHERE SpanId = 'ffffffffffffffff'", {})
    call = next(c for c in CALLS if c.span_id == row[2])
    assert (sid, weight) == (call.session, call.weight)


def test_the_analyses_read_the_columns_not_the_maps(session: Any) -> None:
    store = database(session, "read", with_columns=True)
    recorded = Recorded(store.run)
    reader = recorded.reader
    scope = Scope(environment="production")
    assert reader.funnel(scope, ["Api.login", "Api.search"], 3600 * 10**9, "session")[0] > 0
    assert reader.paths(scope, "user", True)
    assert reader.cohorts(scope, "session", Buckets(0, 7 * DAY), 4)
    assert reader.usage(scope, "user", Buckets(0, 7 * DAY)).everyone > 0
    assert reader.active_actors(scope, "session") > 0
    assert reader.error_groups(replace(scope, error_type="ValueError"), 5)
    assert reader.aggregate(scope, "function").rows
    calls_sql = [sql for sql in recorded.sql if "FROM otel_traces" in sql and "system." not in sql]
    assert len(calls_sql) >= 7
    (paths_sql,) = [sql for sql in calls_sql if "arraySort" in sql]
    assert "SdkParentKey" in paths_sql and "SdkSpanKey" in paths_sql and "TraceId" not in paths_sql
    for sql in (statement.split("UNION ALL")[0] for statement in calls_sql):  # events (otel_logs) have their maps
        assert "SdkCall = 1" in sql and "SdkEnvironment" in sql, sql
        assert "['session.id']" not in sql and "['enduser.id']" not in sql, sql
        assert "['deployment.environment" not in sql and "sample_rate" not in sql, sql


def test_span_keys_join_each_nested_call_to_its_parent(session: Any) -> None:
    store = database(session, "keys", with_columns=True)
    rows = store.run("SELECT TraceId, SpanId, ParentSpanId, SdkSpanKey, SdkParentKey FROM otel_traces", {})
    by_span = {(str(trace), str(span)): int(key) for trace, span, _, key, _ in rows}
    nested = [((str(trace), str(parent)), int(key)) for trace, _, parent, _, key in rows if parent]
    matched = [(parent, key) for parent, key in nested if parent in by_span]
    assert matched and all(key == by_span[parent] for parent, key in matched)
    assert all(int(key) == 0 for *_, parent, _, key in rows if not parent)
    assert len(set(by_span.values())) == len(by_span)  # one key per span
    # The same SpanId in two traces: two keys (a span id is unique only within its trace).
    keys = store.run(
        f"SELECT {columns.DEFINITIONS['SdkSpanKey'][1]} FROM (SELECT 'trace-a' AS TraceId, "
        "'0000000000000001' AS SpanId UNION ALL SELECT 'trace-b', '0000000000000001')",
        {},
    )
    assert len({int(key) for (key,) in keys}) == 2


@pytest.mark.parametrize("with_columns", [False, True], ids=["maps", "analysis columns"])
def test_calls_at_the_same_nanosecond_are_steps_in_span_id_order(session: Any, with_columns: bool) -> None:
    store = database(session, f"ties_{int(with_columns)}", with_columns)
    row = next(span for span in DATA.calls if '"session.id":"session-00"' in span[8])
    resource = row[8].replace('"session.id":"session-00"', '"session.id":"tied"')
    at = START + 3 * DAY
    # Neither name order nor insertion order is SpanId order.
    made = [(at + 5, "Tie.c", "0000000000000003"), (at, "Tie.a", "00000000000000a2"), (at, "Tie.b", "00000000000000a1")]
    rows = [(time, row[1], span, "", row[4], name, *row[6:8], resource, *row[9:]) for time, name, span in made]
    store.run("INSERT INTO otel_traces FORMAT JSONEachRow\n" + trace_rows_as_json_each_row(rows).decode(), {})
    reader = ClickHouseReader(store.run, "chdb")
    tied = Scope(start=at, end=at + 10)
    assert reader.paths(tied, "session", True) == [(("Tie.b", "Tie.a", "Tie.c"), 1)]
    summary = reader.path_summary(tied, "session", True, 2, 5)
    assert (summary.paths, summary.exits) == ([(("Tie.b", "Tie.a"), 1)], [("Tie.c", 1)])


def test_an_earlier_releases_columns_are_completed(session: Any) -> None:
    store = database(session, "earlier", with_columns=False)
    earlier = [name for name in columns.DEFINITIONS if name not in ("SdkSpanKey", "SdkParentKey")]
    store.run(
        "ALTER TABLE otel_traces "
        + ", ".join(f"ADD COLUMN {name} {columns.DEFINITIONS[name][0]} MATERIALIZED {columns.DEFINITIONS[name][1]}"
                    for name in earlier),
        {},
    )  # fmt: skip
    assert not columns.present(store.run)
    # The seven are read until the two keys are added; the keys are computed meanwhile.
    expected = replace(
        columns.MATERIALIZED, span_key=columns.FROM_MAPS.span_key, parent_key=columns.FROM_MAPS.parent_key
    )
    assert ClickHouseReader(store.run, "chdb")._columns() == expected
    assert ClickHouseReader(store.run, "chdb").paths(Scope(), "session", True)  # the nested calls' filter too
    assert columns.add_columns(store.run) == ["SdkSpanKey", "SdkParentKey"]
    assert ClickHouseReader(store.run, "chdb")._columns() == columns.MATERIALIZED


def test_updates_and_deletes_keep_them_true(session: Any) -> None:
    changes = [
        "ALTER TABLE otel_traces UPDATE ResourceAttributes = mapUpdate(ResourceAttributes, "
        "map('session.id', 'session-moved', 'deployment.environment.name', 'moved')) "
        "WHERE SpanId IN (SELECT SpanId FROM otel_traces ORDER BY Timestamp LIMIT 40) SETTINGS mutations_sync = 2",
        "DELETE FROM otel_traces WHERE SpanName = 'Api.logout'",
    ]
    answers = {}
    for name, with_columns in (("maps", False), ("materialized", True)):
        store = database(session, f"changed_{name}", with_columns)
        for change in changes:
            store.run(change, {})
        reader = ClickHouseReader(store.run, "chdb")
        assert columns.present(store.run) is with_columns
        answers[name] = (
            reader.funnel(Scope(), ["Api.login", "Api.search", "Api.logout"], 3600 * 10**9, "session"),
            reader.active_actors(Scope(environment="moved"), "session"),
            reader.sessions(Scope(environment="moved"), 10),
            reader.dimensions(),
        )
    funnel, moved, listed, dimensions = answers["materialized"]
    assert funnel[2] == 0 and moved > 0 and any(row.session_id == "session-moved" for row in listed)
    assert "moved" in dimensions["environments"]
    assert answers["materialized"] == answers["maps"]
