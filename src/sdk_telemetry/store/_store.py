"""`LocalStore`: the embedded store as a Python API — record values and events, ask questions."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sdk_telemetry._version import __version__
from sdk_telemetry.store import _rows, _sqlite, queries
from sdk_telemetry.store.queries import ErrorGroup, Filters, FunctionStats, QueryError, TimeBound, iso, to_ns
from sdk_telemetry.store.retention import DEFAULT_RETENTION_DAYS, apply_retention


def storage_report(path: Path) -> dict[str, Any]:
    """Bytes of the store on disk, and their share of the disk it lives on (percent)."""
    used = _sqlite.storage_bytes(path)
    try:
        capacity = shutil.disk_usage(path.parent).total
    except OSError:
        capacity = 0
    return {
        "storage_bytes": used,
        "storage_usage_percentage": round(100.0 * used / capacity, 6) if capacity else None,
    }


class LocalStore:
    """The local store file at `path` (created at the first write), with the Dream.OS-style API.

    Thread-safe: one connection, used under a lock.
    """

    def __init__(self, path: str | Path | None = None, retention_days: float = DEFAULT_RETENTION_DAYS) -> None:
        self.path = _sqlite.store_path(path)
        self.retention_days = retention_days
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None

    def connection(self) -> sqlite3.Connection:
        """The open connection (the file and schema are created on first use)."""
        if self._connection is None:
            self._connection = _sqlite.connect(self.path)
        return self._connection

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def __enter__(self) -> LocalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record_metric(
        self,
        name: str,
        value: float,
        context: Mapping[str, Any] | None = None,
        timestamp: TimeBound = None,
        *,
        unit: str = "",
        service: str = "",
    ) -> str:
        """Store one value of metric `name` (with `context` as its attributes); returns its id."""
        if not isinstance(name, str) or not name:
            raise QueryError("INVALID_METRIC", "a metric needs a non-empty name")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise QueryError("INVALID_METRIC", f"metric {name!r}: value must be a number, got {value!r}")
        metric_id = uuid.uuid4().hex
        row = _rows.metric_row(
            timestamp=to_ns(timestamp) or time.time_ns(),
            metric_id=metric_id,
            name=name,
            value=float(value),
            attributes=dict(context or {}),
            resource={},
            unit=unit,
            service=service,
        )
        with self._lock:
            connection = self.connection()
            with connection:
                _sqlite.insert_metrics(connection, [row])
        return metric_id

    def record_event(
        self,
        event_type: str,
        data: Mapping[str, Any] | None = None,
        *,
        source: str = "",
        timestamp: TimeBound = None,
        event_id: str | None = None,
        severity: str = "INFO",
        session_id: str = "",
    ) -> dict[str, Any]:
        """Store one event (kept once per `event_id`); answers `{"status", "event_id", "timestamp"}`."""
        if not isinstance(event_type, str) or not event_type:
            raise QueryError("INVALID_EVENT", "an event needs a non-empty event_type")
        ns = to_ns(timestamp) or time.time_ns()
        event_id = event_id or str(uuid.uuid4())
        attributes: dict[str, Any] = {"event.type": event_type, "event.data": _rows.dumps(dict(data or {}))}
        if source:
            attributes["event.source"] = source
        row = _rows.log_row(
            timestamp=ns,
            event_id=event_id,
            body=event_type,
            event_name=event_type,
            severity=severity,
            resource={"session.id": session_id} if session_id else {},
            attributes=attributes,
            service=source,
        )
        with self._lock:
            connection = self.connection()
            with connection:
                _sqlite.insert_events(connection, [row])
        return {"status": "success", "event_id": event_id, "timestamp": iso(ns)}

    def get_metrics(
        self,
        names: Sequence[str] | None = None,
        time_range: tuple[TimeBound, TimeBound] | None = None,
        aggregation: str = "MEAN",
    ) -> dict[str, Any]:
        """Recorded values aggregated per metric name (see `queries.get_metrics`)."""
        with self._lock:
            return queries.get_metrics(self.connection(), names, time_range, aggregation)

    def function_stats(self, filters: Filters | None = None) -> list[FunctionStats]:
        """Per-function performance (see `queries.function_stats`)."""
        with self._lock:
            return queries.function_stats(self.connection(), filters)

    def top_errors(self, filters: Filters | None = None, limit: int = 10) -> list[ErrorGroup]:
        """The most frequent error types (see `queries.top_errors`)."""
        with self._lock:
            return queries.top_errors(self.connection(), filters, limit)

    def apply_retention(self, now_ns: int | None = None) -> dict[str, int]:
        """Delete what is older than `retention_days`; rows deleted per table."""
        with self._lock:
            return apply_retention(self.connection(), self.retention_days, now_ns)

    def health_check(self) -> dict[str, Any]:
        """Status, version, uptime, what is stored, retention and storage usage."""
        with self._lock:
            return health(self.connection(), self.path, self.retention_days, time.monotonic() - self.started)


def health(connection: sqlite3.Connection, path: Path, retention_days: float, uptime: float) -> dict[str, Any]:
    """The Dream.OS-shaped health answer for the store at `path`."""
    try:
        stored = queries.counts(connection)
        status = "healthy"
    except sqlite3.Error:
        stored = {"spans": 0, "events": 0, "metrics": 0}
        status = "unhealthy"
    return {
        "status": status,
        "version": __version__,
        "uptime_seconds": round(uptime, 3),
        "stats": {
            "events_recorded": stored["spans"] + stored["events"],
            "spans_recorded": stored["spans"],
            "metrics_recorded": stored["metrics"],
            "data_retention_days": retention_days,
            **storage_report(path),
        },
        "store": str(path),
    }
