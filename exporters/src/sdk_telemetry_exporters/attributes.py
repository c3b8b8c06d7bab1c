"""Names of the span, log record and resource attributes that sdk-telemetry writes and its exporters read.

Both sides import these constants, so a renamed attribute cannot silently break an exporter. The
session events' types and severities are here too: `sdk_telemetry`'s sessions write them, the
`tinker` exporter (and the receiver) read them.
"""

from __future__ import annotations

#: Instrumentation scope of every invocation span; exporters that speak an invocation wire
#: format only map spans from this scope.
INVOCATION_SCOPE = "sdk_telemetry"

# Span attributes of an invocation.
ERROR_TYPE = "error.type"  # OpenTelemetry semantic convention
ERROR_ID = "sdk_telemetry.error.id"
ERROR_CODE = "sdk_telemetry.error.code"
#: True when the exception was already recorded by an inner instrumented call (reported once).
ERROR_PROPAGATED = "sdk_telemetry.error.propagated"
#: The recorded call arguments, as a JSON object string (only when capture is switched on).
PROPS = "sdk_telemetry.props"
#: The sampling rate a kept span was sampled at (1.0 when absent): a stored count scales by 1 / rate.
SAMPLE_RATE = "sdk_telemetry.sample_rate"
#: The session a span or event belongs to (also a resource attribute).
SESSION_ID = "session.id"
#: Why a generator's or a returned stream's span ended early: "closed" or "abandoned".
GENERATOR_END = "sdk_telemetry.generator.end"
#: How many items the caller took from a returned stream (an iterator, an async iterator, or what a
#: returned stream manager's `with` gave), counted when its span ends.
STREAM_ITEMS = "sdk_telemetry.stream.items"
#: Milliseconds from the call's start to the first item of its returned stream (absent when none came).
STREAM_FIRST_ITEM_MS = "sdk_telemetry.stream.first_item_ms"

# Resource attributes.
SERVICE_NAME = "service.name"
SERVICE_VERSION = "service.version"
DEPLOYMENT_ENVIRONMENT = "deployment.environment.name"
HOST_NAME = "host.name"
OS_TYPE = "os.type"
PROJECT_ID = "sdk_telemetry.project_id"
PROVIDER = "sdk_telemetry.provider"
SOURCE_SERVICE = "sdk_telemetry.source.service"

# Session events: log records whose attributes say which event of a session they are.
#: The event's type, one of `EVENT_TYPES` (a record without it is a `GENERIC_EVENT`).
EVENT_TYPE = "sdk_telemetry.event.type"
#: The client-generated event id (stable across retries and the spool, for deduplication).
EVENT_ID = "sdk_telemetry.event.id"
#: The event's index within its session (0, 1, 2, ...).
EVENT_INDEX = "sdk_telemetry.event.session_index"
#: How long the session lasted, on its `SESSION_END` event (`H:MM:SS[.ffffff]`).
SESSION_DURATION = "sdk_telemetry.session.duration"
# OpenTelemetry semantic conventions of an exception (on an `UNHANDLED_EXCEPTION` event).
EXCEPTION_TYPE = "exception.type"
EXCEPTION_MESSAGE = "exception.message"
EXCEPTION_STACKTRACE = "exception.stacktrace"

# Session event types (the values of `EVENT_TYPE`) and severities.
SESSION_START = "SESSION_START"
SESSION_END = "SESSION_END"
UNHANDLED_EXCEPTION = "UNHANDLED_EXCEPTION"
GENERIC_EVENT = "GENERIC_EVENT"
EVENT_TYPES = frozenset({SESSION_START, SESSION_END, UNHANDLED_EXCEPTION, GENERIC_EVENT})
SEVERITIES = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
