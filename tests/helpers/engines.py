"""One known dataset loaded into both engines: the embedded SQLite store and ClickHouse (chDB) as
the Collector's exporter writes it, so that every `Reader` answer can be compared across engines
and with a brute-force answer computed here from the same rows.

The dataset spans 100 days before `END`: sessions of users (some calls carry their own
`enduser.id`) on three services in two environments, sampled calls (rates 0.25 and 0.5), errors
with and without `error.type` (one propagated from an inner call), nested calls (a call whose
parent is a call), HTTP client spans of another scope under calls, span events, and events in
`otel_logs`. Timestamps are distinct, so that every order is total.
"""

from __future__ import annotations

import dataclasses
import math
import random
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from sdk_telemetry_exporters import attributes as attr

from sdk_telemetry.store import _rows, _sqlite
from sdk_telemetry.store.clickhouse import ClickHouseStore, columns, trace_rows_as_json_each_row
from sdk_telemetry.store.clickhouse.expressions import OTEL_LOGS_DDL
from sdk_telemetry.store.clickhouse.reader import ClickHouseReader
from sdk_telemetry.store.reader import Aggregate, Scope

NS = 1_000_000_000
MS = 1_000_000
DAY = 86400 * NS
#: 2026-01-01T00:00:00Z (a Thursday): the dataset ends just before it.
END = 1_767_225_600 * NS
START = END - 100 * DAY
FUNCTIONS = ("Api.login", "Api.search", "Api.get", "Api.checkout", "Api.logout")
EVENT_NAMES = ("page_view", "signup")
HTTP_SCOPE = "opentelemetry.instrumentation.httpx"


@dataclass
class Dataset:
    """The rows of both tables."""

    spans: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)

    @property
    def calls(self) -> list[tuple[Any, ...]]:
        """The invocation spans."""
        return [row for row in self.spans if row[9] == attr.INVOCATION_SCOPE]


def _string(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def dataset(seed: int = 16) -> Dataset:
    """The dataset (deterministic for a seed)."""
    rng = random.Random(seed)
    data = Dataset()
    used: set[int] = set()

    def moment(base: int) -> int:
        at = base
        while at in used:
            at += 1
        used.add(at)
        return at

    span_number = 0

    def ids() -> str:
        nonlocal span_number
        span_number += 1
        return f"{span_number:016x}"

    services = (("svc-web", "production"), ("svc-api", "production"), ("svc-batch", "staging"))
    for s in range(36):
        service, environment = services[s % 3]
        user = f"user-{s % 9}"
        session_id = f"session-{s:02d}"
        resource: dict[str, Any] = {
            attr.SERVICE_NAME: service,
            attr.DEPLOYMENT_ENVIRONMENT: environment,
            attr.SESSION_ID: session_id,
            "host.name": f"host-{s % 4}",
        }
        if s % 6 != 5:  # some processes do not know their user
            resource["enduser.id"] = user
        at = START + (s * 100 // 36) * DAY + rng.randrange(0, DAY // 2)
        for c in range(rng.randrange(3, 12)):
            at += rng.randrange(1, 900) * NS
            name = FUNCTIONS[min(len(FUNCTIONS) - 1, int(rng.random() ** 1.3 * len(FUNCTIONS)))]
            if c == 0:
                name = "Api.login"
            attributes: dict[str, Any] = {}
            rate = (1.0, 1.0, 0.5, 0.25)[rng.randrange(4)] if service == "svc-api" else 1.0
            if rate < 1:
                attributes[attr.SAMPLE_RATE] = rate
            if s % 6 == 5 and c % 2:
                attributes["enduser.id"] = f"own-{s % 2}"  # the call's own user
            roll = rng.random()
            status, message, events = "Unset", "", []
            if roll < 0.18:
                status, message = "Error", f"{name} failed #{c}"
                if roll < 0.12:
                    kind = ("ValueError", "TimeoutError")[c % 2]
                    attributes[attr.ERROR_TYPE] = kind
                    events = [
                        {
                            "Name": "exception",
                            "Timestamp": at + 1000,
                            "Attributes": {"exception.type": kind, "exception.stacktrace": f"Traceback {c}"},
                        }
                    ]
            trace = f"{s:08x}{c:08x}{rng.getrandbits(64):016x}"
            span = ids()
            duration = rng.randrange(1, 3000) * MS // rng.choice((1, 10, 100)) + rng.randrange(1000)
            timestamp = moment(at)
            data.spans.append(
                _rows.trace_row(
                    timestamp=timestamp,
                    trace_id=trace,
                    span_id=span,
                    name=name,
                    duration=duration,
                    resource=resource,
                    attributes=attributes,
                    scope=attr.INVOCATION_SCOPE,
                    service=service,
                    status=status,
                    status_message=message,
                    events=events,
                )
            )
            if name == "Api.checkout":  # a nested call, failing with the outer one now and then
                inner_attributes: dict[str, Any] = {}
                inner_status = "Unset"
                if status == "Error" and c % 2:
                    inner_status = "Error"
                    inner_attributes[attr.ERROR_TYPE] = "ValueError"
                    inner_attributes[attr.ERROR_PROPAGATED] = True
                data.spans.append(
                    _rows.trace_row(
                        timestamp=moment(timestamp + 10 * MS),
                        trace_id=trace,
                        span_id=ids(),
                        parent_span_id=span,
                        name="Api.charge",
                        duration=duration // 2 + 1,
                        resource=resource,
                        attributes=inner_attributes,
                        scope=attr.INVOCATION_SCOPE,
                        service=service,
                        status=inner_status,
                    )
                )
            if name in ("Api.get", "Api.search"):  # an HTTP client span under the call
                data.spans.append(
                    _rows.trace_row(
                        timestamp=moment(timestamp + 1 * MS),
                        trace_id=trace,
                        span_id=ids(),
                        parent_span_id=span,
                        name="GET",
                        kind="Client",
                        duration=duration // 3 + 1,
                        resource=resource,
                        attributes={"http.request.method": "GET", "http.response.status_code": 200},
                        scope=HTTP_SCOPE,
                        service=service,
                    )
                )
            if rng.random() < 0.35:
                event_name = EVENT_NAMES[c % 2] if c else "page_view"
                event_at = moment(timestamp + rng.randrange(-5, 30) * NS)
                data.events.append(
                    _rows.log_row(
                        timestamp=event_at,
                        event_id=f"event-{s:02d}-{c:02d}",
                        body=f"{event_name} {c}",
                        resource=resource,
                        attributes={attr.EVENT_ID: f"event-{s:02d}-{c:02d}", "page": f"/p/{c}"},
                        event_name=event_name,
                        severity="INFO",
                        severity_number=9,
                        service=service,
                        trace_id=trace,
                    )
                )
            at = timestamp
    data.spans.sort(key=lambda row: row[0])
    data.events.sort(key=lambda row: row[0])
    return data


def load_sqlite(path: Path, data: Dataset) -> sqlite3.Connection:
    """A SQLite store at `path` holding `data`."""
    connection = _sqlite.connect(path)
    with connection:
        connection.execute("BEGIN IMMEDIATE")
        _sqlite.insert_spans(connection, data.spans)
        _sqlite.insert_events(connection, data.events)
    return connection


def log_rows_as_json_each_row(rows: Iterable[Sequence[Any]]) -> bytes:
    """`otel_logs` store rows as JSONEachRow lines for the Collector's table."""
    lines = []
    for row in rows:
        lines.append(
            orjson.dumps(
                {
                    "Timestamp": f"{row[0] // NS}.{row[0] % NS:09d}",
                    "TraceId": row[2],
                    "SpanId": row[3],
                    "SeverityText": row[4],
                    "SeverityNumber": row[5],
                    "ServiceName": row[6],
                    "Body": row[7],
                    "ResourceAttributes": {k: _string(v) for k, v in orjson.loads(row[8]).items()},
                    "ScopeName": row[9],
                    "LogAttributes": {k: _string(v) for k, v in orjson.loads(row[10]).items()},
                    "EventName": row[11],
                }
            )
        )
    return b"\n".join(lines)


def load_clickhouse(store: ClickHouseStore, data: Dataset, batches: int = 3, analysis_columns: bool = False) -> None:
    """`data` in the Collector's tables, in a few insert batches (as a Collector sends them); with
    `analysis_columns`, those are added after the first batch (computed by a mutation for it, on
    insert for the others)."""
    store.create_tables()
    store.run(OTEL_LOGS_DDL, {})
    size = math.ceil(len(data.spans) / batches)
    for index in range(0, len(data.spans), size):
        if analysis_columns and index == size:
            assert columns.add_columns(store.run) == list(columns.DEFINITIONS)
        store.run(
            "INSERT INTO otel_traces SETTINGS async_insert = 0 FORMAT JSONEachRow\n"
            + trace_rows_as_json_each_row(data.spans[index : index + size]).decode(),
            {},
        )
    if data.events:
        store.run(
            "INSERT INTO otel_logs SETTINGS async_insert = 0 FORMAT JSONEachRow\n"
            + log_rows_as_json_each_row(data.events).decode(),
            {},
        )


# Brute-force answers, from the rows themselves.


@dataclass(frozen=True)
class Call:
    """A stored call as the brute-force answers read it."""

    timestamp: int
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    service: str
    environment: str
    session: str
    user: str | None
    resource: dict[str, Any]
    duration: int
    failed: bool
    error_type: str
    message: str
    weight: float


def calls_of(data: Dataset) -> list[Call]:
    """Every call of `data`, oldest first."""
    found = []
    for row in data.calls:
        resource, attributes = orjson.loads(row[8]), orjson.loads(row[11])
        user = attributes.get("enduser.id", resource.get("enduser.id"))
        found.append(
            Call(
                row[0],
                row[1],
                row[2],
                row[3],
                row[5],
                row[7],
                row[18],
                row[19],
                None if user is None else str(user),
                resource,
                row[12],
                row[13] == "Error",
                str(attributes.get(attr.ERROR_TYPE, "Error")),
                row[14],
                1.0 / row[17],
            )
        )
    return sorted(found, key=lambda call: (call.timestamp, call.span_id))


def actor(call: Call, by: str) -> str | None:
    """The actor `by` names for a call."""
    if by == "session":
        return call.session or None
    if by == "user":
        return call.user
    if by == "service":
        return call.service or None
    value = call.resource.get(by)
    return None if value is None else str(value)


def nearest(durations: list[int], percent: int) -> int:
    """The nearest-rank percentile of `durations`."""
    ordered = sorted(durations)
    return ordered[max(1, -(-len(ordered) * percent // 100)) - 1]


def figures(calls: list[Call]) -> dict[str, Any]:
    """The figures of one group of calls, as `Aggregate` holds them."""
    durations = [call.duration for call in calls]
    return {
        "kept": len(calls),
        "calls": sum(call.weight for call in calls),
        "errors": sum(call.weight for call in calls if call.failed),
        "duration_sum": float(sum(durations)),
        "duration_min": min(durations),
        "duration_max": max(durations),
        "p50": nearest(durations, 50),
        "p95": nearest(durations, 95),
        "p99": nearest(durations, 99),
    }


def assert_close(got: Aggregate, calls: list[Call]) -> None:
    """Counts and durations exact; percentiles within 1 % of the exact ones (the sketch's promise)."""
    answer = figures(calls)
    assert (got.kept, got.duration_min, got.duration_max) == (
        answer["kept"],
        answer["duration_min"],
        answer["duration_max"],
    )
    for name in ("calls", "errors", "duration_sum"):
        assert getattr(got, name) == pytest.approx(answer[name], rel=1e-9), name
    for name in ("p50", "p95", "p99"):
        assert abs(getattr(got, name) - answer[name]) <= 0.01 * answer[name], name


def in_scope(call: Call, scope: Scope) -> bool:
    """Whether `call` is in `scope`, as the readers select calls (an error type: failed calls of it)."""
    return (
        (scope.start is None or call.timestamp >= scope.start)
        and (scope.end is None or call.timestamp < scope.end)
        and scope.service in (None, call.service)
        and scope.environment in (None, call.environment)
        and scope.function in (None, call.name)
        and (scope.functions is None or call.name in scope.functions)
        and scope.session in (None, call.session)
        and (not scope.errors_only or call.failed)
        and (scope.error_type is None or (call.failed and call.error_type == scope.error_type))
    )


def grouped(calls: Iterable[Call], key: Any) -> dict[Any, list[Call]]:
    """Calls by `key(call)`, in key order."""
    groups: dict[Any, list[Call]] = defaultdict(list)
    for call in calls:
        groups[key(call)].append(call)
    return dict(sorted(groups.items()))


def assert_rows_equal(got: list[Any], expected: list[dict[str, Any]]) -> None:
    """`got` (rows with attributes) has `expected`'s values, floats to 1e-9 relative."""
    assert len(got) == len(expected)
    for row, answer in zip(got, expected, strict=True):
        for name, value in answer.items():
            assert getattr(row, name) == (pytest.approx(value, rel=1e-9) if isinstance(value, float) else value), name


def error_groups(calls: Iterable[Call], limit: int) -> list[dict[str, Any]]:
    """The failed calls grouped by (error type, function) as `Reader.error_groups` answers, the most
    frequent first."""
    groups = grouped((call for call in calls if call.failed), lambda c: (c.error_type, c.name))
    return sorted(
        (
            {
                "error_type": kind,
                "function": function,
                "count": sum(c.weight for c in members),
                "sample_message": max(c.message for c in members),
                "last_seen": max(c.timestamp for c in members),
            }
            for (kind, function), members in groups.items()
        ),
        key=lambda row: (-row["count"], row["error_type"], row["function"]),
    )[:limit]


class Recorded:
    """A `ClickHouseReader` over `run` that keeps the statements it ran, with their parameters."""

    def __init__(self, run: Any, **options: Any) -> None:
        self.statements: list[tuple[str, bytes]] = []
        self._run = run
        self.reader = ClickHouseReader(self.run, "chdb", **options)

    def run(self, sql: str, params: Any) -> Any:
        self.statements.append((sql, orjson.dumps(params, option=orjson.OPT_SORT_KEYS)))
        return self._run(sql, params)

    @property
    def sql(self) -> list[str]:
        """The statements' text."""
        return [sql for sql, _ in self.statements]


# Comparing two engines' answers.


def plain(value: Any) -> Any:
    """`value` as plain data: dataclasses as dicts, tuples as lists, iterators drained."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, Iterator)):
        return [plain(item) for item in value]
    return value


def assert_same(sqlite: Any, clickhouse: Any, where: str = "answer") -> None:
    """The same plain data, floats to 1e-9 relative (sums taken in another order)."""
    if isinstance(sqlite, float) or isinstance(clickhouse, float):
        assert clickhouse == pytest.approx(sqlite, rel=1e-9), where
    elif isinstance(sqlite, dict) and isinstance(clickhouse, dict):
        assert sorted(sqlite, key=repr) == sorted(clickhouse, key=repr), where
        for key in sqlite:
            assert_same(sqlite[key], clickhouse[key], f"{where}.{key}")
    elif isinstance(sqlite, list) and isinstance(clickhouse, list):
        assert len(sqlite) == len(clickhouse), where
        for index, (left, right) in enumerate(zip(sqlite, clickhouse, strict=True)):
            assert_same(left, right, f"{where}[{index}]")
    else:
        assert sqlite == clickhouse, where
