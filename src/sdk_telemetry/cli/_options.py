"""The options of the `sdk-telemetry` commands, each declared once, and the output every command shares.

Options that commands take together are an option group: a frozen dataclass whose fields are
options. A command names the group as one parameter, and `grouped` spreads the group's options
into the signature Typer reads, in that place, and hands the command one instance of the group.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import ipaddress
import re
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar, get_type_hints

import orjson
import typer
from rich.console import Console

from sdk_telemetry.analytics import AnalyticsError, Location, Source, TimeRange
from sdk_telemetry.cli._script import needs_extra
from sdk_telemetry.store import Filters, MissingExtra, StoreError, open_read_only, unreadable

R = TypeVar("R")

# --- options -------------------------------------------------------------------------------------

StoreOption = Annotated[
    Optional[Path],  # noqa: UP045 (typer needs Optional on Python 3.10)
    typer.Option(help="The store file (default: SDK_TELEMETRY_STORE or the user data directory)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]
ServiceOption = Annotated[Optional[str], typer.Option(help="Only this service (service.name).")]  # noqa: UP045
EnvironmentOption = Annotated[Optional[str], typer.Option(help="Only this deployment environment.")]  # noqa: UP045
SessionOption = Annotated[Optional[str], typer.Option(help="Only this session id.")]  # noqa: UP045
#: --since and --until of the store's queries (`parse_when`).
SinceOption = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(help="Only since this time: ISO-8601, or an age such as 90s, 15m, 24h, 7d."),
]
UntilOption = Annotated[Optional[str], typer.Option(help="Only until this time (same forms as --since).")]  # noqa: UP045
#: --since and --until of the analyses (`TimeRange.parse`).
RangeSinceOption = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(help="Start: ISO 8601, epoch seconds, or a duration back from now (1h, 7d)."),
]
RangeUntilOption = Annotated[Optional[str], typer.Option(help="End (exclusive), same forms as --since.")]  # noqa: UP045
ClickHouseOption = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--clickhouse",
        envvar="SDK_TELEMETRY_CLICKHOUSE_URL",
        help="Ask ClickHouse instead of the local store: a server URL (http://user:password@host:8123/db, "
        "extra clickhouse) or chdb:PATH (the embedded engine, extra chdb).",
        show_default=False,
    ),
]
#: The days each rollup tier is kept (`serve`, `retention`, `rollups --create`).
HourlyDaysOption = Annotated[
    float,
    typer.Option(envvar="SDK_TELEMETRY_RETENTION_HOURLY_DAYS", help="Days hourly rollups are kept (0: forever)."),
]
DailyDaysOption = Annotated[
    float, typer.Option(envvar="SDK_TELEMETRY_RETENTION_DAILY_DAYS", help="Days daily rollups are kept (0: forever).")
]
WeeklyDaysOption = Annotated[
    float,
    typer.Option(envvar="SDK_TELEMETRY_RETENTION_WEEKLY_DAYS", help="Days weekly rollups are kept (0: forever)."),
]
MonthlyDaysOption = Annotated[
    float,
    typer.Option(envvar="SDK_TELEMETRY_RETENTION_MONTHLY_DAYS", help="Days monthly rollups are kept (0: forever)."),
]
ByOption = Annotated[str, typer.Option(help="Whom to count: session, user (enduser.id) or a resource attribute key.")]
PeriodOption = Annotated[str, typer.Option(help="hour, day, week or a duration such as 6h.")]

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost): where a
    server may run without an API key."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_when(value: str | None, now: float | None = None) -> str | None:
    """An ISO-8601 time for `value`: ISO text as given, or an age (`15m`, `7d`) before now."""
    if value is None:
        return None
    match = _AGE.match(value)
    if match is None:
        return value
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    moment = datetime.fromtimestamp((now if now is not None else time.time()) - seconds, tz=timezone.utc)
    return moment.isoformat()


# --- option groups -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StoreQuery:
    """Which invocations a store query is about, and how to print the answer: `--store`, `--json`,
    `--service`, `--environment`, `--session`, `--since`, `--until`."""

    store: StoreOption = None
    json: JsonOption = False
    service: ServiceOption = None
    environment: EnvironmentOption = None
    session: SessionOption = None
    since: SinceOption = None
    until: UntilOption = None

    def filters(self) -> Filters:
        """The store's `Filters` for these options."""
        return Filters(
            service=self.service,
            environment=self.environment,
            session=self.session,
            start=parse_when(self.since),
            end=parse_when(self.until),
        )


@dataclasses.dataclass(frozen=True)
class StoreRange:
    """Which stored calls an analysis reads: `--since`, `--until`, `--store`."""

    since: RangeSinceOption = None
    until: RangeUntilOption = None
    store: StoreOption = None
    clickhouse: ClickHouseOption = None

    def time_range(self) -> TimeRange:
        """The period of `--since` and `--until` (`AnalyticsError` when they are not a range)."""
        return TimeRange.parse(self.since, self.until)

    @contextmanager
    def source(self) -> Iterator[Source]:
        """The store, open read-only; no store, a file that is not one or a damaged one ends the
        command with one line (exit 1), a question that cannot be answered (an `AnalyticsError`
        inside the block) too (exit 2)."""
        location = Location.of(self.store, self.clickhouse)
        with ExitStack() as stack, reading(location.path or Path(str(location))):
            try:
                source = stack.enter_context(location.open())
            except AnalyticsError as exc:
                raise StoreError(f"{location} is not a telemetry store ({exc})") from None
            try:
                yield source
            except AnalyticsError as exc:
                typer.echo(f"sdk-telemetry: {exc}", err=True)
                raise typer.Exit(2) from None


@contextmanager
def reading(path: Path) -> Iterator[None]:
    """Turn what keeps the store at `path` from being read into one line on stderr and exit 1: no
    file (`FileNotFoundError` while opening), not a store (`StoreError`), a damaged file (SQLite's
    `DatabaseError`, raised by whichever query first reads the damaged page)."""
    try:
        yield
    except FileNotFoundError as exc:
        if exc.filename is not None:  # a file other than the store (only opening the store gives none)
            raise
        typer.echo(f"No telemetry recorded yet: no store at {path}.", err=True)
        raise typer.Exit(1) from None
    except (StoreError, MissingExtra) as exc:
        typer.echo(f"sdk-telemetry: {exc}", err=True)
        raise typer.Exit(1) from None
    except sqlite3.DatabaseError as exc:
        typer.echo(f"sdk-telemetry: {unreadable(path, exc)}", err=True)
        raise typer.Exit(1) from None


def open_store(path: Path) -> sqlite3.Connection:
    """The store at `path`, open read-only; what keeps it from opening ends the command (`reading`)."""
    with reading(path):
        return open_read_only(path)


def grouped(command: Callable[..., R]) -> Callable[..., R]:
    """`command` with each parameter annotated with an option group spread into the group's options,
    in its place, for Typer to read; `command` is called with one instance of the group."""
    hints = get_type_hints(command, include_extras=True)
    parameters: list[inspect.Parameter] = []
    groups: dict[str, tuple[type[Any], list[str]]] = {}
    for parameter in inspect.signature(command).parameters.values():
        annotation = hints.get(parameter.name, parameter.annotation)
        if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
            options = get_type_hints(annotation, include_extras=True)
            fields = dataclasses.fields(annotation)
            groups[parameter.name] = (annotation, [field.name for field in fields])
            parameters += [
                inspect.Parameter(
                    field.name, inspect.Parameter.KEYWORD_ONLY, default=field.default, annotation=options[field.name]
                )
                for field in fields
            ]
        else:
            parameters.append(parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=annotation))

    @functools.wraps(command)
    def run(**values: Any) -> R:
        for name, (group, names) in groups.items():
            values[name] = group(**{option: values.pop(option) for option in names})
        return command(**values)

    run.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    run.__annotations__ = {parameter.name: parameter.annotation for parameter in parameters}
    return run


# --- output --------------------------------------------------------------------------------------


def console() -> Console:
    """Rich's console; piped output gets room for the whole table instead of the default 80 columns."""
    return Console(width=None if sys.stdout.isatty() else 160)


def print_json(value: Any) -> None:
    """`value` as indented JSON on stdout."""
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")


def missing_extra(what: str, extra: str, reason: object = None) -> typer.Exit:
    """Say which extra `what` needs (on stderr); the exit (1) to raise."""
    typer.echo(needs_extra(what, extra, reason), err=True)
    return typer.Exit(1)
