"""Exports: stored calls and events, or per-function aggregates, for a time range, as CSV or Parquet.

Parquet needs `pyarrow` (the `parquet` extra); CSV needs nothing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from sdk_telemetry.analytics._performance import performance
from sdk_telemetry.analytics._range import NS, AnalyticsError, TimeRange
from sdk_telemetry.analytics._source import Source
from sdk_telemetry.store import iso

KINDS = ("calls", "events", "aggregates")
FORMATS = ("csv", "parquet")

CALL_COLUMNS = (
    "timestamp",
    "function",
    "service",
    "session_id",
    "user_id",
    "duration_ms",
    "status",
    "error_type",
    "status_message",
    "sample_rate",
    "trace_id",
    "span_id",
    "parent_span_id",
)
EVENT_COLUMNS = ("timestamp", "event", "service", "session_id", "severity", "body", "attributes", "event_id")
AGGREGATE_COLUMNS = (
    "bucket_start",
    "function",
    "calls",
    "errors",
    "error_rate",
    "throughput_per_s",
    "p50_ms",
    "p95_ms",
    "p99_ms",
)


def _calls(source: Source, time_range: TimeRange, function: str | None) -> Iterator[tuple[Any, ...]]:
    for row in source.reader.calls(source.scope(time_range, function=function or None), "oldest"):
        yield (
            iso(row.timestamp),
            row.function,
            row.service,
            row.session_id or None,
            row.user_id,
            row.duration / 1e6,
            row.status,
            row.error_type,
            row.message,
            row.sample_rate,
            row.trace_id,
            row.span_id,
            row.parent_span_id,
        )


def _events(source: Source, time_range: TimeRange) -> Iterator[tuple[Any, ...]]:
    for event in source.reader.events(source.scope(time_range)):
        attributes = orjson.dumps(event.attributes).decode()
        yield (
            iso(event.timestamp),
            event.name,
            event.service,
            event.session_id,
            event.severity,
            event.body,
            attributes,
            event.event_id,
        )


def _aggregates(
    source: Source, time_range: TimeRange, function: str | None, step: float | None
) -> Iterator[tuple[Any, ...]]:
    if function:
        names = [function]
    else:
        names = [str(row.key) for row in source.reader.aggregate(source.scope(time_range), "function").rows]
    bounded = source.bounds(time_range)
    for name in names:
        result = performance(source, name, bounded, step_seconds=step)
        for bucket in result.buckets:
            yield (
                bucket.start,
                name,
                bucket.calls,
                bucket.errors,
                bucket.error_rate,
                bucket.throughput_per_s,
                bucket.p50_ms,
                bucket.p95_ms,
                bucket.p99_ms,
            )


def rows(
    source: Source,
    kind: str = "calls",
    time_range: TimeRange | None = None,
    function: str | None = None,
    step_seconds: float | None = None,
) -> tuple[tuple[str, ...], Iterator[tuple[Any, ...]]]:
    """The column names and rows of an export of `kind`: `calls`, `events` or `aggregates`."""
    time_range = time_range or TimeRange()
    if kind == "calls":
        return CALL_COLUMNS, _calls(source, time_range, function)
    if kind == "events":
        return EVENT_COLUMNS, _events(source, time_range)
    if kind == "aggregates":
        return AGGREGATE_COLUMNS, _aggregates(source, time_range, function, step_seconds)
    raise AnalyticsError(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")


def write_csv(columns: tuple[str, ...], data: Iterator[tuple[Any, ...]], out: IO[str]) -> int:
    """CSV with a header row; returns the number of data rows."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    count = 0
    for row in data:
        writer.writerow(["" if value is None else value for value in row])
        count += 1
    return count


def parquet_bytes(columns: tuple[str, ...], data: Iterator[tuple[Any, ...]]) -> tuple[bytes, int]:
    """A Parquet file's bytes and its row count; raises `AnalyticsError` when pyarrow is missing."""
    try:
        import pyarrow as pa  # type: ignore[import-untyped]
        import pyarrow.parquet as pq  # type: ignore[import-untyped]
    except ImportError:
        raise AnalyticsError(
            "Parquet export needs pyarrow: pip install 'sdk-telemetry[parquet]' (or export as csv)"
        ) from None
    materialized = list(data)
    table = pa.table({name: [row[i] for row in materialized] for i, name in enumerate(columns)})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue(), len(materialized)


def export(
    source: Source,
    destination: str | Path | IO[str] | IO[bytes],
    kind: str = "calls",
    fmt: str = "csv",
    time_range: TimeRange | None = None,
    function: str | None = None,
    step_seconds: float | None = None,
) -> int:
    """Write an export to a path or an open file; returns the number of rows written."""
    if fmt not in FORMATS:
        raise AnalyticsError(f"format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    columns, data = rows(source, kind, time_range, function, step_seconds)
    if fmt == "parquet":
        content, count = parquet_bytes(columns, data)
        if isinstance(destination, (str, Path)):
            Path(destination).write_bytes(content)
        else:
            destination.write(content)  # type: ignore[arg-type]
        return count
    if isinstance(destination, (str, Path)):
        with open(destination, "w", newline="", encoding="utf-8") as out:
            return write_csv(columns, data, out)
    return write_csv(columns, data, destination)  # type: ignore[arg-type]


def json_ready(value: Any) -> Any:
    """`value` through orjson and back (dataclasses, tuples) for HTTP and MCP answers."""
    return orjson.loads(orjson.dumps(value, default=str))


__all__ = [
    "AGGREGATE_COLUMNS",
    "CALL_COLUMNS",
    "EVENT_COLUMNS",
    "FORMATS",
    "KINDS",
    "NS",
    "export",
    "json_ready",
    "rows",
]
