"""The `local` exporter: finished spans into the embedded store, with no server to run."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode
from sdk_telemetry_exporters.notices import warn

from sdk_telemetry.store import _rows, _sqlite

_logger = logging.getLogger(__name__)
_STATUS = {StatusCode.UNSET: "Unset", StatusCode.OK: "Ok", StatusCode.ERROR: "Error"}


def span_row(span: ReadableSpan) -> tuple[Any, ...]:
    """One `otel_traces` row for a finished span."""
    context = span.get_span_context()
    resource = dict(span.resource.attributes) if span.resource else {}
    scope = span.instrumentation_scope
    start = span.start_time or 0
    events = [
        {"Timestamp": event.timestamp, "Name": event.name, "Attributes": dict(event.attributes or {})}
        for event in span.events
    ]
    links = [
        {"TraceId": f"{link.context.trace_id:032x}", "SpanId": f"{link.context.span_id:016x}"} for link in span.links
    ]
    return _rows.trace_row(
        timestamp=start,
        trace_id=f"{context.trace_id:032x}" if context else "",
        span_id=f"{context.span_id:016x}" if context else "",
        parent_span_id=f"{span.parent.span_id:016x}" if span.parent else "",
        trace_state=context.trace_state.to_header() if context else "",
        name=span.name,
        kind=span.kind.name.title(),
        resource=resource,
        scope=scope.name if scope else "",
        scope_version=(scope.version or "") if scope else "",
        attributes=dict(span.attributes or {}),
        duration=(span.end_time or start) - start,
        status=_STATUS[span.status.status_code],
        status_message=span.status.description or "",
        events=events,
        links=links,
    )


class LocalSpanExporter(SpanExporter):
    """Writes spans to the SQLite store at `path` (default: `SDK_TELEMETRY_STORE` or the user data dir).

    The file is created at the first export, never at construction.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = _sqlite.store_path(path)
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self.written = 0
        self.failed = 0
        self.last_error: str | None = None
        self.last_error_time: float | None = None
        self.last_success_time: float | None = None
        self.failing_since: float | None = None  # the first failed write since the last success

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Insert the spans in one transaction; a span already stored is kept once."""
        try:
            rows = [span_row(span) for span in spans]
            with self._lock:
                connection = self._connect()
                with connection:
                    connection.execute("BEGIN IMMEDIATE")
                    _sqlite.insert_spans(connection, rows)
                self.written += len(rows)
            self.last_success_time, self.failing_since = time.time(), None
            return SpanExportResult.SUCCESS
        except Exception as exc:
            self.failed += len(spans)
            self.last_error = f"cannot write the store {self.path}: {type(exc).__name__}: {exc}"
            self.last_error_time = time.time()
            if self.failing_since is None:
                self.failing_since = self.last_error_time
            warn(f"store:{self.path}", "%s; spans are lost until it can be written", self.last_error)
            return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        """Close the database file."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Every export is committed before it returns."""
        return True

    def stats(self) -> dict[str, Any]:
        """Spans written and failed, and where."""
        return {
            "store": str(self.path),
            "written": self.written,
            "failed": self.failed,
            "last_error": self.last_error,
            "last_error_time": self.last_error_time,
            "last_success_time": self.last_success_time,
            "failing_since": self.failing_since,
        }

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self._connection = _sqlite.connect(self.path)
        return self._connection
