"""The end user of the current context on every event: `enduser.id` from `sdk_telemetry.user(...)`."""

from __future__ import annotations

from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord

from sdk_telemetry.config import ENDUSER_ID, current_user


class EndUserStamp(LogRecordProcessor):
    """Adds `enduser.id` to a log record emitted inside `with sdk_telemetry.user(...)` (first on the
    provider, so every queue after it sees the attribute); a record that names its user keeps it."""

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        """Stamp the record with the context's user, if there is one."""
        user_id = current_user.get()
        if user_id is None:
            return
        record = log_record.log_record
        if record.attributes is None:
            record.attributes = {ENDUSER_ID: user_id}
        elif ENDUSER_ID not in record.attributes:
            record.attributes[ENDUSER_ID] = user_id  # type: ignore[index]

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is held."""
        return True
