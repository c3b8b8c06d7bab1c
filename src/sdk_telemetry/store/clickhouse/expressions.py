"""The Collector's ClickHouse columns as the query layer reads them, as SQL expressions shared by
`ClickHouseReader`, the ClickHouse rollups and the analysis columns: a call's weight, failure,
environment, session, user and duration-sketch key, and a time's bucket index; and the Collector's `otel_logs` table.

The Collector writes attributes as `Map(String, String)` (every value as text), `Timestamp` as
`DateTime64(9)`, and the status as `Error` (older exporters: `STATUS_CODE_ERROR`).
"""

from __future__ import annotations

from sdk_telemetry_exporters.attributes import (
    DEPLOYMENT_ENVIRONMENT,
    ERROR_TYPE,
    INVOCATION_SCOPE,
    SAMPLE_RATE,
    SESSION_ID,
)

from sdk_telemetry.store.sketch import LOG_GAMMA, ZERO_KEY

#: The user attribute (OpenTelemetry's `enduser.id`).
ENDUSER_ID = "enduser.id"

#: Only invocation spans are calls (a literal: it is also written into materialized views).
CALLS = f"ScopeName = '{INVOCATION_SCOPE}'"
_RATE_VALUE = f"toFloat64OrZero(SpanAttributes['{SAMPLE_RATE}'])"
#: The rate a stored call was sampled at: 1 when absent, not a number, zero or above 1.
RATE = f"if({_RATE_VALUE} > 0 AND {_RATE_VALUE} <= 1, {_RATE_VALUE}, 1.0)"
#: How many calls one stored call stands for.
WEIGHT = f"(1.0 / {RATE})"
FAILED = "StatusCode IN ('Error', 'STATUS_CODE_ERROR')"
#: The status as the SQLite store writes it (`Unset`, `Ok`, `Error`).
STATUS = (
    "multiIf(StatusCode IN ('Error', 'STATUS_CODE_ERROR'), 'Error', StatusCode IN ('Ok', 'STATUS_CODE_OK'), 'Ok', "
    "StatusCode IN ('Unset', 'STATUS_CODE_UNSET', ''), 'Unset', toString(StatusCode))"
)
#: `deployment.environment.name`, else the older `deployment.environment`.
ENVIRONMENT = (
    f"if(ResourceAttributes['{DEPLOYMENT_ENVIRONMENT}'] != '', ResourceAttributes['{DEPLOYMENT_ENVIRONMENT}'], "
    "ResourceAttributes['deployment.environment'])"
)
ERROR_KIND = f"if(mapContains(SpanAttributes, '{ERROR_TYPE}'), SpanAttributes['{ERROR_TYPE}'], 'Error')"
#: The duration sketch's bucket key (`sketch.bucket_key`), the same double arithmetic as Python's.
SKETCH_KEY = f"if(Duration > 0, toInt32(ceil(log(Duration) / {LOG_GAMMA!r})), toInt32({ZERO_KEY}))"
NANOS = "toUnixTimestamp64Nano(Timestamp)"
#: A span's key within its trace, 64 bits: comparing these instead of (TraceId, SpanId) strings makes
#: "is this call's parent a stored call" a set of integers (two keys of ten million spans collide with
#: odds of about 3 in a million).
SPAN_KEY = "cityHash64(TraceId, SpanId)"
#: Its parent's `SPAN_KEY`, 0 for a root span.
PARENT_KEY = "if(ParentSpanId = '', toUInt64(0), cityHash64(TraceId, ParentSpanId))"

#: The Collector's `otel_logs` table (its current DDL, without codecs, indexes and TTL).
OTEL_LOGS_DDL = """
CREATE TABLE IF NOT EXISTS otel_logs (
    Timestamp DateTime64(9),
    TimestampTime DateTime DEFAULT toDateTime(Timestamp),
    TraceId String,
    SpanId String,
    TraceFlags UInt8,
    SeverityText LowCardinality(String),
    SeverityNumber UInt8,
    ServiceName LowCardinality(String),
    Body String,
    ResourceSchemaUrl LowCardinality(String),
    ResourceAttributes Map(LowCardinality(String), String),
    ScopeSchemaUrl LowCardinality(String),
    ScopeName String,
    ScopeVersion LowCardinality(String),
    ScopeAttributes Map(LowCardinality(String), String),
    LogAttributes Map(LowCardinality(String), String),
    EventName String
) ENGINE = MergeTree
PARTITION BY toDate(TimestampTime)
ORDER BY (ServiceName, TimestampTime, Timestamp)
"""


def session(attributes: str = "SpanAttributes") -> str:
    """The session id: the record's own `session.id`, else the resource's."""
    return f"if({attributes}['{SESSION_ID}'] != '', {attributes}['{SESSION_ID}'], ResourceAttributes['{SESSION_ID}'])"


def user(attributes: str = "SpanAttributes") -> str:
    """The user id: the record's own `enduser.id`, else the resource's (see `has_user`)."""
    return (
        f"if(mapContains({attributes}, '{ENDUSER_ID}'), {attributes}['{ENDUSER_ID}'], "
        f"ResourceAttributes['{ENDUSER_ID}'])"
    )


def has_user(attributes: str = "SpanAttributes") -> str:
    """Whether the record or its resource names a user."""
    return f"(mapContains({attributes}, '{ENDUSER_ID}') OR mapContains(ResourceAttributes, '{ENDUSER_ID}'))"


def floor_index(nanos: str, origin: int, step: int) -> str:
    """The index of the `step`-wide bucket from `origin` holding `nanos` (floor division, also before
    the origin: ClickHouse's `intDiv` rounds toward zero)."""
    offset = f"({nanos} - toInt64({int(origin)}))"
    return f"(intDiv({offset}, {int(step)}) - if({offset} % {int(step)} < 0, 1, 0))"
