"""Store rows written into the Collector's tables: JSONEachRow lines shaped as the Collector's
exporter writes them (attribute values as strings, times as UTC DateTime64), inserted with an
`insert_deduplication_token` taken from the rows' content, so that the same rows inserted again (a
retried copy) are stored once."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import orjson

from sdk_telemetry.store.clickhouse.connection import Runner

#: The attribute that carries a log record's unique id (OpenTelemetry semantic conventions).
LOG_RECORD_UID = "log.record.uid"
#: The attribute older SDKs and Collectors carry an event's name in (newer ones: the EventName column).
EVENT_NAME = "event.name"


def _datetime64(ns: int) -> str:
    # Epoch seconds as decimal text: exact to the nanosecond and free of the server's time zone
    # (a JSON integer would be read as seconds, a date-time text in the server's zone).
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def _string_map(text: str) -> dict[str, str]:
    return {
        key: value if isinstance(value, str) else orjson.dumps(value).decode()
        for key, value in orjson.loads(text).items()
    }


def trace_rows_as_json_each_row(rows: Sequence[Sequence[Any]]) -> bytes:
    """Store rows (`_rows.trace_row`) as JSONEachRow lines for `otel_traces`."""
    lines = []
    for row in rows:
        events = orjson.loads(row[15])
        links = orjson.loads(row[16])
        lines.append(
            orjson.dumps(
                {
                    "Timestamp": _datetime64(row[0]),
                    "TraceId": row[1],
                    "SpanId": row[2],
                    "ParentSpanId": row[3],
                    "TraceState": row[4],
                    "SpanName": row[5],
                    "SpanKind": row[6],
                    "ServiceName": row[7],
                    "ResourceAttributes": _string_map(row[8]),
                    "ScopeName": row[9],
                    "ScopeVersion": row[10],
                    "SpanAttributes": _string_map(row[11]),
                    "Duration": row[12],
                    "StatusCode": row[13],
                    "StatusMessage": row[14],
                    "Events.Timestamp": [_datetime64(int(event.get("Timestamp") or row[0])) for event in events],
                    "Events.Name": [event.get("Name", "") for event in events],
                    "Events.Attributes": [
                        _string_map(orjson.dumps(event.get("Attributes", {})).decode()) for event in events
                    ],
                    "Links.TraceId": [link.get("TraceId", "") for link in links],
                    "Links.SpanId": [link.get("SpanId", "") for link in links],
                    "Links.TraceState": ["" for _ in links],
                    "Links.Attributes": [
                        _string_map(orjson.dumps(link.get("Attributes", {})).decode()) for link in links
                    ],
                }
            )
        )
    return b"\n".join(lines)


def log_rows_as_json_each_row(rows: Sequence[Sequence[Any]]) -> bytes:
    """Store rows (`_rows.log_row`) as JSONEachRow lines for `otel_logs`: the event's name in the
    `EventName` column (as the Collector writes a record's EventName) and in the `event.name`
    attribute (as older SDKs send it), its id in `log.record.uid` unless an attribute has it."""
    lines = []
    for row in rows:
        attributes = _string_map(row[10])
        attributes.setdefault(LOG_RECORD_UID, row[1])
        if row[11]:
            attributes.setdefault(EVENT_NAME, row[11])
        lines.append(
            orjson.dumps(
                {
                    "Timestamp": _datetime64(row[0]),
                    "TraceId": row[2],
                    "SpanId": row[3],
                    "SeverityText": row[4],
                    "SeverityNumber": min(255, max(0, int(row[5]))),
                    "ServiceName": row[6],
                    "Body": row[7],
                    "ResourceAttributes": _string_map(row[8]),
                    "ScopeName": row[9],
                    "LogAttributes": attributes,
                    "EventName": row[11],
                }
            )
        )
    return b"\n".join(lines)


def metric_rows_as_json_each_row(rows: Sequence[Sequence[Any]]) -> bytes:
    """Store rows (`_rows.metric_row`) as JSONEachRow lines for `otel_metrics_gauge`."""
    return b"\n".join(
        orjson.dumps(
            {
                "TimeUnix": _datetime64(row[0]),
                "ServiceName": row[2],
                "MetricName": row[3],
                "MetricUnit": row[4],
                "Attributes": _string_map(row[5]),
                "ResourceAttributes": _string_map(row[6]),
                "Value": row[7],
            }
        )
        for row in rows
    )


def deduplication_token(table: str, lines: bytes) -> str:
    """The token of an insert of `lines` into `table`: the same rows give the same token."""
    return hashlib.blake2b(table.encode() + b"\x00" + lines, digest_size=16).hexdigest()


def insert_json_each_row(run: Runner, table: str, lines: bytes) -> None:
    """Insert JSONEachRow `lines` into `table` synchronously, deduplicated by their content."""
    if not lines:
        return
    token = deduplication_token(table, lines)
    run(
        f"INSERT INTO {table} SETTINGS async_insert = 0, insert_deduplicate = 1, "
        f"insert_deduplication_token = '{token}' FORMAT JSONEachRow\n" + lines.decode(),
        {},
    )


def insert_spans(run: Runner, rows: Sequence[Sequence[Any]]) -> None:
    """Insert store rows (`_rows.trace_row`) into `otel_traces`."""
    insert_json_each_row(run, "otel_traces", trace_rows_as_json_each_row(rows))


def insert_events(run: Runner, rows: Sequence[Sequence[Any]]) -> None:
    """Insert store rows (`_rows.log_row`) into `otel_logs`."""
    insert_json_each_row(run, "otel_logs", log_rows_as_json_each_row(rows))


def insert_metrics(run: Runner, rows: Sequence[Sequence[Any]]) -> None:
    """Insert store rows (`_rows.metric_row`) into `otel_metrics_gauge`."""
    insert_json_each_row(run, "otel_metrics_gauge", metric_rows_as_json_each_row(rows))
