"""The receiver's one writer: a thread that commits accepted batches to the store in groups.

Request handlers hand over whole batches and wait for the commit, so "accepted" means "on
disk"; each learns how many of its rows were new and how many were already stored. A bounded
backlog (in rows) turns overload into `Overloaded` (503 with Retry-After) instead of unbounded
memory. A group that cannot be committed is retried batch by batch, so that one client's batch
that cannot be stored fails alone. `close()` commits everything already handed over.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdk_telemetry.store import connect, insert_events, insert_metrics, insert_spans

_logger = logging.getLogger(__name__)
#: Rows committed in one transaction at most (several requests' batches together).
GROUP_ROWS = 10_000
#: SQLite's "database or disk is full".
SQLITE_FULL = 13


class Overloaded(RuntimeError):
    """The backlog is full; the client should retry after a pause."""


@dataclass(frozen=True)
class Outcome:
    """What became of a committed batch: rows newly stored, rows that were stored already."""

    stored: int
    duplicates: int


@dataclass
class Batch:
    """Rows for the three tables, committed together (all or nothing)."""

    spans: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    metrics: list[tuple[Any, ...]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.spans) + len(self.events) + len(self.metrics)


Job = Callable[[Any], Any]


class StoreWriter:
    """Commits batches to the SQLite store at `path` from one thread."""

    def __init__(
        self, path: Path, max_backlog_rows: int = 100_000, mirror: Callable[[Batch], None] | None = None
    ) -> None:
        self.path = path
        #: Called on the writer thread with what each commit newly stored (spans, events, metric values:
        #: a ClickHouse copy).
        self.mirror = mirror
        self.mirrored_rows = 0
        self.mirror_failed_rows = 0
        self.mirror_last_error: str | None = None
        self.max_backlog_rows = max_backlog_rows
        self._queue: queue.SimpleQueue[tuple[Batch | Job, Future[Any]] | None] = queue.SimpleQueue()
        self._backlog = 0
        self._lock = threading.Lock()
        self._closed = False
        #: Rows newly stored, rows that were stored already (a resend), batches refused by the store,
        #: groups retried batch by batch.
        self.committed_rows = 0
        self.duplicate_rows = 0
        self.failed_batches = 0
        self.isolated_groups = 0
        self.rejected_overload = 0
        #: Set while the store's disk is full (SQLite's SQLITE_FULL): what the last write said.
        self.storage_full: str | None = None
        self._connection = connect(path)
        self._connection.execute("PRAGMA wal_autocheckpoint = 10000")
        self._thread = threading.Thread(target=self._run, name="sdk-telemetry-store-writer", daemon=True)
        self._thread.start()

    @property
    def backlog(self) -> int:
        """Rows handed over and not yet committed."""
        return self._backlog

    def submit(self, batch: Batch) -> Future[Any]:
        """Queue `batch`; the future resolves when it is committed. Raises `Overloaded` when full."""
        size = len(batch)
        with self._lock:
            if self._closed:
                raise Overloaded("the receiver is shutting down")
            if self._backlog and self._backlog + size > self.max_backlog_rows:
                self.rejected_overload += 1
                raise Overloaded(f"{self._backlog} rows waiting to be stored")
            self._backlog += size
        future: Future[Any] = Future()
        self._queue.put((batch, future))
        return future

    def run_job(self, job: Job) -> Future[Any]:
        """Run `job(connection)` on the writer thread, between commits (retention, for example)."""
        future: Future[Any] = Future()
        self._queue.put((job, future))
        return future

    def close(self, timeout: float = 30.0) -> None:
        """Commit what was handed over, then stop the thread and close the file."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)
        self._connection.close()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            work, future = item
            if not isinstance(work, Batch):
                self._run_job(work, future)
                continue
            group = [(work, future)]
            rows = len(work)
            stop = False
            while rows < GROUP_ROWS:
                try:
                    following = self._queue.get_nowait()
                except queue.Empty:
                    break
                if following is None:
                    stop = True
                    break
                if not isinstance(following[0], Batch):
                    self._commit(group)
                    group, rows = [], 0
                    self._run_job(following[0], following[1])
                    continue
                group.append((following[0], following[1]))
                rows += len(following[0])
            if group:
                self._commit(group)
            if stop:
                return

    def _commit(self, group: list[tuple[Batch, Future[Any]]]) -> None:
        size = sum(len(batch) for batch, _ in group)
        try:
            self._commit_isolated(group)
        finally:
            with self._lock:
                self._backlog -= size

    def _commit_isolated(self, group: list[tuple[Batch, Future[Any]]]) -> None:
        """Commit `group` in one transaction; when that fails, each batch in a transaction of its
        own, so that only the batch that cannot be stored is refused."""
        try:
            with self._connection:
                self._connection.execute("BEGIN IMMEDIATE")
                outcomes, stored = self._insert_group([batch for batch, _ in group])
        except Exception as exc:
            if len(group) > 1:
                _logger.info("sdk-telemetry serve: a group of %d batches failed (%s); retrying each", len(group), exc)
                self.isolated_groups += 1
                for member in group:
                    self._commit_isolated([member])
                return
            _logger.warning("sdk-telemetry serve: could not store %d row(s): %s", len(group[0][0]), exc)
            self.failed_batches += 1
            if getattr(exc, "sqlite_errorcode", None) == SQLITE_FULL:
                self.storage_full = str(exc)
            _settle(group[0][1], exception=exc)
            return
        self.storage_full = None
        self.committed_rows += sum(outcome.stored for outcome in outcomes)
        self.duplicate_rows += sum(outcome.duplicates for outcome in outcomes)
        for (_, future), outcome in zip(group, outcomes, strict=True):
            _settle(future, outcome)
        self._mirror(stored)

    def _insert_group(self, batches: list[Batch]) -> tuple[list[Outcome], Batch]:
        """Insert the batches' rows (spans in one insert for the whole group); each batch's outcome,
        and the rows that were new."""
        stored = Batch()
        new = [0] * len(batches)
        all_spans = batches[0].spans if len(batches) == 1 else [row for batch in batches for row in batch.spans]
        if all_spans:
            stored.spans = insert_spans(self._connection, all_spans)
            if len(stored.spans) == len(all_spans):
                new = [len(batch.spans) for batch in batches]
            else:  # some were stored already: each new row counts for the first batch that has it
                fresh = {(row[1], row[2]) for row in stored.spans}
                for index, batch in enumerate(batches):
                    for row in batch.spans:
                        key = (row[1], row[2])
                        if key in fresh:
                            fresh.discard(key)
                            new[index] += 1
        for index, batch in enumerate(batches):
            if batch.events:
                unstored = _unstored_events(self._connection, batch.events) if self.mirror else []
                new[index] += insert_events(self._connection, batch.events)
                stored.events += unstored
            if batch.metrics:
                metrics = insert_metrics(self._connection, batch.metrics)
                stored.metrics += metrics
                new[index] += len(metrics)
        return [Outcome(count, len(batch) - count) for batch, count in zip(batches, new, strict=True)], stored

    def _mirror(self, stored: Batch) -> None:
        if self.mirror is None or not len(stored):
            return
        try:
            self.mirror(stored)
            self.mirrored_rows += len(stored)
        except Exception as exc:  # the rows are safe in the store; the copy is counted as failed
            self.mirror_failed_rows += len(stored)
            self.mirror_last_error = f"{type(exc).__name__}: {exc}"
            _logger.warning("sdk-telemetry serve: could not copy %d row(s) to ClickHouse: %s", len(stored), exc)

    def _run_job(self, job: Job, future: Future[Any]) -> None:
        if not future.set_running_or_notify_cancel():
            return  # its waiter gave up (a query cancelled, the server stopping): nothing to answer
        try:
            result = job(self._connection)
        except Exception as exc:
            _settle(future, exception=exc)
        else:
            _settle(future, result)


def _unstored_events(connection: Any, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The rows whose event id (`EventId`, the second column) is not in `otel_logs` yet, each id once:
    what inserting `rows` will newly store (asked before the insert, so that only those are copied)."""
    unique = {row[1]: row for row in reversed(rows)}  # the first row with an id wins, as INSERT OR IGNORE
    ids = list(unique)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for (found,) in connection.execute(
            f"SELECT EventId FROM otel_logs WHERE EventId IN ({', '.join('?' * len(chunk))})", chunk
        ):
            unique.pop(found, None)
    return [row for row in rows if unique.get(row[1]) is row]


def _settle(future: Future[Any], result: Any = None, exception: BaseException | None = None) -> None:
    """Complete `future`, unless its waiter cancelled it meanwhile: then there is no one to tell (a
    batch stays stored: the client retries it and the duplicate is dropped), and the writer goes on."""
    try:
        if exception is None:
            future.set_result(result)
        else:
            future.set_exception(exception)
    except InvalidStateError:
        _logger.debug("sdk-telemetry serve: a waiter gave up before its write completed")
