"""Sessions: the session of a telemetry handle and its event log, events and exceptions emitted as
log records (`session`), and exception capture: a context manager, a decorator and a task wrapper
(`capture`)."""

from sdk_telemetry.session.capture import CaptureExceptions, create_task
from sdk_telemetry.session.session import Session, severity_name, validate_event

__all__ = ["CaptureExceptions", "Session", "create_task", "severity_name", "validate_event"]
