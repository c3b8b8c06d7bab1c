"""A store dataset whose answers are known by hand: invocation rows and metric values, the
expected per-function statistics, and how to load it into a SQLite store."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from sdk_telemetry_exporters import attributes as attr

from sdk_telemetry.store import _rows, _sqlite

T0 = 1_700_000_000  # epoch seconds
NS = 1_000_000_000
MS = 1_000_000


def _span(i: int, name: str, duration_ms: float, service: str, env: str, session: str, **extra: Any) -> tuple[Any, ...]:
    attributes: dict[str, Any] = dict(extra.pop("attributes", {}))
    error = extra.pop("error", None)
    if error is not None:
        attributes[attr.ERROR_TYPE] = error
    return _rows.trace_row(
        timestamp=extra.pop("at", T0 * NS + i * NS),
        trace_id=f"{i + 1:032x}",
        span_id=f"{i + 1:016x}",
        name=name,
        duration=int(duration_ms * MS),
        resource={attr.SERVICE_NAME: service, attr.DEPLOYMENT_ENVIRONMENT: env, attr.SESSION_ID: session},
        attributes=attributes,
        scope=extra.pop("scope", attr.INVOCATION_SCOPE),
        status="Error" if error else "Unset",
        status_message=extra.pop("message", ""),
    )


def dataset() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(spans, metric values) with the answers asserted below."""
    spans = []
    # Api.get: 20 calls of 1..20 ms at T0+1..T0+20 s; errors at 3 (ValueError) and 7 (TimeoutError).
    for i in range(1, 21):
        error = {3: "ValueError", 7: "TimeoutError"}.get(i)
        spans.append(_span(i, "Api.get", i, "svc-a", "production", "s1", error=error, message=f"get {i} failed"))
    # Api.put: 10 kept calls sampled at 0.25 (40 calls), 100..1000 ms; the last one fails.
    for k in range(1, 11):
        spans.append(
            _span(
                100 + k,
                "Api.put",
                100 * k,
                "svc-b",
                "staging",
                "s2",
                attributes={attr.SAMPLE_RATE: 0.25},
                error="ValueError" if k == 10 else None,
                message="bad put" if k == 10 else "",
            )
        )
    # Api.outer failed because of an error an inner call already recorded: counted for the function,
    # not again among the top errors.
    spans.append(
        _span(
            200,
            "Api.outer",
            50,
            "svc-c",
            "production",
            "s3",
            error="ValueError",
            attributes={attr.ERROR_PROPAGATED: True},
        )
    )
    # Not an invocation: ignored by every question.
    spans.append(_span(300, "GET /", 5, "svc-a", "production", "s1", scope="opentelemetry.instrumentation.requests"))
    metrics = [
        _rows.metric_row(
            timestamp=(T0 + i) * NS,
            metric_id=f"latency-{i}",
            name="latency",
            value=float(i),
            attributes={},
            resource={},
        )
        for i in range(1, 11)
    ]
    metrics += [
        _rows.metric_row(
            timestamp=(T0 + 50 + i) * NS, metric_id=f"queue-{i}", name="queue", value=v, attributes={}, resource={}
        )
        for i, v in enumerate((5.0, 3.0))
    ]
    return spans, metrics


EXPECTED_ALL = {
    "Api.get": dict(
        calls=20,
        errors=2,
        error_rate=0.1,
        mean_ms=10.5,
        p50_ms=10.0,
        p95_ms=19.0,
        p99_ms=20.0,
        min_ms=1.0,
        max_ms=20.0,
        kept=20,
    ),
    "Api.put": dict(
        calls=40,
        errors=4,
        error_rate=0.1,
        mean_ms=550.0,
        p50_ms=500.0,
        p95_ms=1000.0,
        p99_ms=1000.0,
        min_ms=100.0,
        max_ms=1000.0,
        kept=10,
    ),
    "Api.outer": dict(
        calls=1,
        errors=1,
        error_rate=1.0,
        mean_ms=50.0,
        p50_ms=50.0,
        p95_ms=50.0,
        p99_ms=50.0,
        min_ms=50.0,
        max_ms=50.0,
        kept=1,
    ),
}
#: Api.get from T0+5 s to T0+14 s: durations 5..14 ms, one error (7).
EXPECTED_WINDOW = dict(
    calls=10,
    errors=1,
    error_rate=0.1,
    mean_ms=9.5,
    p50_ms=9.0,
    p95_ms=14.0,
    p99_ms=14.0,
    min_ms=5.0,
    max_ms=14.0,
    kept=10,
)
METRIC_ANSWERS = {
    "MEAN": (5.5, 4.0),
    "SUM": (55.0, 8.0),
    "MIN": (1.0, 3.0),
    "MAX": (10.0, 5.0),
    "COUNT": (10, 2),
    "P50": (5.0, 3.0),
    "P95": (10.0, 5.0),
    "P99": (10.0, 5.0),
}


def load(connection: sqlite3.Connection) -> None:
    spans, metrics = dataset()
    with connection:
        connection.execute("BEGIN IMMEDIATE")
        _sqlite.insert_spans(connection, spans)
        connection.executemany(_sqlite.INSERT_METRIC, metrics)


def by_function(rows: list[Any]) -> dict[str, dict[str, Any]]:
    return {row.function: {k: v for k, v in row.as_dict().items() if k != "function"} for row in rows}


def assert_stats(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    for key, value in expected.items():
        assert actual[key] == pytest.approx(value), key
