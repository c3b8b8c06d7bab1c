"""Retention: raw spans, events and metric values older than N days are deleted, in small steps.

Each step deletes at most `STEP_ROWS` rows per table in a transaction of its own, so that a
writer that runs the steps as separate jobs serves requests between them (a sweep of a million
rows would otherwise hold the store for seconds), and so that a step needs little journal space:
on a full disk the WAL is checkpointed first, and the deleted rows' pages take new rows.
"""

from __future__ import annotations

import sqlite3
import time

DEFAULT_RETENTION_DAYS = 7.0
NS_PER_DAY = 86_400 * 1_000_000_000
#: Rows per table deleted in one step (one transaction).
STEP_ROWS = 2_000
_SQLITE_FULL = 13
_STEPS = (
    ("spans", "DELETE FROM otel_traces WHERE rowid IN (SELECT rowid FROM otel_traces WHERE Timestamp < ? LIMIT ?)"),
    (
        "events",
        "DELETE FROM otel_logs WHERE EventId IN (SELECT EventId FROM otel_logs WHERE Timestamp < ? LIMIT ?)",
    ),
    (
        "metrics",
        "DELETE FROM otel_metrics_gauge WHERE MetricId IN"
        " (SELECT MetricId FROM otel_metrics_gauge WHERE TimeUnix < ? LIMIT ?)",
    ),
)


def retention_cutoff(days: float, now_ns: int | None = None) -> int | None:
    """Rows stamped before this (nanoseconds) are expired; None when `days` <= 0 (keep everything)."""
    if days <= 0:
        return None
    return (now_ns if now_ns is not None else time.time_ns()) - int(days * NS_PER_DAY)


def retention_step(connection: sqlite3.Connection, cutoff: int, rows: int = STEP_ROWS) -> dict[str, int]:
    """Delete at most `rows` expired rows per table in one transaction; rows deleted per table (all
    zero: nothing is left to delete). On a full disk the WAL is checkpointed and the step tried again."""
    try:
        return _step(connection, cutoff, rows)
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorcode", None) != _SQLITE_FULL:
            raise
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return _step(connection, cutoff, rows)


def _step(connection: sqlite3.Connection, cutoff: int, rows: int) -> dict[str, int]:
    with connection:
        connection.execute("BEGIN IMMEDIATE")
        deleted = {table: connection.execute(sql, (cutoff, rows)).rowcount for table, sql in _STEPS}
        if deleted["spans"]:
            connection.execute("DELETE FROM otel_traces_summary WHERE Kept <= 0")
    return deleted


def apply_retention(connection: sqlite3.Connection, days: float, now_ns: int | None = None) -> dict[str, int]:
    """Delete rows older than `days` (by their own timestamp), step by step; rows deleted per table.

    `days` <= 0 keeps everything. A row replayed late (an SDK's spool after an outage) is kept
    until it is itself older than the limit.
    """
    total = {"spans": 0, "events": 0, "metrics": 0}
    cutoff = retention_cutoff(days, now_ns)
    while cutoff is not None:
        deleted = retention_step(connection, cutoff)
        for table, count in deleted.items():
            total[table] += count
        if not any(deleted.values()):
            break
    return total
