"""The embedded store: one SQLite file in WAL mode, so that several processes can write at once.

The tables follow the OpenTelemetry Collector's ClickHouse schema (`otel_traces`, `otel_logs`,
`otel_metrics_gauge`; maps and nested events as JSON text), so that the same questions can be
asked of a ClickHouse cluster. A few columns are added that ClickHouse reads from the maps
instead (`SampleRate`, `Environment`, `SessionId`), so that SQLite filters and scales without
parsing JSON on every row.

Percentiles walk `otel_traces_durations`, (ScopeName, SpanName, Duration) in order. A row would
land in such an index at a random place, dirtying about one page per row and commit (half the
cost of an insert), so rows join it in bulk instead, sorted, `DURATION_BATCH_ROWS` at a time:
rows above `otel_traces_durations_through` (the newest, by rowid) are read from `otel_traces`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sdk_telemetry_exporters.attributes import INVOCATION_SCOPE

from sdk_telemetry.store.rollups import add_calls, fill_rollups

#: Bumped when the schema changes; `connect()` migrates older files in place.
SCHEMA_VERSION = 6

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
    SampleRate         REAL NOT NULL DEFAULT 1.0,
    Environment        TEXT NOT NULL DEFAULT '',
    SessionId          TEXT NOT NULL DEFAULT '',
    UNIQUE (TraceId, SpanId)
);
CREATE INDEX IF NOT EXISTS otel_traces_timestamp ON otel_traces (Timestamp);
CREATE INDEX IF NOT EXISTS otel_traces_errors ON otel_traces (ScopeName) WHERE StatusCode = 'Error';
CREATE TABLE IF NOT EXISTS otel_traces_summary (
    ScopeName   TEXT NOT NULL,
    SpanName    TEXT NOT NULL,
    ServiceName TEXT NOT NULL,
    Environment TEXT NOT NULL,
    Kept        INTEGER NOT NULL,   -- spans stored
    Calls       REAL NOT NULL,      -- spans scaled by 1 / SampleRate
    Errors      REAL NOT NULL,      -- failed spans scaled by 1 / SampleRate
    DurationSum INTEGER NOT NULL,   -- nanoseconds, over the stored spans
    PRIMARY KEY (ScopeName, SpanName, ServiceName, Environment)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS otel_traces_summary_delete AFTER DELETE ON otel_traces BEGIN
    UPDATE otel_traces_summary SET Kept = Kept - 1, Calls = Calls - 1.0 / OLD.SampleRate,
        Errors = Errors - (OLD.StatusCode = 'Error') / OLD.SampleRate, DurationSum = DurationSum - OLD.Duration
    WHERE ScopeName = OLD.ScopeName AND SpanName = OLD.SpanName AND ServiceName = OLD.ServiceName
        AND Environment = OLD.Environment;
END;
CREATE TABLE IF NOT EXISTS otel_traces_durations (
    ScopeName TEXT NOT NULL,
    SpanName  TEXT NOT NULL,
    Duration  INTEGER NOT NULL,
    TraceRow  INTEGER NOT NULL,   -- otel_traces.rowid
    PRIMARY KEY (ScopeName, SpanName, Duration, TraceRow)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS otel_traces_durations_through (
    TraceRow INTEGER NOT NULL     -- the otel_traces rows up to this rowid are in otel_traces_durations
);
CREATE TRIGGER IF NOT EXISTS otel_traces_durations_delete AFTER DELETE ON otel_traces BEGIN
    DELETE FROM otel_traces_durations WHERE ScopeName = OLD.ScopeName AND SpanName = OLD.SpanName
        AND Duration = OLD.Duration AND TraceRow = OLD.rowid;
END;
CREATE TABLE IF NOT EXISTS otel_traces_rollups (
    Tier        TEXT NOT NULL,      -- hour, day, week (from Monday) or month, UTC
    BucketStart INTEGER NOT NULL,   -- nanoseconds since the epoch
    SpanName    TEXT NOT NULL,
    ServiceName TEXT NOT NULL,
    Environment TEXT NOT NULL,
    Kept        INTEGER NOT NULL,   -- invocation spans stored
    Calls       REAL NOT NULL,      -- scaled by 1 / SampleRate
    Errors      REAL NOT NULL,      -- failed ones, scaled by 1 / SampleRate
    DurationSum REAL NOT NULL,      -- nanoseconds, over the stored spans
    DurationMin INTEGER NOT NULL,
    DurationMax INTEGER NOT NULL,
    Sketch      TEXT NOT NULL,      -- the durations' sketch (store/sketch.py), JSON
    PRIMARY KEY (Tier, BucketStart, SpanName, ServiceName, Environment)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS otel_traces_rollups_folded (
    Through INTEGER NOT NULL        -- hour buckets starting before this are in the coarser tiers too
);
CREATE TABLE IF NOT EXISTS otel_traces_complete_since (
    Origin TEXT PRIMARY KEY,        -- raw, or a rollup tier, once retention deleted some of it
    Since  INTEGER NOT NULL         -- from this moment (ns) on it holds everything stored
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS otel_logs (
    Timestamp          INTEGER NOT NULL,   -- nanoseconds since the epoch
    EventId            TEXT NOT NULL,      -- the client's event id (dedup key)
    TraceId            TEXT NOT NULL DEFAULT '',
    SpanId             TEXT NOT NULL DEFAULT '',
    SeverityText       TEXT NOT NULL DEFAULT '',
    SeverityNumber     INTEGER NOT NULL DEFAULT 0,
    ServiceName        TEXT NOT NULL DEFAULT '',
    Body               TEXT NOT NULL DEFAULT '',
    ResourceAttributes TEXT NOT NULL DEFAULT '{}',
    ScopeName          TEXT NOT NULL DEFAULT '',
    LogAttributes      TEXT NOT NULL DEFAULT '{}',
    EventName          TEXT NOT NULL DEFAULT '',
    SessionId          TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (EventId)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS otel_logs_timestamp ON otel_logs (Timestamp);
CREATE TABLE IF NOT EXISTS otel_metrics_gauge (
    TimeUnix           INTEGER NOT NULL,   -- nanoseconds since the epoch
    MetricId           TEXT NOT NULL,      -- dedup key
    ServiceName        TEXT NOT NULL DEFAULT '',
    MetricName         TEXT NOT NULL,
    MetricUnit         TEXT NOT NULL DEFAULT '',
    Attributes         TEXT NOT NULL DEFAULT '{}',
    ResourceAttributes TEXT NOT NULL DEFAULT '{}',
    Value              REAL NOT NULL,
    PRIMARY KEY (MetricId)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS otel_metrics_gauge_name_time ON otel_metrics_gauge (MetricName, TimeUnix);
CREATE INDEX IF NOT EXISTS otel_metrics_gauge_time ON otel_metrics_gauge (TimeUnix);
"""

TRACE_COLUMNS = (
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
    "SampleRate",
    "Environment",
    "SessionId",
)
#: Kept for the foundation's name.
COLUMNS = TRACE_COLUMNS
LOG_COLUMNS = (
    "Timestamp",
    "EventId",
    "TraceId",
    "SpanId",
    "SeverityText",
    "SeverityNumber",
    "ServiceName",
    "Body",
    "ResourceAttributes",
    "ScopeName",
    "LogAttributes",
    "EventName",
    "SessionId",
)
METRIC_COLUMNS = (
    "TimeUnix",
    "MetricId",
    "ServiceName",
    "MetricName",
    "MetricUnit",
    "Attributes",
    "ResourceAttributes",
    "Value",
)


def _insert(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT OR IGNORE INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


INSERT = _insert("otel_traces", TRACE_COLUMNS)
INSERT_LOG = _insert("otel_logs", LOG_COLUMNS)
INSERT_METRIC = _insert("otel_metrics_gauge", METRIC_COLUMNS)
#: The parameters one statement may bind when the library cannot say (SQLite before 3.32).
_DEFAULT_MAX_VARIABLES = 999
#: Rows in one multi-row INSERT at most (a power of two).
_MAX_INSERT_ROWS = 1024


def insert_rows(connection: sqlite3.Connection, table: str, columns: tuple[str, ...], rows: Sequence[Any]) -> int:
    """`INSERT OR IGNORE` `rows` into `table`, many rows per statement; returns how many were new.

    `executemany` runs one statement per row and releases the GIL around each; while another
    thread holds the GIL (the receiver's event loop), each row then waits for it, up to the
    switch interval. Multi-row statements of power-of-two sizes (so that they stay in the
    statement cache) wait once per statement instead.
    """
    getlimit = getattr(connection, "getlimit", None)  # Python 3.11+
    limit = getattr(sqlite3, "SQLITE_LIMIT_VARIABLE_NUMBER", None)
    variables = getlimit(limit) if getlimit and limit is not None else _DEFAULT_MAX_VARIABLES
    size = min(_MAX_INSERT_ROWS, 1 << ((variables // len(columns)).bit_length() - 1))
    inserted, start = 0, 0
    while start < len(rows):
        while size > len(rows) - start:
            size //= 2
        chunk = rows[start : start + size]
        values = [value for row in chunk for value in row]
        inserted += connection.execute(_multi_row_insert(table, columns, size), values).rowcount
        start += size
    return inserted


@functools.lru_cache(maxsize=64)
def _multi_row_insert(table: str, columns: tuple[str, ...], rows: int) -> str:
    placeholders = f"({', '.join('?' * len(columns))})"
    return f"INSERT OR IGNORE INTO {table} ({', '.join(columns)}) VALUES {', '.join([placeholders] * rows)}"


BUSY_TIMEOUT_MS = 10_000
#: New rows join `otel_traces_durations` once this many are waiting (queries read them meanwhile).
DURATION_BATCH_ROWS = 50_000
#: Page cache per connection (KiB): the indexes of a million spans stay in memory.
CACHE_KIB = 65_536


def store_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The store file: `path`, or the configured one (`SDK_TELEMETRY_STORE` or the user data directory)."""
    if path is not None:
        return Path(path)
    from sdk_telemetry.config import resolve_settings

    return resolve_settings().store_path


def connect(path: Path, create: bool = True) -> sqlite3.Connection:
    """Open the store (creating the file and schema when `create`); raises `FileNotFoundError` otherwise.

    A store written by an older version is migrated in place.
    """
    if not create and not path.exists():
        raise FileNotFoundError(f"no telemetry store at {path}")
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
    connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    (version,) = connection.execute("PRAGMA user_version").fetchone()
    if version < SCHEMA_VERSION:
        connection.execute("PRAGMA journal_mode = WAL")
        with connection:
            connection.execute("BEGIN IMMEDIATE")
            (version,) = connection.execute("PRAGMA user_version").fetchone()
            if version < SCHEMA_VERSION:
                _migrate(connection)
    connection.execute("PRAGMA synchronous = NORMAL")
    connection.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    return connection


class StoreError(Exception):
    """The file given as a store cannot be read as one; the message is one line naming the file."""


def open_read_only(path: Path) -> sqlite3.Connection:
    """Open the store at `path` for reading only (SQLite `mode=ro`: no schema, no journal-mode change).

    Raises `FileNotFoundError` when there is no file, `StoreError` when the file is not a SQLite
    database, is damaged, or has no `otel_traces` table.
    """
    if not path.exists():
        raise FileNotFoundError(f"no telemetry store at {path}")
    if path.is_dir():
        raise StoreError(f"{path} is a directory, not a telemetry store")
    try:
        connection = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise StoreError(unreadable(path, exc)) from None
    try:
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        found = connection.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'otel_traces'")
        if found.fetchone() is None:
            raise StoreError(f"{path} is not a telemetry store (it has no otel_traces table)")
        connection.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    except sqlite3.Error as exc:
        connection.close()
        raise StoreError(unreadable(path, exc)) from None
    except StoreError:
        connection.close()
        raise
    return connection


def unreadable(path: Path, exc: sqlite3.Error) -> str:
    """The one line for a store SQLite could not read (`file is not a database`, a damaged image)."""
    return f"{path} cannot be read as a telemetry store: {exc}"


def _migrate(connection: sqlite3.Connection) -> None:
    """Create the tables (new rollups filled from the stored rows); a version-1 `otel_traces` (no
    derived columns, no summary) is rebuilt, and the per-row duration index of versions 2 to 4
    gives way to `otel_traces_durations`."""
    present = {row[1] for row in connection.execute("PRAGMA table_info(otel_traces)")}
    had_rollups = connection.execute("PRAGMA table_info(otel_traces_rollups)").fetchone() is not None
    connection.execute("DROP INDEX IF EXISTS otel_traces_name_duration")
    if present and "SampleRate" not in present:
        connection.execute("ALTER TABLE otel_traces RENAME TO otel_traces_v1")
        connection.execute("DROP INDEX IF EXISTS otel_traces_timestamp")
    for statement in _statements(SCHEMA):
        connection.execute(statement)
    if present and "SampleRate" not in present:
        old = ", ".join(TRACE_COLUMNS[:17])
        connection.execute(
            f"""INSERT OR IGNORE INTO otel_traces ({old}, SampleRate, Environment, SessionId)
            SELECT {old}, COALESCE(json_extract(SpanAttributes, '$."sdk_telemetry.sample_rate"'), 1.0),
                   COALESCE(json_extract(ResourceAttributes, '$."deployment.environment.name"'), ''),
                   COALESCE(json_extract(ResourceAttributes, '$."session.id"'), '')
            FROM otel_traces_v1"""
        )
        connection.execute("DROP TABLE otel_traces_v1")
    connection.execute("DROP TRIGGER IF EXISTS otel_traces_summary_insert")
    rebuild_summary(connection)
    rebuild_durations(connection)
    if not had_rollups:  # rollups outlive the raw rows: filled from them once, never rebuilt
        fill_rollups(connection)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def rebuild_summary(connection: sqlite3.Connection) -> None:
    """Recount the summary table from `otel_traces` (after a migration, or rows written by other tools)."""
    connection.execute("DELETE FROM otel_traces_summary")
    connection.execute(
        """INSERT INTO otel_traces_summary
        SELECT ScopeName, SpanName, ServiceName, Environment, COUNT(*), SUM(1.0 / SampleRate),
               SUM((StatusCode = 'Error') / SampleRate), TOTAL(Duration)
        FROM otel_traces GROUP BY ScopeName, SpanName, ServiceName, Environment"""
    )


def rebuild_durations(connection: sqlite3.Connection) -> None:
    """Put every `otel_traces` row in `otel_traces_durations` (after a migration, or a `VACUUM`,
    which may renumber the rows)."""
    connection.execute("DELETE FROM otel_traces_durations")
    connection.execute("DELETE FROM otel_traces_durations_through")
    connection.execute("INSERT INTO otel_traces_durations_through VALUES (0)")
    _index_durations(connection, _MAX_ROWID)


def durations_through(connection: sqlite3.Connection) -> int:
    """The rowid up to which `otel_traces` rows are in `otel_traces_durations`; rows above it are not."""
    row = connection.execute("SELECT TraceRow FROM otel_traces_durations_through").fetchone()
    return int(row[0]) if row else 0


def _index_durations(connection: sqlite3.Connection, through: int) -> None:
    """Add the rows from the current mark up to rowid `through` to `otel_traces_durations`, sorted."""
    (top,) = connection.execute("SELECT COALESCE(MAX(rowid), 0) FROM otel_traces").fetchone()
    through = min(through, top)
    connection.execute(
        """INSERT OR IGNORE INTO otel_traces_durations
        SELECT ScopeName, SpanName, Duration, rowid FROM otel_traces
        WHERE rowid > (SELECT TraceRow FROM otel_traces_durations_through) AND rowid <= ?
        ORDER BY ScopeName, SpanName, Duration, rowid""",
        (through,),
    )
    connection.execute("UPDATE otel_traces_durations_through SET TraceRow = ?", (through,))


def _keep_durations(connection: sqlite3.Connection, last: int, mark: int, top: int) -> None:
    """After new rows went in at rowids `last` + 1 .. `top`, with the durations mark at `mark`: move
    the waiting rows into `otel_traces_durations` once there are `DURATION_BATCH_ROWS` of them."""
    if mark > last:  # the rows above `last` were deleted: new rowids start below the mark
        connection.execute("UPDATE otel_traces_durations_through SET TraceRow = ?", (last,))
        mark = last
    if top - mark >= DURATION_BATCH_ROWS:
        _index_durations(connection, top)


_SUMMARY_UPSERT = """
INSERT INTO otel_traces_summary VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO UPDATE SET Kept = Kept + excluded.Kept, Calls = Calls + excluded.Calls,
    Errors = Errors + excluded.Errors, DurationSum = DurationSum + excluded.DurationSum
"""
_SUMMARY_ADD = """
INSERT INTO otel_traces_summary
SELECT ScopeName, SpanName, ServiceName, Environment, COUNT(*), SUM(1.0 / SampleRate),
       SUM((StatusCode = 'Error') / SampleRate), TOTAL(Duration)
FROM otel_traces NOT INDEXED WHERE rowid > ? GROUP BY ScopeName, SpanName, ServiceName, Environment
ON CONFLICT DO UPDATE SET Kept = Kept + excluded.Kept, Calls = Calls + excluded.Calls,
    Errors = Errors + excluded.Errors, DurationSum = DurationSum + excluded.DurationSum
"""
_MAX_ROWID = 2**63 - 1
#: The largest rowid of `otel_traces` and the durations mark.
_POSITIONS = """SELECT (SELECT COALESCE(MAX(rowid), 0) FROM otel_traces),
    COALESCE((SELECT TraceRow FROM otel_traces_durations_through), 0)"""
# Positions in a trace row.
_SCOPE, _NAME, _SERVICE, _DURATION, _STATUS, _RATE, _ENVIRONMENT = 9, 5, 7, 12, 13, 17, 18


def insert_spans(connection: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Insert `otel_traces` rows, each (TraceId, SpanId) once, and add the new ones to the summary
    table and the rollups; returns the rows that were new. Call inside a write transaction (`BEGIN IMMEDIATE`).

    Every writer goes through here: the summary is updated once per function and batch rather
    than by a per-row trigger (which cost a third of the insert rate); a delete trigger keeps it
    right under retention.
    """
    unique: dict[tuple[str, str], tuple[Any, ...]] = {}
    for row in rows:
        unique.setdefault((row[1], row[2]), row)
    new = list(unique.values())
    if not new:
        return new
    # The common case, no row stored before, costs no lookup: insert them all (a row already
    # present is ignored), and only when some row was ignored (a retry, another writer's copy)
    # find the new ones, by their rowids, which SQLite assigns above the largest one present.
    # One statement, as each one waits for the GIL again when another thread holds it.
    last, mark = connection.execute(_POSITIONS).fetchone()
    if last >= _MAX_ROWID - len(new):  # rowids would be chosen at random: look the rows up first
        new = _not_stored(connection, unique)
        if new:
            connection.executemany(INSERT, new)
            _add_to_summary(connection, new)
            _add_to_rollups(connection, new)
            # Random rowids may fall below the mark: those rows join the durations now.
            connection.executemany(
                """INSERT OR IGNORE INTO otel_traces_durations
                SELECT ScopeName, SpanName, Duration, rowid FROM otel_traces WHERE TraceId = ? AND SpanId = ?
                AND rowid <= (SELECT TraceRow FROM otel_traces_durations_through)""",
                [row[1:3] for row in new],
            )
        return new
    inserted = insert_rows(connection, "otel_traces", TRACE_COLUMNS, new)
    if inserted != len(new):
        added = set(connection.execute("SELECT TraceId, SpanId FROM otel_traces WHERE rowid > ?", (last,)))
        new = [row for row in new if (row[1], row[2]) in added]
    if new:  # the new rows are the ones above `last`: SQLite sums them (without holding the GIL)
        connection.execute(_SUMMARY_ADD, (last,))
        _add_to_rollups(connection, new)
        _keep_durations(connection, last, mark, last + inserted)
    return new


def _add_to_rollups(connection: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Add the newly stored invocation spans among `rows` to the rollups."""
    add_calls(
        connection,
        (
            (row[0], row[_NAME], row[_SERVICE], row[_ENVIRONMENT], row[_DURATION], row[_STATUS], row[_RATE])
            for row in rows
            if row[_SCOPE] == INVOCATION_SCOPE
        ),
    )


def insert_events(connection: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> int:
    """Insert `otel_logs` rows, each event id once; returns how many were new."""
    return insert_rows(connection, "otel_logs", LOG_COLUMNS, rows)


def insert_metrics(connection: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Insert `otel_metrics_gauge` rows, each metric id once; returns the rows that were new (a
    value's id is new unless a retry sent it before)."""
    return [row for row in rows if connection.execute(INSERT_METRIC, row).rowcount]


def _add_to_summary(connection: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    totals: dict[tuple[Any, ...], list[Any]] = {}
    for row in rows:
        key = (row[_SCOPE], row[_NAME], row[_SERVICE], row[_ENVIRONMENT])
        entry = totals.get(key)
        if entry is None:
            entry = totals[key] = [0, 0.0, 0.0, 0]
        weight = 1.0 / row[_RATE]
        entry[0] += 1
        entry[1] += weight
        if row[_STATUS] == "Error":
            entry[2] += weight
        entry[3] += row[_DURATION]
    connection.executemany(_SUMMARY_UPSERT, [(*key, *entry) for key, entry in totals.items()])


def _not_stored(
    connection: sqlite3.Connection, unique: dict[tuple[str, str], tuple[Any, ...]]
) -> list[tuple[Any, ...]]:
    """The rows of `unique` whose (TraceId, SpanId) is not in `otel_traces` yet."""
    trace_ids = list({key[0] for key in unique})
    for start in range(0, len(trace_ids), 500):
        chunk = trace_ids[start : start + 500]
        for found in connection.execute(
            f"SELECT TraceId, SpanId FROM otel_traces WHERE TraceId IN ({', '.join('?' * len(chunk))})", chunk
        ):
            unique.pop(found, None)
    return list(unique.values())


def _statements(script: str) -> list[str]:
    """The statements of `script` (executescript would commit the migration's transaction)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return statements


def storage_bytes(path: Path) -> int:
    """Bytes on disk of the store file and its WAL."""
    total = 0
    for candidate in (path, path.with_name(path.name + "-wal")):
        with contextlib.suppress(OSError):
            total += candidate.stat().st_size
    return total
