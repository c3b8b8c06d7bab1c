"""Configuration: every setting resolved in one place, from arguments, then the environment, then
defaults (`settings`; the session's in `session`), and the one owner of process-wide state: the
active setup's settings, consent mode and scrubber (`state`); the context-scoped end user (`end_user`)."""

from sdk_telemetry.config.end_user import ENDUSER_ID, checked_user_id, current_user, user
from sdk_telemetry.config.receiver_limits import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_KEEP_ALIVE_TIMEOUT,
    DEFAULT_KEYLESS_BURST,
    DEFAULT_KEYLESS_RATE,
    DEFAULT_MAX_BACKLOG_ROWS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_INFLIGHT_BYTES,
    DEFAULT_RETENTION_INTERVAL,
)
from sdk_telemetry.config.settings import Settings, SettingsArguments, opt_out_reason, resolve_settings
from sdk_telemetry.config.state import (
    activate,
    allow_instrumentation_for_tests,
    capture_args_default,
    current_settings,
    instrumentation_allowed,
    scrubber,
)

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_HEADER_TIMEOUT",
    "DEFAULT_KEEP_ALIVE_TIMEOUT",
    "DEFAULT_KEYLESS_BURST",
    "DEFAULT_KEYLESS_RATE",
    "DEFAULT_MAX_BACKLOG_ROWS",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_INFLIGHT_BYTES",
    "DEFAULT_RETENTION_INTERVAL",
    "ENDUSER_ID",
    "Settings",
    "SettingsArguments",
    "activate",
    "allow_instrumentation_for_tests",
    "capture_args_default",
    "checked_user_id",
    "current_settings",
    "current_user",
    "instrumentation_allowed",
    "opt_out_reason",
    "resolve_settings",
    "scrubber",
    "user",
]
