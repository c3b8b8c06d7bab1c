"""The receiver's store writer outlives waiters that give up: a cancelled query is skipped, a batch
whose request went away is still stored, and the writer goes on with the next work."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sdk_telemetry.receiver._mapping import invocation_rows
from sdk_telemetry.receiver._writer import Batch, Outcome, StoreWriter


def rows(first: int, count: int) -> list[Any]:
    payloads: list[Any] = [
        {
            "functionName": "Client.call",
            "durationMs": 1.0 + n,
            "timestamp": time.time(),
            "metadata": {"eventId": f"{n + 1:032x}{n + 1:016x}"},
        }
        for n in range(first, first + count)
    ]
    return invocation_rows(payloads, None, b"[]", {}, time.time_ns(), Counter())


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[StoreWriter]:
    running = StoreWriter(tmp_path / "writer.sqlite3")
    yield running
    running.close(timeout=5)


def stored(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        (count,) = connection.execute("SELECT count(*) FROM otel_traces").fetchone()
    return int(count)


def block(writer: StoreWriter) -> threading.Event:
    """Hold the writer thread inside a job until the returned event is set."""
    release = threading.Event()
    started = threading.Event()

    def hold(_: Any) -> None:
        started.set()
        release.wait(10)

    writer.run_job(hold)
    assert started.wait(5)
    return release


def test_a_cancelled_job_is_skipped_and_the_writer_goes_on(writer: StoreWriter) -> None:
    release = block(writer)
    ran = threading.Event()
    cancelled = writer.run_job(lambda _: ran.set())
    assert cancelled.cancel()
    release.set()
    assert writer.submit(Batch(spans=rows(0, 3))).result(timeout=5) == Outcome(stored=3, duplicates=0)
    assert not ran.is_set()
    assert stored(writer.path) == 3


def test_a_batch_whose_waiter_gave_up_is_stored_and_the_next_one_too(writer: StoreWriter) -> None:
    release = block(writer)
    abandoned = writer.submit(Batch(spans=rows(0, 5)))
    assert abandoned.cancel()  # the request went away before the commit
    release.set()
    assert writer.submit(Batch(spans=rows(5, 2))).result(timeout=5) == Outcome(stored=2, duplicates=0)
    assert stored(writer.path) == 7
    assert writer.committed_rows == 7
