"""Retention: raw spans, events and metric values older than N days are deleted, in small steps;
each rollup tier's buckets after their own number of days (hour 30, day 90, week 180, month 365).

Deleting raw spans records from when the raw rows are complete (the first hour start at or after
the cutoff), and deleting a tier's buckets from when that tier is, so that readers take the part
of a range before it from rollups.

Each step deletes at most `STEP_ROWS` rows per table in a transaction of its own, so that a
writer that runs the steps as separate jobs serves requests between them (a sweep of a million
rows would otherwise hold the store for seconds), and so that a step needs little journal space:
on a full disk the WAL is checkpointed first, and the deleted rows' pages take new rows.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping

from sdk_telemetry.store.rollups import Tier, first_start_from, record_complete_since, rollup_retention_step

DEFAULT_RETENTION_DAYS = 7.0
#: Days each rollup tier is kept (after Rive's tiers).
DEFAULT_ROLLUP_DAYS: dict[Tier, float] = {"hour": 30.0, "day": 90.0, "week": 180.0, "month": 365.0}
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


def rollup_cutoffs(days: Mapping[Tier, float] | None = None, now_ns: int | None = None) -> dict[Tier, int]:
    """Per tier (`days` over `DEFAULT_ROLLUP_DAYS`), buckets starting before this (ns) are expired;
    a tier kept forever (<= 0 days) is absent."""
    now = now_ns if now_ns is not None else time.time_ns()
    kept = {**DEFAULT_ROLLUP_DAYS, **(days or {})}
    return {tier: cutoff for tier, limit in kept.items() if (cutoff := retention_cutoff(limit, now)) is not None}


def retention_step(
    connection: sqlite3.Connection,
    cutoff: int | None,
    rows: int = STEP_ROWS,
    rollups: Mapping[Tier, int] | None = None,
) -> dict[str, int]:
    """Delete at most `rows` expired rows per table (raw rows before `cutoff`, None: none; rollup
    buckets before their tier's cutoff in `rollups`) in one transaction; rows deleted per table (all
    zero: nothing is left to delete). On a full disk the WAL is checkpointed and the step tried again."""
    try:
        return _step(connection, cutoff, rows, rollups or {})
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorcode", None) != _SQLITE_FULL:
            raise
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return _step(connection, cutoff, rows, rollups or {})


def _step(connection: sqlite3.Connection, cutoff: int | None, rows: int, rollups: Mapping[Tier, int]) -> dict[str, int]:
    with connection:
        connection.execute("BEGIN IMMEDIATE")
        deleted = {table: 0 for table, _ in _STEPS}
        if cutoff is not None:
            deleted = {table: connection.execute(sql, (cutoff, rows)).rowcount for table, sql in _STEPS}
        if cutoff is not None and deleted["spans"]:
            connection.execute("DELETE FROM otel_traces_summary WHERE Kept <= 0")
            # Raw rows are complete from the cutoff on; an hour start, where the hour tier takes over.
            record_complete_since(connection, "raw", first_start_from("hour", cutoff))
        deleted["rollups"] = rollup_retention_step(connection, rollups, rows)
    return deleted


def apply_retention(
    connection: sqlite3.Connection,
    days: float,
    now_ns: int | None = None,
    rollup_days: Mapping[Tier, float] | None = None,
) -> dict[str, int]:
    """Delete rows older than `days` (by their own timestamp), and rollup buckets older than their
    tier's days (`rollup_days` over `DEFAULT_ROLLUP_DAYS`), step by step; rows deleted per table.

    `days` <= 0 keeps everything. A row replayed late (an SDK's spool after an outage) is kept
    until it is itself older than the limit.
    """
    total = {"spans": 0, "events": 0, "metrics": 0, "rollups": 0}
    cutoff = retention_cutoff(days, now_ns)
    rollups = rollup_cutoffs(rollup_days, now_ns)
    while True:
        deleted = retention_step(connection, cutoff, rollups=rollups)
        for table, count in deleted.items():
            total[table] += count
        if not any(deleted.values()):
            break
    return total
