"""Rollups survive `kill -9`: a process exporting real OpenTelemetry spans through the local
exporter (each batch twice, as a retry after a lost answer would) is killed mid-way, again and
again; afterwards the rollups equal a recount of the raw rows."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from sdk_telemetry.store import _sqlite
from tests.helpers.processes import child_env
from tests.store.test_rollups import recount, rollup_table

CHILD = textwrap.dedent(
    """
    import random, sys, time
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import Status, StatusCode
    from sdk_telemetry.store.exporter import LocalSpanExporter

    path, seed = sys.argv[1], int(sys.argv[2])
    rng = random.Random(seed)
    memory = InMemorySpanExporter()
    exporters = []
    for service in ("api", "worker"):
        provider = TracerProvider(resource=Resource.create({"service.name": service,
                                                            "deployment.environment.name": "prod"}))
        provider.add_span_processor(SimpleSpanProcessor(memory))
        exporters.append(provider.get_tracer("sdk_telemetry"))
    store = LocalSpanExporter(path)
    now = time.time_ns()
    previous = []
    while True:
        for _ in range(1500):
            tracer = rng.choice(exporters)
            start = now - rng.randrange(40 * 86_400 * 10**9)
            span = tracer.start_span(rng.choice(("Client.get", "Client.put", "Tools.run")), start_time=start)
            if rng.random() < 0.3:
                span.set_attribute("sdk_telemetry.sample_rate", 0.5)
            if rng.random() < 0.1:
                span.set_status(Status(StatusCode.ERROR, "boom"))
            span.end(end_time=start + int(rng.lognormvariate(15, 1.5)))
        batch = list(memory.get_finished_spans())
        memory.clear()
        for spans in (batch, batch, previous[-200:] + batch[:300]):  # the batch, its retry, an overlap
            assert store.export(spans).name == "SUCCESS", store.last_error
        previous = batch
        print("batch", flush=True)
    """
)


def stored(path: Path) -> int:
    connection = sqlite3.connect(path, timeout=10)
    try:
        return int(connection.execute("SELECT COUNT(*) FROM otel_traces").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0
    finally:
        connection.close()


def test_rollups_equal_a_recount_after_writers_are_killed_mid_way(tmp_path: Path) -> None:
    path = tmp_path / "killed.sqlite3"
    rng = random.Random(9)
    kills = 0
    for seed in range(4):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), str(seed)], env=child_env(), stdout=subprocess.PIPE, text=True
        )
        try:
            assert child.stdout is not None
            assert child.stdout.readline() == "batch\n", "the writer did not store a batch"
            before = stored(path)
            time.sleep(rng.uniform(0.05, 0.6))  # somewhere in a later batch's transactions
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(10)
        assert child.returncode == -signal.SIGKILL
        kills += 1
        assert stored(path) >= before
    connection = _sqlite.connect(path)
    rows = connection.execute("SELECT COUNT(*) FROM otel_traces").fetchone()[0]
    assert kills == 4 and rows >= 4 * 1500
    assert rollup_table(connection) == recount(connection)
    per_tier = connection.execute("SELECT Tier, SUM(Kept) FROM otel_traces_rollups GROUP BY Tier").fetchall()
    assert per_tier == [("day", rows), ("hour", rows), ("month", rows), ("week", rows)]
    (calls,) = connection.execute("SELECT SUM(1.0 / SampleRate) FROM otel_traces").fetchone()
    assert connection.execute("SELECT SUM(Calls) FROM otel_traces_rollups WHERE Tier = 'hour'").fetchone() == (calls,)
