"""The backend at scale: the dashboard's data and the analyses over 10 million spans on ClickHouse
(chDB, the engine in-process) and 1 million on the embedded SQLite store, each engine through the
same store interface and the same analysis code.

    python bench/scale.py [--chdb-spans 10000000] [--sqlite-spans 1000000] [--days 90] [--rounds 3] [--keep DIR]

ClickHouse: `generate_chdb` (bench/scale_data.py) fills the Collector's tables in the engine, then
`create_rollups()` makes the four rollup tiers. SQLite: the same generator's calls (1 M over the
same days) copied into a store file through the writers' own insert path (so that the rollups fill
as the receiver fills them), then the default retention (raw rows 7 days, rollups 30/90/180/365):
the older 83 days are only in rollups, as in a store that has run for three months. Medians of
`--rounds` after one warm-up. Goals (issue 16): every dashboard request under 1 s at 10 M spans on
ClickHouse; the 90-day view on SQLite under 1 s from rollups. Anchor (../shared/reference/anchors.md,
this machine): chDB 20-35 ms per million spans for per-function percentiles, 50-69 ms per million
for a 3-step funnel; SQLite 2.8 s per million for percentiles by window functions.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale_data import DAY, NS, generate_chdb

STEPS = ["Client0.method_0", "Client1.method_1", "Client2.method_2"]
BATCH = 20_000


def copy_to_sqlite(session: Any, path: Path, spans: int, days: int) -> None:
    """`spans` calls made by the generator (in a database of their own), stored through `insert_spans`."""
    import orjson

    from sdk_telemetry.store import connect, insert_spans, trace_row

    session.query("CREATE DATABASE IF NOT EXISTS for_sqlite ENGINE = Atomic")
    session.query("USE for_sqlite")
    generate_chdb(session, spans, days)
    connection = connect(path)
    try:
        for offset in range(0, spans, BATCH):
            text = session.query(
                "SELECT toUnixTimestamp64Nano(Timestamp), TraceId, SpanId, ParentSpanId, SpanName, ServiceName, "
                "toJSONString(ResourceAttributes), toJSONString(SpanAttributes), Duration, StatusCode, StatusMessage "
                f"FROM otel_traces ORDER BY Timestamp, SpanId LIMIT {BATCH} OFFSET {offset}",
                "JSONCompact",
            ).bytes()
            rows = [
                trace_row(
                    timestamp=int(at),
                    trace_id=trace,
                    span_id=span,
                    parent_span_id=parent,
                    name=name,
                    service=service,
                    duration=int(duration),
                    resource=orjson.loads(resource),
                    attributes={
                        key: float(value) if key == "sdk_telemetry.sample_rate" else value
                        for key, value in orjson.loads(attributes).items()
                    },
                    scope="sdk_telemetry",
                    status=status,
                    status_message=message,
                )
                for at, trace, span, parent, name, service, resource, attributes, duration, status, message in (
                    orjson.loads(text)["data"]
                )
            ]
            with connection:
                connection.execute("BEGIN IMMEDIATE")
                insert_spans(connection, rows)
    finally:
        connection.close()
    session.query("USE default")
    session.query("DROP DATABASE for_sqlite")


def timed(rounds: int, question: Callable[[], Any]) -> tuple[float, Any]:
    """The median seconds of `rounds` runs after one warm-up, and the last answer."""
    answer = question()
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        answer = question()
        times.append(time.perf_counter() - started)
    return statistics.median(times), answer


def questions(source: Any, end: int) -> dict[str, Callable[[], Any]]:
    """The dashboard's requests and the analyses, over one engine's `Source`."""
    from sdk_telemetry.analytics import (
        TimeRange,
        adoption,
        error_occurrences,
        functions,
        funnel,
        journeys,
        performance,
        recent_calls,
        retention,
        sessions,
        top_errors,
    )
    from sdk_telemetry.dashboard._data import overview

    week, quarter = TimeRange(end - 7 * DAY, end), TimeRange(end - 90 * DAY, end)
    now = end / NS
    return {
        "dashboard overview, 7 d (one request)": lambda: overview(source, "7d", now=now),
        "dashboard overview, 90 d (all)": lambda: overview(source, "all", now=now),
        "dashboard: performance series, 7 d": lambda: performance(source, None, week),
        "dashboard: performance series, 90 d": lambda: performance(source, None, quarter),
        "dashboard: p95 by function, 7 d": lambda: functions(source, week),
        "dashboard: p95 by function, 90 d": lambda: functions(source, quarter),
        "dashboard: top errors, 7 d": lambda: top_errors(source, week),
        "dashboard: services and environments": lambda: source.dimensions(),
        # The other views over "all": a function's calls, the errors and one's occurrences, the sessions.
        "dashboard: a function's calls, 90 d": lambda: recent_calls(source, STEPS[0], quarter, 50),
        "dashboard errors: top 50 and occurrences, 90 d": lambda: [
            error_occurrences(source, group["type"], group["function"], quarter, 20)
            for group in top_errors(source, quarter, 50)[:1]
        ],
        "dashboard sessions: the latest 100, 90 d": lambda: sessions(source, quarter, 100),
        # The analyses tab over "all": journeys of the range's last week (`last=7d`), 8 weeks of retention.
        "dashboard analyses: journeys, 90 d": lambda: journeys(source, "session", quarter, 5, 8, last=7 * 86400),
        "dashboard analyses: retention, 90 d": lambda: retention(source, "user", "week", 8, quarter, now=now),
        "dashboard analyses: adoption, 90 d": lambda: adoption(source, "session", "week", quarter),
        "journeys, 90 d (every session's path)": lambda: journeys(source, "session", quarter, 5, 8),
        "funnel of 3 steps, 90 d": lambda: funnel(source, STEPS, 3600, "session", quarter),
        "retention, weekly users, 90 d": lambda: retention(source, "user", "week", 13, quarter, now=now),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chdb-spans", type=int, default=10_000_000)
    parser.add_argument("--sqlite-spans", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None, help="keep the data here (and reuse it next time)")
    options = parser.parse_args(argv)

    from chdb import session as chdb_session

    from sdk_telemetry.analytics import Source
    from sdk_telemetry.store import ClickHouseReader, ClickHouseStore, SQLiteReader, apply_retention, open_read_only

    base = options.keep or Path(tempfile.mkdtemp(prefix="sdk-telemetry-scale-"))
    base.mkdir(parents=True, exist_ok=True)
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (a shared machine)")
    session = chdb_session.Session(str(base / "chdb"))
    reader = ClickHouseReader(ClickHouseStore.from_chdb(session).run, "chdb")
    store = base / "store.sqlite3"
    if not store.exists():
        started = time.perf_counter()
        copy_to_sqlite(session, store, options.sqlite_spans, options.days)
        connection = sqlite3.connect(store)
        apply_retention(connection, 7)
        connection.close()
        seconds = time.perf_counter() - started
        print(f"SQLite: {options.sqlite_spans:,} spans stored and a week kept raw in {seconds:.0f} s")
    ClickHouseStore.from_chdb(session).create_tables()
    if reader.stored_spans() < options.chdb_spans:
        started = time.perf_counter()
        generate_chdb(session, options.chdb_spans, options.days)
        print(f"chDB: {options.chdb_spans:,} spans generated in {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    if reader.create_rollups() or time.perf_counter() - started > 1:  # what is missing (once)
        print(
            f"chDB: rollups, error rollups and analysis columns made over {reader.stored_spans():,} spans "
            f"in {time.perf_counter() - started:.0f} s"
        )
    clickhouse = Source(reader)
    sqlite = Source(SQLiteReader(open_read_only(store), store))
    end = (reader.edge(clickhouse.scope(), last=True) or 0) + 1
    sqlite_end = (sqlite.reader.edge(sqlite.scope(), last=True) or 0) + 1
    millions = {"chdb": reader.stored_spans() / 1e6, "sqlite": options.sqlite_spans / 1e6}
    print(f"\n{'question':46} {'chDB':>9} {'per M':>7} {'SQLite':>9} {'per M':>7}  read from (chDB | SQLite)")
    worst = {"chdb": 0.0, "sqlite 90 d": 0.0}
    for (name, on_clickhouse), on_sqlite in zip(
        questions(clickhouse, end).items(), questions(sqlite, sqlite_end).values(), strict=True
    ):
        ch_seconds, ch_answer = timed(options.rounds, on_clickhouse)
        sq_seconds, sq_answer = timed(options.rounds, on_sqlite)
        if name.startswith("dashboard"):
            worst["chdb"] = max(worst["chdb"], ch_seconds)
        if name.startswith("dashboard") and "90 d" in name:
            worst["sqlite 90 d"] = max(worst["sqlite 90 d"], sq_seconds)
        origins = " | ".join(_read_from(answer) for answer in (ch_answer, sq_answer))
        print(
            f"{name:46} {ch_seconds * 1000:7.0f}ms {ch_seconds * 1000 / millions['chdb']:5.0f}ms "
            f"{sq_seconds * 1000:7.0f}ms {sq_seconds * 1000 / millions['sqlite']:5.0f}ms  {origins}",
            flush=True,
        )
    print(
        f"\ngoal: every dashboard request < 1 s on chDB at {millions['chdb']:.0f} M: "
        f"slowest {worst['chdb'] * 1000:.0f} ms "
        f"({'met' if worst['chdb'] < 1 else 'NOT met'}); the 90-day view on SQLite < 1 s from rollups: slowest "
        f"{worst['sqlite 90 d'] * 1000:.0f} ms ({'met' if worst['sqlite 90 d'] < 1 else 'NOT met'})"
    )
    print("anchors: chDB per-function percentiles 20-35 ms per M, 3-step funnel 50-69 ms per M; SQLite 2.8 s per M")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    session.close()
    return 0


def _read_from(answer: Any) -> str:
    """What a timed answer was computed from, when it says."""
    if hasattr(answer, "summary"):
        return ",".join(answer.summary.get("read_from", []))
    if isinstance(answer, dict) and "totals" in answer:
        return ",".join(answer["totals"].get("read_from", []))
    return "-"


if __name__ == "__main__":
    sys.exit(main())
