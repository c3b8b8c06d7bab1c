"""The embedded store: one SQLite file in WAL mode, so that several processes can write at once.

The table follows the OpenTelemetry Collector's ClickHouse `otel_traces` schema (maps and
nested events as JSON text), so that the same questions can be asked of a ClickHouse cluster.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS otel_traces (
    Timestamp          INTEGER NOT NULL,   -- span start, nanoseconds since the epoch
    TraceId            TEXT NOT NULL,
    SpanId             TEXT NOT NULL,
    ParentSpanId       TEXT NOT NULL DEFAULT '',
    TraceState         TEXT NOT NULL DEFAULT '',
    SpanName           TEXT NOT NULL,
    SpanKind           TEXT NOT NULL,
    ServiceName        TEXT NOT NULL DEFAULT '',
    ResourceAttributes TEXT NOT NULL DEFAULT '{}',
    ScopeName          TEXT NOT NULL DEFAULT '',
    ScopeVersion       TEXT NOT NULL DEFAULT '',
    SpanAttributes     TEXT NOT NULL DEFAULT '{}',
    Duration           INTEGER NOT NULL,   -- nanoseconds
    StatusCode         TEXT NOT NULL,      -- Unset, Ok or Error
    StatusMessage      TEXT NOT NULL DEFAULT '',
    Events             TEXT NOT NULL DEFAULT '[]',
    Links              TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (TraceId, SpanId)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS otel_traces_name_duration ON otel_traces (ScopeName, SpanName, Duration);
CREATE INDEX IF NOT EXISTS otel_traces_timestamp ON otel_traces (Timestamp);
"""

COLUMNS = (
    "Timestamp",
    "TraceId",
    "SpanId",
    "ParentSpanId",
    "TraceState",
    "SpanName",
    "SpanKind",
    "ServiceName",
    "ResourceAttributes",
    "ScopeName",
    "ScopeVersion",
    "SpanAttributes",
    "Duration",
    "StatusCode",
    "StatusMessage",
    "Events",
    "Links",
)
INSERT = f"INSERT OR IGNORE INTO otel_traces ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
BUSY_TIMEOUT_MS = 10_000


def connect(path: Path, create: bool = True) -> sqlite3.Connection:
    """Open the store (creating the file and schema when `create`); raises `FileNotFoundError` otherwise."""
    if not create and not path.exists():
        raise FileNotFoundError(f"no telemetry store at {path}")
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
    connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if create:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        connection.executescript(SCHEMA)
    return connection
