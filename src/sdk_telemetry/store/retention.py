"""Retention: raw spans, events and metric values older than N days are deleted."""

from __future__ import annotations

import sqlite3
import time

DEFAULT_RETENTION_DAYS = 7.0
NS_PER_DAY = 86_400 * 1_000_000_000


def apply_retention(connection: sqlite3.Connection, days: float, now_ns: int | None = None) -> dict[str, int]:
    """Delete rows older than `days` (by their own timestamp) in one transaction; rows deleted per table.

    `days` <= 0 keeps everything. A row replayed late (an SDK's spool after an outage) is kept
    until it is itself older than the limit.
    """
    if days <= 0:
        return {"spans": 0, "events": 0, "metrics": 0}
    cutoff = (now_ns if now_ns is not None else time.time_ns()) - int(days * NS_PER_DAY)
    with connection:
        spans = connection.execute("DELETE FROM otel_traces WHERE Timestamp < ?", (cutoff,)).rowcount
        events = connection.execute("DELETE FROM otel_logs WHERE Timestamp < ?", (cutoff,)).rowcount
        metrics = connection.execute("DELETE FROM otel_metrics_gauge WHERE TimeUnix < ?", (cutoff,)).rowcount
        connection.execute("DELETE FROM otel_traces_summary WHERE Kept <= 0")
    return {"spans": spans, "events": events, "metrics": metrics}
