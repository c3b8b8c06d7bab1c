"""`ClickHouseReader` on the real engine (chDB) over the Collector's tables, every `Reader` method
checked against answers computed by brute force from the same known dataset."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from chdb import session as chdb_session

from sdk_telemetry.store.clickhouse import ClickHouseStore
from sdk_telemetry.store.clickhouse.reader import ClickHouseReader
from sdk_telemetry.store.queries import QueryError
from sdk_telemetry.store.reader import Buckets, Scope
from sdk_telemetry.store.sqlite_reader import window_funnel_level
from tests.helpers.engines import (
    DAY,
    END,
    NS,
    START,
    Call,
    Dataset,
    actor,
    assert_rows_equal,
    calls_of,
    dataset,
    error_groups,
    figures,
    grouped,
    in_scope,
    load_clickhouse,
    nearest,
)

DATA = dataset()
CALLS = calls_of(DATA)
MIDDLE = START + 40 * DAY
SCOPES = {
    "all": Scope(),
    "range": Scope(start=MIDDLE, end=MIDDLE + 30 * DAY),
    "service": Scope(service="svc-api"),
    "environment": Scope(environment="staging"),
    "function": Scope(function="Api.get"),
    "functions": Scope(functions=("Api.get", "Api.login")),
    "session": Scope(session="session-04"),
    "errors": Scope(errors_only=True),
    "narrow": Scope(start=MIDDLE, end=MIDDLE + 2 * DAY, service="svc-web"),
}
ACTORS = ("session", "user", "service", "host.name")


@pytest.fixture(scope="module")
def chdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    # chDB runs one engine per process, on one path: databases keep the tests' tables apart.
    session = chdb_session.Session(str(tmp_path_factory.mktemp("chdb-reader")))
    yield session
    session.close()


@pytest.fixture(scope="module")
def reader(chdb: Any) -> ClickHouseReader:
    chdb.query("CREATE DATABASE IF NOT EXISTS otel ENGINE = Atomic")
    chdb.query("USE otel")
    store = ClickHouseStore.from_chdb(chdb)
    load_clickhouse(store, DATA)
    return ClickHouseReader(store.run, "chdb")


def scoped(scope: Scope) -> list[Call]:
    return [call for call in CALLS if in_scope(call, scope)]


def event_in_scope(row: tuple[Any, ...], scope: Scope) -> bool:
    resource = orjson.loads(row[8])
    return (
        (scope.start is None or row[0] >= scope.start)
        and (scope.end is None or row[0] < scope.end)
        and scope.service in (None, row[6])
        and scope.environment in (None, resource.get("deployment.environment.name"))
        and scope.session in (None, row[12])
    )


def event_actor(row: tuple[Any, ...], by: str) -> str | None:
    resource, attributes = orjson.loads(row[8]), orjson.loads(row[10])
    value = {
        "session": row[12] or None,
        "user": attributes.get("enduser.id", resource.get("enduser.id")),
        "service": row[6] or None,
    }.get(by, resource.get(by))
    return None if value is None else str(value)


def test_the_dataset_is_what_the_tests_need() -> None:
    assert len(CALLS) > 200 and len(DATA.events) > 50
    assert {call.weight for call in CALLS} == {1.0, 2.0, 4.0}
    assert len({call.timestamp for call in CALLS}) == len(CALLS)
    assert any(call.parent_span_id for call in CALLS)  # nested calls
    assert len(DATA.spans) > len(CALLS)  # HTTP spans of another scope
    assert {call.error_type for call in CALLS if call.failed} == {"Error", "ValueError", "TimeoutError"}


def test_what_is_stored(reader: ClickHouseReader) -> None:
    assert reader.engine == "clickhouse"
    assert reader.has_events()
    assert reader.recorded_functions() == sorted({call.name for call in CALLS})
    assert reader.recorded_events() == ["page_view", "signup"]
    assert reader.dimensions() == {
        "services": ["svc-api", "svc-batch", "svc-web"],
        "environments": ["production", "staging"],
    }
    assert reader.stored_spans() == len(DATA.spans)
    assert reader.stored_spans(calls_only=True) == len(CALLS)


@pytest.mark.parametrize("name", SCOPES)
def test_edges(reader: ClickHouseReader, name: str) -> None:
    times = [call.timestamp for call in scoped(SCOPES[name])]
    assert reader.edge(SCOPES[name]) == min(times)
    assert reader.edge(SCOPES[name], last=True) == max(times)
    assert reader.edge(Scope(start=END)) is None


@pytest.mark.parametrize("name", SCOPES)
@pytest.mark.parametrize("group", [None, "function", Buckets(START, 7 * DAY), Buckets(START + 3600 * NS, 86400 * NS)])
def test_aggregates(reader: ClickHouseReader, name: str, group: Any) -> None:
    calls = scoped(SCOPES[name])
    if group is None:
        expected = [{"key": None, **figures(calls)}]
    elif group == "function":
        expected = [{"key": k, **figures(v)} for k, v in grouped(calls, lambda c: c.name).items()]
    else:
        expected = [{"key": k, **figures(v)} for k, v in grouped(calls, lambda c: group.index(c.timestamp)).items()]
    got = reader.aggregate(SCOPES[name], group)
    assert got.origins == ["raw"]
    assert_rows_equal(got.rows, expected)
    if isinstance(group, Buckets):  # the overall figures of the same read
        assert got.total is not None
        assert_rows_equal([got.total], [{"key": None, **figures(calls)}])
    else:
        assert got.total is None


@pytest.mark.parametrize("kind", ["ValueError", "TimeoutError", "Error"])
def test_a_scope_of_one_error_type(reader: ClickHouseReader, kind: str) -> None:
    calls = [call for call in CALLS if call.failed and call.error_type == kind]
    (row,) = reader.aggregate(Scope(error_type=kind)).rows
    assert_rows_equal([row], [{"key": None, **figures(calls)}])
    assert {r.error_type or "Error" for r in reader.calls(Scope(error_type=kind))} == {kind}


def test_buckets_before_their_origin_are_numbered_below_zero(reader: ClickHouseReader) -> None:
    origin = MIDDLE + 12345
    rows = reader.aggregate(Scope(), Buckets(origin, DAY)).rows
    expected = grouped(CALLS, lambda c: (c.timestamp - origin) // DAY)
    assert [row.key for row in rows] == list(expected)
    assert rows[0].key < 0


def test_no_calls_no_aggregate(reader: ClickHouseReader) -> None:
    assert reader.aggregate(Scope(start=END)).rows == []
    assert reader.aggregate(Scope(function="Api.nothing"), "function").rows == []


@pytest.mark.parametrize("name", SCOPES)
def test_error_groups(reader: ClickHouseReader, name: str) -> None:
    assert_rows_equal(reader.error_groups(SCOPES[name], 5), error_groups(scoped(SCOPES[name]), 5))


@pytest.mark.parametrize("by", ACTORS)
@pytest.mark.parametrize("name", SCOPES)
def test_active_actors(reader: ClickHouseReader, name: str, by: str) -> None:
    expected = {actor(call, by) for call in scoped(SCOPES[name])} - {None}
    assert reader.active_actors(SCOPES[name], by) == len(expected)


def brute_funnel(scope: Scope, steps: list[str], window: int, by: str) -> list[int]:
    marks: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for call in scoped(scope):
        who = actor(call, by)
        if who is not None and call.name in steps:
            marks[who].append((call.timestamp, call.name))
    for row in DATA.events:
        who = event_actor(row, by)
        if who is not None and row[11] in steps and event_in_scope(row, scope):
            marks[who].append((row[0], row[11]))
    reached = [0] * len(steps)
    for occurrences in marks.values():
        for index in range(window_funnel_level(sorted(occurrences), steps, window)):
            reached[index] += 1
    return reached


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
def test_funnels(reader: ClickHouseReader, steps: list[str], window: int, by: str) -> None:
    for scope in (Scope(), SCOPES["range"], SCOPES["service"]):
        expected = brute_funnel(scope, steps, window, by)
        assert reader.funnel(scope, steps, window, by) == expected
    assert brute_funnel(Scope(), steps, window, by)[0] > 0


def brute_paths(scope: Scope, by: str, top_level: bool) -> list[tuple[tuple[str, ...], int]]:
    stored = {(call.trace_id, call.span_id) for call in CALLS}
    paths: dict[str, list[str]] = defaultdict(list)
    for call in scoped(scope):
        who = actor(call, by)
        if who is None or (top_level and (call.trace_id, call.parent_span_id) in stored):
            continue
        path = paths[who]
        if not path or path[-1] != call.name:
            path.append(call.name)
    counts = Counter(tuple(path) for path in paths.values())
    return sorted(counts.items())


@pytest.mark.parametrize("top_level", [True, False])
@pytest.mark.parametrize("by", ACTORS)
@pytest.mark.parametrize("name", ["all", "range", "service", "functions"])
def test_paths(reader: ClickHouseReader, name: str, by: str, top_level: bool) -> None:
    expected = brute_paths(SCOPES[name], by, top_level)
    assert reader.paths(SCOPES[name], by, top_level) == expected


def test_nested_calls_are_not_steps_of_their_own(reader: ClickHouseReader) -> None:
    steps = {step for path, _ in reader.paths(Scope(), "session", top_level=True) for step in path}
    every = {step for path, _ in reader.paths(Scope(), "session", top_level=False) for step in path}
    assert "Api.charge" in every and "Api.charge" not in steps


@pytest.mark.parametrize("by", ACTORS)
@pytest.mark.parametrize("period", [Buckets(0, DAY), Buckets(4 * DAY, 7 * DAY)])
@pytest.mark.parametrize("name", ["all", "range", "service"])
def test_cohorts(reader: ClickHouseReader, name: str, by: str, period: Buckets) -> None:
    active: dict[str, set[int]] = defaultdict(set)
    for call in scoped(SCOPES[name]):
        who = actor(call, by)
        if who is not None:
            active[who].add(period.index(call.timestamp))
    expected: dict[int, list[int]] = {}
    for indexes in active.values():
        cohort = min(indexes)
        row = expected.setdefault(cohort, [0] * 6)
        for index in indexes:
            if index - cohort < 6:
                row[index - cohort] += 1
    assert reader.cohorts(SCOPES[name], by, period, 6) == dict(sorted(expected.items()))


@pytest.mark.parametrize("by", ACTORS)
@pytest.mark.parametrize("name", ["all", "range", "environment"])
def test_usage(reader: ClickHouseReader, name: str, by: str) -> None:
    period = Buckets(4 * DAY, 7 * DAY)
    active: dict[int, set[str]] = defaultdict(set)
    using: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    for call in scoped(SCOPES[name]):
        who = actor(call, by)
        if who is not None:
            active[period.index(call.timestamp)].add(who)
            using[call.name][period.index(call.timestamp)].add(who)
    got = reader.usage(SCOPES[name], by, period)
    assert got.active == {index: len(who) for index, who in sorted(active.items())}
    assert got.everyone == len(set().union(*active.values()))
    assert got.using == {f: {i: len(w) for i, w in sorted(per.items())} for f, per in sorted(using.items())}
    assert got.users == {f: len(set().union(*per.values())) for f, per in sorted(using.items())}


@pytest.mark.parametrize("name", SCOPES)
def test_calls_in_each_order(reader: ClickHouseReader, name: str) -> None:
    calls = scoped(SCOPES[name])
    oldest = [(c.timestamp, c.span_id) for c in calls]
    assert [(r.timestamp, r.span_id) for r in reader.calls(SCOPES[name], "oldest")] == oldest
    assert [(r.timestamp, r.span_id) for r in reader.calls(SCOPES[name], "newest", limit=7)] == oldest[::-1][:7]
    assert [(r.timestamp, r.span_id) for r in reader.calls(SCOPES[name], "stored", limit=3)] == oldest[-3:]


def test_calls_after_a_cursor_and_the_last_cursor(reader: ClickHouseReader) -> None:
    rows = list(reader.calls(Scope(), "stored", limit=10))
    cursor = rows[4].cursor
    after = list(reader.calls(Scope(), "stored", after=cursor, limit=100))
    assert [row.span_id for row in after] == [row.span_id for row in rows[5:]]
    assert reader.last_cursor() == rows[-1].cursor == CALLS[-1].timestamp
    assert list(reader.calls(Scope(), "stored", after=reader.last_cursor())) == []


def test_a_call_row_has_every_field(reader: ClickHouseReader) -> None:
    by_span = {row[2]: row for row in DATA.calls}
    rows = list(reader.calls(Scope(errors_only=True), "oldest", with_events=True))
    typed = next(row for row in rows if row.error_type == "ValueError" and row.events)
    source = by_span[typed.span_id]
    assert (typed.trace_id, typed.function, typed.duration, typed.status) == (source[1], source[5], source[12], "Error")
    assert typed.message == source[14] and typed.session_id == source[19] and typed.environment == source[18]
    assert typed.events[0]["Name"] == "exception"
    assert typed.events[0]["Timestamp"] == typed.timestamp + 1000
    assert typed.events[0]["Attributes"]["exception.type"] == "ValueError"
    assert {row.propagated for row in rows} == {True, False}
    assert {row.sample_rate for row in reader.calls(Scope(service="svc-api"))} == {1.0, 0.5, 0.25}
    users = {call.span_id: call.user for call in CALLS}
    assert all(row.user_id == users[row.span_id] for row in reader.calls(Scope()))
    assert any(row.user_id and row.user_id.startswith("own-") for row in reader.calls(Scope()))
    assert next(reader.calls(Scope())).events == []


def test_traces(reader: ClickHouseReader) -> None:
    checkout = next(call for call in CALLS if call.name == "Api.checkout")
    assert reader.trace_ids(checkout.trace_id[:20]) == [checkout.trace_id]
    assert reader.trace_ids("0000000", limit=3) == sorted({r[1] for r in DATA.spans if r[1].startswith("0000000")})[:3]
    spans = reader.trace_spans(checkout.trace_id)
    expected = sorted((row for row in DATA.spans if row[1] == checkout.trace_id), key=lambda r: (r[0], r[2]))
    assert [(s.timestamp, s.span_id, s.name, s.scope) for s in spans] == [(r[0], r[2], r[5], r[9]) for r in expected]
    assert spans[1].parent_span_id == spans[0].span_id and spans[1].name == "Api.charge"
    assert spans[0].resource["service.name"] == checkout.service and spans[0].session_id == checkout.session
    http = next(call for call in CALLS if call.name == "Api.get")
    client = reader.trace_spans(http.trace_id)[-1]
    assert (client.scope, client.kind, client.attributes) == (
        "opentelemetry.instrumentation.httpx",
        "Client",
        {"http.request.method": "GET", "http.response.status_code": "200"},
    )
    assert reader.trace_spans("f" * 32) == []


@pytest.mark.parametrize("name", ["all", "range", "service", "errors"])
def test_sessions(reader: ClickHouseReader, name: str) -> None:
    groups = grouped(scoped(SCOPES[name]), lambda c: c.session)
    expected = sorted(
        (
            {
                "session_id": sid,
                "first": min(c.timestamp for c in members),
                "last": max(c.timestamp + c.duration for c in members),
                "calls": len(members),
                "errors": sum(c.failed for c in members),
                "user_id": max((c.user for c in members if c.user is not None), default=None),
                "service": max(c.service for c in members),
                "environment": max(c.environment for c in members),
            }
            for sid, members in groups.items()
        ),
        key=lambda row: (-row["last"], row["session_id"]),
    )[:8]
    assert_rows_equal(reader.sessions(SCOPES[name], 8), expected)


def test_events_and_their_counts(reader: ClickHouseReader) -> None:
    counts = Counter(row[12] for row in DATA.events)
    wanted = ["session-00", "session-05", "nobody"]
    assert reader.event_counts(wanted) == {sid: counts[sid] for sid in wanted if counts[sid]}
    for scope in (Scope(), SCOPES["range"], SCOPES["service"], SCOPES["environment"], SCOPES["session"]):
        expected = [row for row in DATA.events if event_in_scope(row, scope)]
        got = list(reader.events(scope))
        assert [(e.timestamp, e.event_id, e.name, e.session_id) for e in got] == [
            (r[0], r[1], r[11], r[12]) for r in expected
        ]
    first = next(reader.events(Scope(), limit=1))
    source = DATA.events[0]
    assert (first.service, first.severity, first.body, first.trace_id) == (source[6], "INFO", source[7], source[2])
    assert first.attributes["page"] == "/p/0"


def test_a_bad_actor_is_refused_by_name(reader: ClickHouseReader) -> None:
    with pytest.raises(QueryError, match="by:"):
        reader.active_actors(Scope(), "")
    # Any other text is a resource attribute key, passed as a parameter: never SQL.
    assert reader.active_actors(Scope(), "x'] OR 1 = 1 --") == 0


def test_the_collectors_older_spellings(chdb: Any) -> None:
    """`STATUS_CODE_ERROR` and `deployment.environment` (older exporters) read as today's."""
    chdb.query("CREATE DATABASE IF NOT EXISTS older ENGINE = Atomic")
    chdb.query("USE older")
    try:
        store = ClickHouseStore.from_chdb(chdb)
        load_clickhouse(store, Dataset(DATA.spans[:40], []))
        store.run("DROP TABLE otel_logs", {})  # a Collector writing no logs
        store.run(
            "ALTER TABLE otel_traces UPDATE StatusCode = 'STATUS_CODE_ERROR', ResourceAttributes = "
            "mapUpdate(mapFilter((k, v) -> k != 'deployment.environment.name', ResourceAttributes), "
            "map('deployment.environment', ResourceAttributes['deployment.environment.name'])) "
            "WHERE StatusCode = 'Error' SETTINGS mutations_sync = 2",
            {},
        )
        reader = ClickHouseReader(store.run, "old")
        calls = calls_of(Dataset(DATA.spans[:40], []))
        (row,) = reader.aggregate(Scope()).rows
        assert row.errors == pytest.approx(sum(c.weight for c in calls if c.failed))
        failed_env = {c.environment for c in calls if c.failed}
        assert set(reader.dimensions()["environments"]) >= failed_env
        assert {r.status for r in reader.calls(Scope(errors_only=True))} == {"Error"}
        assert not reader.has_events() and reader.recorded_events() == [] and list(reader.events(Scope())) == []
        assert reader.funnel(Scope(), ["Api.login", "Api.get"], DAY, "session")[0] > 0
    finally:
        chdb.query("CREATE DATABASE IF NOT EXISTS otel ENGINE = Atomic")
        chdb.query("USE otel")


def test_percentiles_are_nearest_rank_for_every_group_size(chdb: Any) -> None:
    """Groups of 1 to 300 calls (every size where n p is a whole number, and every other)."""
    chdb.query("CREATE DATABASE IF NOT EXISTS sizes ENGINE = Atomic")
    chdb.query("USE sizes")
    try:
        store = ClickHouseStore.from_chdb(chdb)
        store.create_tables()
        store.run(
            "INSERT INTO otel_traces (Timestamp, TraceId, SpanId, SpanName, ScopeName, Duration, StatusCode) "
            "SELECT fromUnixTimestamp64Nano(toInt64(n * 1000 + i)), toString(n), toString(i), "
            "concat('f', toString(n)), 'sdk_telemetry', cityHash64(n, i) % 1000, 'Unset' "
            "FROM (SELECT number + 1 AS n FROM numbers(300)) ARRAY JOIN range(n) AS i",
            {},
        )
        durations = {
            str(name): [int(d) for d in values]
            for name, values in store.run(
                "SELECT SpanName, groupArray(Duration) FROM otel_traces GROUP BY SpanName", {}
            )
        }
        rows = ClickHouseReader(store.run, "sizes").aggregate(Scope(), "function").rows
        assert len(rows) == 300
        for row in rows:
            values = durations[row.key]
            assert (row.p50, row.p95, row.p99) == (nearest(values, 50), nearest(values, 95), nearest(values, 99))
    finally:
        chdb.query("CREATE DATABASE IF NOT EXISTS otel ENGINE = Atomic")
        chdb.query("USE otel")
