"""How fast the embedded store answers: per-function p50/p95/p99 over N stored invocations.

    python bench/query.py [--events 1000000] [--functions 20] [--store PATH] [--rounds 5] [--waiting N]

Builds (or reuses) a store of N invocation spans across F functions (log-normal durations, 2 %
errors, a quarter of them sampled at 0.5), then times each question, median of the rounds.
The newest `--waiting` rows (default: the most the store leaves, one short of its bulk step) are
left outside the sorted durations, so that the percentiles also read them from `otel_traces`.
Goal (issue 5): p95-by-function over 1,000,000 events under 200 ms.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sdk_telemetry_exporters import attributes as attr

from sdk_telemetry.store import _rows, _sqlite
from sdk_telemetry.store.queries import Filters, function_stats, top_errors

BATCH = 10_000


def build(path: Path, events: int, functions: int) -> None:
    """Fill `path` with `events` invocation spans (skipped when it already holds them)."""
    connection = _sqlite.connect(path)
    (present,) = connection.execute("SELECT COUNT(*) FROM otel_traces").fetchone()
    if present >= events:
        return
    rng = random.Random(42)
    names = [f"Client{i % 5}.method_{i}" for i in range(functions)]
    now = time.time_ns()
    resources = [
        {attr.SERVICE_NAME: f"svc-{s}", attr.DEPLOYMENT_ENVIRONMENT: env, attr.SESSION_ID: f"session-{s}-{env}"}
        for s in range(3)
        for env in ("production", "staging")
    ]
    started = time.perf_counter()
    for offset in range(present, events, BATCH):
        rows = []
        for i in range(offset, min(events, offset + BATCH)):
            error = rng.random() < 0.02
            attributes: dict[str, object] = {"code.function.name": "x"}
            if i % 4 == 0:
                attributes[attr.SAMPLE_RATE] = 0.5
            if error:
                attributes[attr.ERROR_TYPE] = rng.choice(("ValueError", "TimeoutError", "KeyError"))
            rows.append(
                _rows.trace_row(
                    timestamp=now - (events - i) * 1_000_000,
                    trace_id=f"{i:032x}",
                    span_id=f"{i:016x}",
                    name=names[i % functions],
                    duration=int(rng.lognormvariate(15, 1)),
                    resource=resources[i % len(resources)],
                    attributes=attributes,
                    scope=attr.INVOCATION_SCOPE,
                    status="Error" if error else "Unset",
                    status_message="boom" if error else "",
                )
            )
        with connection:
            connection.execute("BEGIN IMMEDIATE")
            _sqlite.insert_spans(connection, rows)
    connection.execute("ANALYZE")
    connection.close()
    elapsed = time.perf_counter() - started
    print(f"built {events - present:,} rows in {elapsed:.1f} s ({(events - present) / elapsed:,.0f} rows/s)")


def leave_waiting(path: Path, rows: int) -> None:
    """Take the newest `rows` rows out of the sorted durations, as if not yet moved in."""
    connection = _sqlite.connect(path)
    with connection:
        connection.execute("BEGIN IMMEDIATE")
        _sqlite.rebuild_durations(connection)
        (top,) = connection.execute("SELECT MAX(rowid) FROM otel_traces").fetchone()
        connection.execute("DELETE FROM otel_traces_durations WHERE TraceRow > ?", (top - rows,))
        connection.execute("UPDATE otel_traces_durations_through SET TraceRow = ?", (top - rows,))
    connection.close()


def timed(label: str, rounds: int, call: object) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()  # type: ignore[operator]
        samples.append((time.perf_counter() - started) * 1000)
    median = statistics.median(samples)
    print(f"{label:<58} {median:9.1f} ms  (min {min(samples):.1f}, max {max(samples):.1f})")
    return median


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--functions", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--store", type=Path, default=None)
    parser.add_argument("--waiting", type=int, default=_sqlite.DURATION_BATCH_ROWS - 1)
    args = parser.parse_args()
    path = args.store or Path(tempfile.gettempdir()) / f"sdk-telemetry-bench-{args.events}-{args.functions}.sqlite3"
    build(path, args.events, args.functions)
    leave_waiting(path, args.waiting)
    connection = _sqlite.connect(path, create=False)
    print(
        f"store {path}: {_sqlite.storage_bytes(path) / 1e6:,.0f} MB, "
        f"{args.events:,} invocations, {args.functions} functions, {args.waiting:,} of them not sorted in yet"
    )
    # The store's own time range: a reused store was built earlier than now.
    first, last = connection.execute("SELECT MIN(Timestamp), MAX(Timestamp) FROM otel_traces").fetchone()
    goal = timed(
        "function_stats (count, errors, mean, p50/p95/p99, max)", args.rounds, lambda: function_stats(connection)
    )
    timed(
        "  … one service (a third of the rows)",
        args.rounds,
        lambda: function_stats(connection, Filters(service="svc-1")),
    )
    timed(
        "  … last 10 % of the time range",
        args.rounds,
        lambda: function_stats(connection, Filters(start=(first + (last - first) * 0.9) / 1e9)),
    )
    timed("top_errors (by type, sample message)", args.rounds, lambda: top_errors(connection))
    print(
        f"goal: p95-by-function over {args.events:,} events < 200 ms: "
        f"{'met' if goal < 200 else 'NOT met'} ({goal:.0f} ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
