"""Sessions: one per telemetry handle, with an id, a start time and the settings of its events."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sdk_telemetry_exporters.config import parse_list, parse_seconds, read_bool
from typing_extensions import TypedDict

ECHO_EVENTS = "SDK_TELEMETRY_ECHO_EVENTS"
FATAL_TIMEOUT = "SDK_TELEMETRY_FATAL_TIMEOUT"
HTTP_SPANS = "SDK_TELEMETRY_HTTP_SPANS"
HTTP_PROPAGATION = "SDK_TELEMETRY_HTTP_PROPAGATION"
LOGS_EXPORTER = "OTEL_LOGS_EXPORTER"

#: Seconds `log_fatal_exception` waits for the events to be sent (Tinker waits up to 30 s).
DEFAULT_FATAL_TIMEOUT = 2.0
#: Trace exporter names that also mean "events go there" when no events exporter is named. (OTLP
#: and console carry events only when named in `events_exporter` / `OTEL_LOGS_EXPORTER`.)
EVENT_CAPABLE = ("tinker",)
_SESSION_ID = re.compile(r"[\x21-\x7e]{1,128}")


def exporter_names(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """Exporter names from a comma list (an `OTEL_*_EXPORTER` value) or a sequence, lower case;
    `none` means no exporter."""
    return tuple(name for name in (item.lower() for item in parse_list(value)) if name != "none")


class SessionArguments(TypedDict, total=False):
    """`configure_telemetry()` arguments about sessions and events."""

    session_id: str | None
    events_exporter: str | Sequence[str] | None
    echo_events: bool | None
    fatal_timeout: float | None
    http_spans: bool | None
    http_propagation: bool | None


@dataclass(frozen=True)
class SessionSettings:
    """How sessions and events behave.

    `session_id`: the id to use (None: a new uuid per handle). `events_exporters`: where events
    go (None: `tinker` if it is among the trace exporters, else nowhere). `echo_events`:
    every event is also written to the `sdk_telemetry.events` Python logger. `fatal_timeout`:
    seconds `log_fatal_exception` waits until the events are sent. `http_spans`: requests sent
    inside an instrumented call (through requests, httpx, httpx2) become its child spans.
    `http_propagation`: those requests also carry the trace headers (`traceparent`, …).
    """

    session_id: str | None = None
    events_exporters: tuple[str, ...] | None = None
    echo_events: bool = False
    fatal_timeout: float = DEFAULT_FATAL_TIMEOUT
    http_spans: bool = True
    http_propagation: bool = False

    @classmethod
    def resolve(cls, arguments: Mapping[str, Any], environ: Mapping[str, str]) -> SessionSettings:
        """From `configure_telemetry()` arguments (already without Nones), then `environ`, then defaults.

        Raises `ValueError` for a session id that is not 1-128 printable ASCII characters.
        """
        session_id = arguments.get("session_id")
        if session_id is not None and not (isinstance(session_id, str) and _SESSION_ID.fullmatch(session_id)):
            raise ValueError(f"session_id must be 1-128 printable ASCII characters without spaces, not {session_id!r}")
        exporters: Any = arguments.get("events_exporter", environ.get(LOGS_EXPORTER))
        names = exporter_names(exporters) if exporters is not None else None
        if "fatal_timeout" in arguments:
            fatal_timeout = float(arguments["fatal_timeout"])
            if not fatal_timeout >= 0:
                raise ValueError(f"fatal_timeout must be a number of seconds >= 0, not {fatal_timeout!r}")
        else:
            fatal_timeout = parse_seconds(environ.get(FATAL_TIMEOUT), DEFAULT_FATAL_TIMEOUT, FATAL_TIMEOUT)

        def flag(argument: str, variable: str, default: bool) -> bool:
            if argument in arguments:
                return bool(arguments[argument])
            value = read_bool(environ, variable, f"using the default ({'on' if default else 'off'})")
            return default if value is None else value

        return cls(
            session_id=session_id,
            events_exporters=names,
            echo_events=flag("echo_events", ECHO_EVENTS, False),
            fatal_timeout=fatal_timeout,
            http_spans=flag("http_spans", HTTP_SPANS, True),
            http_propagation=flag("http_propagation", HTTP_PROPAGATION, False),
        )

    def events_exporters_for(self, traces_exporters: Sequence[str]) -> tuple[str, ...]:
        """The events exporters: as named, or those of `traces_exporters` that can carry events."""
        if self.events_exporters is not None:
            return self.events_exporters
        return tuple(name for name in traces_exporters if name in EVENT_CAPABLE)
