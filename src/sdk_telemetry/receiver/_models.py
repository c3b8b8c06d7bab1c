"""The JSON wire formats the receiver accepts, as pydantic-validated TypedDicts.

Composio-style payloads (wire-formats §1): an absent field is omitted; `null` is rejected;
unknown fields are ignored. As lenient as the real schema: `source` enum values, names and
negative durations are checked and adjusted (counted) by `_mapping`, not refused here. Tinker
batches (§2): unknown top-level fields are rejected, at most 100 events.

Every number is bounded so that it can be stored: times fit signed 64-bit nanoseconds (the years
1970 to 2262 for epoch seconds, 1678 to 2261 for ISO times), durations at most `MAX_DURATION_MS`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, AwareDatetime, ConfigDict, Field, StringConstraints, TypeAdapter
from typing_extensions import NotRequired, TypedDict

# String values (event ids, messages) are rarely repeated: caching them costs more than it saves.
_STRICT = ConfigDict(strict=True, cache_strings="keys")
NonEmpty = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
#: The last epoch second whose nanoseconds fit a signed 64-bit integer (2262-04-11).
MAX_EPOCH_SECONDS = 9_223_372_035.0
#: About 31.7 years: longer is no measurement (and would overflow nanoseconds).
MAX_DURATION_MS = 1e12
EpochSeconds = Annotated[float, Field(ge=0, le=MAX_EPOCH_SECONDS, allow_inf_nan=False)]
#: Negative values (a wall-clock step) are accepted, as by the real schema, and clamped to 0.
DurationMs = Annotated[float, Field(le=MAX_DURATION_MS, allow_inf_nan=False)]
MAX_INT64 = 2**63 - 1


def _storable_time(value: datetime) -> datetime:
    if not 1678 <= value.year <= 2261:
        raise ValueError("the time must be between the years 1678 and 2261")
    return value


StorableTime = Annotated[AwareDatetime, AfterValidator(_storable_time)]
#: `metadata.eventId`: f"{trace_id:032x}{span_id:016x}", the span's ids kept across retries.
EventId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{48}$")]


class Source(TypedDict, total=False):
    """Where the call ran; `service`, `language` and `environment` are mapped onto their enums by
    `_mapping` (aliases such as `prod`; anything else is dropped and counted)."""

    __pydantic_config__ = _STRICT  # type: ignore[misc]
    host: str
    service: str
    language: str
    version: str
    platform: str
    environment: str


class Metadata(TypedDict, total=False):
    """Project and provider; `eventId` makes a retried payload land once. Extensions of ours (the
    real clients send none of them): `serviceName` (`service.name`), `sessionId` (`session.id`),
    `userId` (`enduser.id`)."""

    __pydantic_config__ = _STRICT  # type: ignore[misc]
    projectId: str
    provider: str
    eventId: EventId
    serviceName: str
    sessionId: str
    userId: str


class ErrorInfo(TypedDict):
    """A failed invocation's error."""

    __pydantic_config__ = _STRICT  # type: ignore[misc]
    name: str
    code: NotRequired[str]
    errorId: NotRequired[str]
    message: NotRequired[str]
    stack: NotRequired[str]


class Invocation(TypedDict):
    """One instrumented call (`durationMs` in milliseconds, `timestamp` in epoch seconds)."""

    __pydantic_config__ = _STRICT  # type: ignore[misc]
    functionName: str
    durationMs: NotRequired[DurationMs]
    timestamp: NotRequired[EpochSeconds]
    props: NotRequired[dict[str, Any]]
    source: NotRequired[Source]
    metadata: NotRequired[Metadata]
    error: NotRequired[ErrorInfo]


Severity = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class _TinkerEvent(TypedDict):
    __pydantic_config__ = _STRICT  # type: ignore[misc]
    event_id: NonEmpty
    event_session_index: Annotated[int, Field(ge=0, le=MAX_INT64)]
    severity: Severity
    timestamp: StorableTime


class SessionStart(_TinkerEvent):
    """A session began."""

    event: Literal["SESSION_START"]


class SessionEnd(_TinkerEvent):
    """A session ended; `duration` in Python's `str(timedelta)` form."""

    event: Literal["SESSION_END"]
    duration: NotRequired[str]


class UnhandledException(_TinkerEvent):
    """An exception the program did not handle."""

    event: Literal["UNHANDLED_EXCEPTION"]
    error_type: str
    error_message: str
    traceback: NotRequired[str]


class GenericEvent(_TinkerEvent):
    """An SDK's own event (`event_name` low-cardinality)."""

    event: Literal["GENERIC_EVENT"]
    event_name: NonEmpty
    event_data: NotRequired[dict[str, Any]]


TinkerEvent = Annotated[
    Union[SessionStart, SessionEnd, UnhandledException, GenericEvent],  # noqa: UP007
    Field(discriminator="event"),
]


class TinkerBatch(TypedDict):
    """One request to `/api/v1/telemetry`."""

    __pydantic_config__ = ConfigDict(strict=True, extra="forbid", cache_strings="keys")  # type: ignore[misc]
    events: Annotated[list[TinkerEvent], Field(max_length=100)]
    platform: str
    sdk_version: str
    session_id: NonEmpty
    process_uuid: str


class MetricValue(TypedDict):
    """One value for `POST /api/v1/metrics` (record_metric)."""

    __pydantic_config__ = _STRICT  # type: ignore[misc]
    name: NonEmpty
    value: Annotated[float, Field(allow_inf_nan=False)]
    context: NotRequired[dict[str, Any]]
    timestamp: NotRequired[EpochSeconds]
    unit: NotRequired[str]


INVOCATIONS = TypeAdapter(list[Invocation], config=ConfigDict(cache_strings="keys"))
ERROR_REPORT = TypeAdapter(Invocation)
TINKER_BATCH = TypeAdapter(TinkerBatch)
METRIC_VALUE = TypeAdapter(MetricValue)
