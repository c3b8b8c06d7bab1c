"""Sessions: the session of a telemetry handle and its event log, events and exceptions emitted as
log records (`session`), exception capture: a context manager, a decorator and a task wrapper
(`capture`), and listeners that see every recorded event (`listeners`)."""

from sdk_telemetry.session.capture import CaptureExceptions, create_task
from sdk_telemetry.session.listeners import EventRecord, add_listener, listening, notify, remove_listener
from sdk_telemetry.session.session import Session, exception_details, severity_name, validate_event

__all__ = [
    "CaptureExceptions",
    "EventRecord",
    "Session",
    "add_listener",
    "create_task",
    "exception_details",
    "listening",
    "notify",
    "remove_listener",
    "severity_name",
    "validate_event",
]
