"""Time the analyses over N stored calls in the embedded store: python bench/analytics.py [N] (default 1,000,000).

Rows are inserted with the store's own column list: sessions of ten calls over five functions,
3 % errors, one call every 0.5 s. Prints one line per analysis.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from pathlib import Path

from sdk_telemetry.analytics import TimeRange, adoption, funnel, journeys, open_source, performance, retention, summary
from sdk_telemetry.dashboard._data import overview
from sdk_telemetry.store import _sqlite

NAMES = ["Client.login", "Tools.list", "Tools.execute", "Tools.search", "Files.upload"]


def fill(path: Path, count: int) -> None:
    connection = _sqlite.connect(path)
    rng = random.Random(1)
    now = time.time_ns()
    rows = []
    for i in range(count):
        session = i // 10
        name = NAMES[i % 10] if i % 10 < 2 else rng.choice(NAMES[2:])
        failed = rng.random() < 0.03
        resource = {"service.name": "acme", "session.id": f"s{session}", "enduser.id": f"u{session % 5000}"}
        row = {
            "Timestamp": now - (count - i) * 500_000_000, "TraceId": f"{i:032x}", "SpanId": f"{i:016x}",
            "ParentSpanId": "", "TraceState": "", "SpanName": name, "SpanKind": "Internal", "ServiceName": "acme",
            "ResourceAttributes": json.dumps(resource), "ScopeName": "sdk_telemetry", "ScopeVersion": "0.1",
            "SpanAttributes": "{}", "Duration": int(rng.lognormvariate(18, 0.5)),
            "StatusCode": "Error" if failed else "Ok", "StatusMessage": "E: x" if failed else "", "Events": "[]",
            "Links": "[]", "SampleRate": 1.0, "Environment": "", "SessionId": f"s{session}",
        }  # fmt: skip
        rows.append(tuple(row[column] for column in _sqlite.TRACE_COLUMNS))
        if len(rows) == 10_000:
            with connection:
                connection.executemany(_sqlite.INSERT, rows)
            rows = []
    with connection:
        connection.executemany(_sqlite.INSERT, rows)
    connection.close()


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "bench.sqlite3"
        fill(path, count)
        with open_source(path) as source:
            recent = TimeRange.last(300)
            cases = [
                ("performance of one function, 60 buckets", lambda: performance(source, "Tools.execute")),
                ("performance of all calls, 60 buckets", lambda: performance(source, None)),
                ("funnel, 3 steps per session", lambda: funnel(source, NAMES[:3], 3600)),
                ("journeys per session", lambda: journeys(source)),
                ("retention per user by day", lambda: retention(source, period="day")),
                ("adoption per session by day", lambda: adoption(source)),
                ("dashboard page data, last 24 h", lambda: overview(source, "24h")),
                ("dashboard page data, everything", lambda: overview(source, "all")),
                ("one monitor rule: p95 over the last 5 min", lambda: summary(source, "Tools.execute", recent)),
            ]  # fmt: skip
            for label, run in cases:
                started = time.perf_counter()
                run()
                print(f"{count:>10,} calls  {label:<44} {time.perf_counter() - started:8.3f} s", flush=True)


if __name__ == "__main__":
    main()
