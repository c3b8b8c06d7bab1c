"""The JSON wire formats the receiver accepts, as pydantic-validated TypedDicts.

Composio-style payloads (wire-formats §1): an absent field is omitted; `null` is rejected;
enum fields hold one of their values; unknown fields are ignored. Tinker batches (§2): unknown
top-level fields are rejected, at most 100 events.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import AwareDatetime, ConfigDict, Field, StringConstraints, TypeAdapter
from typing_extensions import NotRequired, TypedDict

# String values (event ids, messages) are rarely repeated: caching them costs more than it saves.
_STRICT = ConfigDict(strict=True, cache_strings="keys")
NonEmpty = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
Finite = Annotated[float, Field(ge=0, allow_inf_nan=False)]
#: `metadata.eventId`: f"{trace_id:032x}{span_id:016x}", the span's ids kept across retries.
EventId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{48}$")]


class Source(TypedDict, total=False):
    """Where the call ran."""

    __pydantic_config__ = _STRICT  # type: ignore[misc]
    host: str
    service: Literal["sdk", "apollo", "hermes", "thermos"]
    language: Literal["python", "typescript", "go", "rust"]
    version: str
    platform: str
    environment: Literal["development", "production", "ci", "staging", "test"]


class Metadata(TypedDict, total=False):
    """Project and provider; `eventId` makes a retried payload land once."""

    __pydantic_config__ = _STRICT  # type: ignore[misc]
    projectId: str
    provider: str
    eventId: EventId


class ErrorInfo(TypedDict):
    """A failed invocation's error."""

    __pydantic_config__ = _STRICT  # type: ignore[misc]
    name: NonEmpty
    code: NotRequired[str]
    errorId: NotRequired[str]
    message: NotRequired[str]
    stack: NotRequired[str]


class Invocation(TypedDict):
    """One instrumented call (`durationMs` in milliseconds, `timestamp` in epoch seconds)."""

    __pydantic_config__ = _STRICT  # type: ignore[misc]
    functionName: NonEmpty
    durationMs: NotRequired[Finite]
    timestamp: NotRequired[Finite]
    props: NotRequired[dict[str, Any]]
    source: NotRequired[Source]
    metadata: NotRequired[Metadata]
    error: NotRequired[ErrorInfo]


Severity = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class _TinkerEvent(TypedDict):
    __pydantic_config__ = _STRICT  # type: ignore[misc]
    event_id: NonEmpty
    event_session_index: Annotated[int, Field(ge=0)]
    severity: Severity
    timestamp: AwareDatetime


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
    timestamp: NotRequired[Finite]
    unit: NotRequired[str]


INVOCATIONS = TypeAdapter(list[Invocation], config=ConfigDict(cache_strings="keys"))
ERROR_REPORT = TypeAdapter(Invocation)
TINKER_BATCH = TypeAdapter(TinkerBatch)
METRIC_VALUE = TypeAdapter(MetricValue)
