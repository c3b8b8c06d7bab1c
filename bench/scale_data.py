"""Millions of spans in ClickHouse (chDB), generated in the engine, and how fast `ClickHouseReader`
answers the dashboard's and the analyses' questions over them.

    python bench/scale_data.py [--spans 10000000] [--days 90] [--path DIR] [--rounds 3]

`generate_chdb(session, spans, days, seed)` fills the Collector's `otel_traces` and `otel_logs`
with `INSERT ... SELECT FROM numbers()` (no Python loop over rows): calls of 20 functions over
`days` days up to now, log-normal durations, 2 % errors with a type, a quarter sampled at 0.5,
sessions of about 40 calls among 10,000 at a time, 50,000 users, 3 services in 2 environments,
one call in 10 nested in the previous one, and a page_view or signup event per 20 calls.
Goal (issue 16): every dashboard request under 1 s at 10 M spans.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

NS = 1_000_000_000
DAY = 86400 * NS
CHUNK = 1_000_000
FUNCTIONS = 20
ACTIVE_SESSIONS = 10_000
CALLS_PER_SESSION = 40
USERS = 50_000


def _traces_select(offset: int, count: int, spans: int, days: int, seed: int, end: int) -> str:
    span = "leftPad(lower(hex(number + 1)), 16, '0')"
    parent = "if(number % 10 = 9, leftPad(lower(hex(number)), 16, '0'), '')"
    trace = f"leftPad(lower(hex(cityHash64(number - (number % 10 = 9), {seed}))), 32, '0')"
    block = ACTIVE_SESSIONS * CALLS_PER_SESSION
    session = f"intDiv(number, {block}) * {ACTIVE_SESSIONS} + number % {ACTIVE_SESSIONS}"
    uniform = f"((cityHash64(number, {seed}, 1) % 1000000 + 1) / 1000001)"
    angle = f"(2 * pi() * (cityHash64(number, {seed}, 2) % 1000000) / 1000000)"
    duration = f"toUInt64(exp(15 + sqrt(-2 * log({uniform})) * cos({angle})))"
    function = f"toUInt32(pow((cityHash64(number, {seed}, 3) % 1000000) / 1000000, 1.5) * {FUNCTIONS})"
    failed = f"(cityHash64(number, {seed}, 4) % 100 < 2)"
    width = days * DAY
    return f"""
SELECT
    fromUnixTimestamp64Nano(toInt64({end - width} + toInt64(number * {width / spans!r}) + number % 1000)) AS Timestamp,
    {trace} AS TraceId, {span} AS SpanId, {parent} AS ParentSpanId, '' AS TraceState,
    concat('Client', toString({function} % 5), '.method_', toString({function})) AS SpanName,
    'Internal' AS SpanKind, concat('svc-', toString(({session}) % 3)) AS ServiceName,
    map('service.name', ServiceName,
        'deployment.environment.name', if(({session}) % 7 = 0, 'staging', 'production'),
        'session.id', concat('session-', toString({session})),
        'enduser.id', concat('user-', toString(cityHash64({session}, {seed}) % {USERS}))) AS ResourceAttributes,
    'sdk_telemetry' AS ScopeName, '1.0' AS ScopeVersion,
    mapFilter((k, v) -> v != '', map(
        'sdk_telemetry.sample_rate', if(number % 4 = 0, '0.5', ''),
        'error.type', if({failed}, ['ValueError', 'TimeoutError', 'KeyError'][number % 3 + 1], ''))) AS SpanAttributes,
    {duration} AS Duration,
    if({failed}, 'Error', 'Unset') AS StatusCode, if({failed}, 'failed', '') AS StatusMessage,
    [] AS `Events.Timestamp`, [] AS `Events.Name`, [] AS `Events.Attributes`,
    [] AS `Links.TraceId`, [] AS `Links.SpanId`, [] AS `Links.TraceState`, [] AS `Links.Attributes`
FROM numbers({offset}, {count})
"""


def _logs_select(offset: int, count: int, spans: int, days: int, seed: int, end: int) -> str:
    # One event per 20 calls, in the session (and a moment after the start) of call number * 20.
    call = "(number * 20)"
    block = ACTIVE_SESSIONS * CALLS_PER_SESSION
    session = f"intDiv({call}, {block}) * {ACTIVE_SESSIONS} + {call} % {ACTIVE_SESSIONS}"
    width = days * DAY
    return f"""
SELECT
    fromUnixTimestamp64Nano(toInt64({end - width} + toInt64({call} * {width / spans!r}) + 500)) AS Timestamp,
    '' AS TraceId, '' AS SpanId, 'INFO' AS SeverityText, 9 AS SeverityNumber,
    concat('svc-', toString(({session}) % 3)) AS ServiceName, 'event' AS Body,
    map('service.name', ServiceName,
        'deployment.environment.name', if(({session}) % 7 = 0, 'staging', 'production'),
        'session.id', concat('session-', toString({session})),
        'enduser.id', concat('user-', toString(cityHash64({session}, {seed}) % {USERS}))) AS ResourceAttributes,
    'sdk_telemetry' AS ScopeName,
    map('sdk_telemetry.event.id', concat('event-', toString(number))) AS LogAttributes,
    if(cityHash64(number, {seed}) % 4 = 0, 'signup', 'page_view') AS EventName
FROM numbers({offset}, {count})
"""


def _create_tables(session: Any) -> None:
    from sdk_telemetry.store.clickhouse import ClickHouseStore

    ClickHouseStore.from_chdb(session).create_tables()  # the Collector's tables, as its exporter makes them


def generate_chdb(session: Any, spans: int, days: int, seed: int = 16) -> None:
    """Fill the session's current database with `spans` calls over `days` days up to now, and
    events, in the Collector's tables (created when absent), all in the engine."""
    _create_tables(session)
    end = time.time_ns() // (3600 * NS) * (3600 * NS)
    for offset in range(0, spans, CHUNK):
        count = min(CHUNK, spans - offset)
        session.query(f"INSERT INTO otel_traces {_traces_select(offset, count, spans, days, seed, end)}")
    events = spans // 20
    for offset in range(0, events, CHUNK):
        count = min(CHUNK, events - offset)
        session.query(
            "INSERT INTO otel_logs (Timestamp, TraceId, SpanId, SeverityText, SeverityNumber, ServiceName, Body, "
            "ResourceAttributes, ScopeName, LogAttributes, EventName) "
            + _logs_select(offset, count, spans, days, seed, end)
        )


def _timed(rounds: int, question: Callable[[], Any]) -> tuple[float, Any]:
    times, answer = [], None
    for _ in range(rounds):
        started = time.perf_counter()
        answer = question()
        times.append(time.perf_counter() - started)
    return statistics.median(times), answer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--path", default=None, help="chDB directory (default: a temporary one)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--rollups",
        action="store_true",
        help="also create rollups (and the analysis columns), ask again, and read 90 days from rollups",
    )
    options = parser.parse_args(argv)

    from chdb import session as chdb_session

    from sdk_telemetry.store.clickhouse.reader import ClickHouseReader
    from sdk_telemetry.store.reader import Buckets, Scope

    session = chdb_session.Session(options.path or tempfile.mkdtemp(prefix="chdb-scale-"))
    reader = ClickHouseReader.from_chdb(session)
    _create_tables(session)
    if reader.stored_spans() < options.spans:
        started = time.perf_counter()
        generate_chdb(session, options.spans, options.days)
        print(f"generated {options.spans:,} spans in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    last = reader.edge(Scope(), last=True) or 0
    week = Scope(start=last - 7 * DAY, end=last + 1)
    quarter = Scope(start=last - 90 * DAY, end=last + 1)
    steps = ["Client0.method_0", "Client1.method_1", "page_view"]
    questions: dict[str, Callable[[], Any]] = {
        "dimensions + functions": lambda: (reader.dimensions(), reader.recorded_functions()),
        "aggregate overall, 7 d": lambda: reader.aggregate(week),
        "aggregate by function, all": lambda: reader.aggregate(Scope(), "function"),
        "aggregate by function, 7 d": lambda: reader.aggregate(week, "function"),
        "aggregate 1-minute buckets, 7 d": lambda: reader.aggregate(week, Buckets(week.start or 0, 60 * NS)),
        "aggregate 3-hour buckets, 7 d": lambda: reader.aggregate(week, Buckets(week.start or 0, 3 * 3600 * NS)),
        "aggregate 1-day buckets, 90 d": lambda: reader.aggregate(quarter, Buckets(0, DAY)),
        "error groups, 7 d": lambda: reader.error_groups(week, 10),
        "active sessions, 7 d": lambda: reader.active_actors(week, "session"),
        "sessions (latest 50), 7 d": lambda: reader.sessions(week, 50),
        "newest calls (50)": lambda: list(reader.calls(Scope(), "newest", limit=50)),
        "funnel of 3 steps, 90 d": lambda: reader.funnel(quarter, steps, 3600 * NS, "session"),
        "cohorts (users, weekly), 90 d": lambda: reader.cohorts(quarter, "user", Buckets(4 * DAY, 7 * DAY), 8),
        "usage (users, daily), 90 d": lambda: reader.usage(quarter, "user", Buckets(0, DAY)),
        "paths (sessions, top level), 7 d": lambda: reader.paths(week, "session", True),
    }
    before = {name: _timed(options.rounds, question)[0] for name, question in questions.items()}
    if not options.rollups:
        print(f"{'question':38} {'median':>9}")
        for name, seconds in before.items():
            print(f"{name:38} {seconds * 1000:7.0f} ms")
    if options.rollups:
        started = time.perf_counter()
        reader.create_rollups()
        made = time.perf_counter() - started
        # The same questions once the analysis columns exist (read instead of the attribute maps).
        print(f"{'question':38} {'maps':>9} {'columns':>10} {'ratio':>6}")
        for name, question in questions.items():
            seconds, _ = _timed(options.rounds, question)
            print(f"{name:38} {before[name] * 1000:7.0f} ms {seconds * 1000:7.0f} ms {before[name] / seconds:5.1f}x")
        print(f"{'create rollups, error rollups, columns':38} {made * 1000:7.0f} ms")
        # Retention: raw rows older than 7 days go; the 90-day view then reads the day tier beyond.
        session.query(
            f"ALTER TABLE otel_traces DELETE WHERE Timestamp < fromUnixTimestamp64Nano({last - 7 * DAY}) "
            "SETTINGS mutations_sync = 2"
        )
        for name, question in {
            "rollups: dimensions + functions": lambda: (reader.dimensions(), reader.recorded_functions()),
            "rollups: by function, 90 d": lambda: reader.aggregate(quarter, "function"),
            "rollups: 1-day buckets, 90 d": lambda: reader.aggregate(quarter, Buckets(0, DAY)),
        }.items():
            seconds, answer = _timed(options.rounds, question)
            origins = f"  origins {answer.origins}" if hasattr(answer, "origins") else ""
            print(f"{name:38} {seconds * 1000:7.0f} ms{origins}")
    session.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
