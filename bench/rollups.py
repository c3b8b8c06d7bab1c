"""Rollups at scale: insert N invocation spans spread over 100 days (time order, batches of 1,000,
as the receiver commits them), apply the default retention (raw 7 days; hour 30, day 90), then time
the reads of a 90-day view from rollups: the per-day series and the per-function figures.

    python bench/rollups.py [--spans 1000000] [--store PATH]
"""

from __future__ import annotations

import argparse
import functools
import math
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from sdk_telemetry_exporters.attributes import INVOCATION_SCOPE, SAMPLE_RATE

from sdk_telemetry.store import _sqlite
from sdk_telemetry.store._rows import TraceRow, dumps, trace_row
from sdk_telemetry.store.reader import Buckets, Scope
from sdk_telemetry.store.retention import apply_retention
from sdk_telemetry.store.rollups import NS_PER_DAY, Group, bucket_start, raw_complete_since, read_rollups

NOW = time.time_ns()


def generate(count: int, batch: int = 1000) -> Iterator[list[TraceRow]]:
    """`count` invocation spans evenly over the 100 days before NOW, 20 functions, 4 resources."""
    rng = random.Random(1)
    functions = [
        (f"Client{i % 5}.method{i}", math.log(rng.uniform(2e5, 5e7)), rng.uniform(0.3, 1.5)) for i in range(20)
    ]
    resources = [
        {"service.name": service, "deployment.environment.name": env}
        for service in ("api", "worker")
        for env in ("prod", "staging")
    ]
    encoded = [dumps(resource) for resource in resources]
    start, step = NOW - 100 * NS_PER_DAY, 100 * NS_PER_DAY // count
    rows: list[TraceRow] = []
    for n in range(count):
        name, mu, sigma = functions[n % 20]
        which = n % 4
        rate = 0.5 if n % 7 == 0 else 1.0
        rows.append(
            trace_row(
                timestamp=start + n * step,
                trace_id=f"{n + 1:032x}",
                span_id=f"{n + 1:016x}",
                name=name,
                duration=int(rng.lognormvariate(mu, sigma)),
                resource=resources[which],
                resource_json=encoded[which],
                attributes={SAMPLE_RATE: rate} if rate != 1.0 else {},
                scope=INVOCATION_SCOPE,
                status="Error" if n % 31 == 0 else "Ok",
            )
        )
        if len(rows) == batch:
            yield rows
            rows = []
    if rows:
        yield rows


def timed(function: Callable[[], object], rounds: int = 5) -> float:
    """The median wall time (ms) of `function()`."""
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        function()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--store", type=Path, default=None)
    options = parser.parse_args()
    path = options.store or Path(tempfile.mkdtemp()) / "rollups.sqlite3"
    connection = _sqlite.connect(path)
    began = time.perf_counter()
    for rows in generate(options.spans):
        with connection:
            connection.execute("BEGIN IMMEDIATE")
            _sqlite.insert_spans(connection, rows)
    seconds = time.perf_counter() - began
    rate = options.spans / seconds
    print(f"inserted {options.spans:,} spans in {seconds:.1f} s ({rate:,.0f} spans/s), rollups included")
    began = time.perf_counter()
    deleted = apply_retention(connection, 7, now_ns=NOW)
    print(f"retention: {deleted} in {time.perf_counter() - began:.1f} s")
    before = raw_complete_since(connection)
    assert before is not None
    start = bucket_start("day", NOW - 90 * NS_PER_DAY) + NS_PER_DAY
    scope = Scope(start=start, end=NOW)
    (buckets,) = connection.execute("SELECT COUNT(*) FROM otel_traces_rollups").fetchone()
    print(f"{buckets:,} rollup buckets; raw rows complete from {(NOW - before) / NS_PER_DAY:.1f} days ago")
    groupings: list[tuple[str, Group]] = [("per day", Buckets(start, NS_PER_DAY)), ("per function", "function")]
    for label, group in [*groupings, ("overall", None)]:
        groups, origins = read_rollups(connection, scope, group, before)
        ms = timed(functools.partial(read_rollups, connection, scope, group, before))
        print(f"90 days {label}: {len(groups)} groups from {origins} in {ms:.1f} ms (rollups part)")


if __name__ == "__main__":
    main()
