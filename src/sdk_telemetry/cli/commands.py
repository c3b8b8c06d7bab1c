"""The `sdk-telemetry` Typer app: read the store (`stats`, `errors`, `metrics`, `health`) and run the
receiver (`serve`); the analytics commands are added from `analytics`. The receiver's settings are
read here, from its options and their environment variables; nothing else reads them."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional, TypeVar

import typer
from rich.table import Table
from sdk_telemetry_exporters.config import parse_list

from sdk_telemetry._version import __version__
from sdk_telemetry.analytics import Location, did_you_mean
from sdk_telemetry.cli._options import (
    ClickHouseOption,
    DailyDaysOption,
    HourlyDaysOption,
    MonthlyDaysOption,
    SinceOption,
    StoreOption,
    StoreQuery,
    UntilOption,
    WeeklyDaysOption,
    console,
    grouped,
    is_loopback,
    missing_extra,
    open_store,
    parse_when,
    print_json,
    reading,
)
from sdk_telemetry.cli.analytics import error_stacks, register_cli, unrecorded_rule_functions
from sdk_telemetry.config import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_KEYLESS_BURST,
    DEFAULT_KEYLESS_RATE,
    DEFAULT_MAX_BACKLOG_ROWS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_INFLIGHT_BYTES,
    DEFAULT_RETENTION_INTERVAL,
)
from sdk_telemetry.store import (
    AGGREGATIONS,
    DEFAULT_RETENTION_DAYS,
    DEFAULT_ROLLUP_DAYS,
    ClickHouseStore,
    ErrorGroup,
    Filters,
    FunctionStats,
    MissingExtra,
    QueryError,
    Tier,
    apply_retention,
    connect,
    function_stats,
    get_metrics,
    health,
    open_clickhouse,
    shown,
    store_path,
    top_errors,
)

if TYPE_CHECKING:
    import sqlite3

Row = TypeVar("Row", FunctionStats, ErrorGroup)

app = typer.Typer(help="sdk-telemetry: look at what your SDK's telemetry recorded.", no_args_is_help=True)


def _print_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"sdk-telemetry {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """sdk-telemetry: look at what your SDK's telemetry recorded."""
    # The commands report what keeps ClickHouse from answering in one line; the client library's own
    # log of the same failure would be a second (Python's last-resort handler prints it).
    logging.getLogger("clickhouse_connect").setLevel(logging.CRITICAL)


def _open(store: Path | None) -> tuple[sqlite3.Connection, Path]:
    path = store_path(store)
    return open_store(path), path


def _never_recorded(connection: sqlite3.Connection, filters: Filters, path: Path) -> str | None:
    """Why a filtered answer is empty when its service or environment was never recorded at all."""
    for option, column, wanted in (
        ("service", "ServiceName", filters.service),
        ("environment", "Environment", filters.environment),
    ):
        if not wanted:
            continue
        known = [row[0] for row in connection.execute(f"SELECT DISTINCT {column} FROM otel_traces_summary") if row[0]]
        if wanted not in known:
            hint = did_you_mean(wanted, known) or f" (recorded: {', '.join(sorted(known)) or 'none'})"
            return f"nothing was ever recorded for {option} {wanted!r} in {path}{hint}"
    return None


def _fail(exc: QueryError) -> typer.Exit:
    typer.echo(f"{exc.code}: {exc.message}", err=True)
    return typer.Exit(2)


def _answer(
    query: StoreQuery,
    clickhouse: str | None,
    local: Callable[[sqlite3.Connection, Filters], list[Row]],
    remote: Callable[[ClickHouseStore, Filters], list[Row]],
    table: Callable[[list[Row], str], Table],
) -> None:
    """Ask the store (or ClickHouse) and print the rows as JSON or as a table."""
    filters = query.filters()
    if clickhouse:
        with _clickhouse(clickhouse) as remote_store:
            try:
                rows, where = remote(remote_store, filters), f"ClickHouse at {shown(clickhouse)}"
            except QueryError as exc:
                raise _fail(exc) from None
    else:
        connection, path = _open(query.store)
        where = str(path)
        try:
            with reading(path):
                rows = local(connection, filters)
                unknown = None if rows else _never_recorded(connection, filters, path)
        except QueryError as exc:
            raise _fail(exc) from None
        finally:
            connection.close()
        if unknown:
            typer.echo(f"sdk-telemetry: {unknown}", err=True)
            raise typer.Exit(1)
    if query.json:
        print_json([row.as_dict() for row in rows])
        return
    console().print(table(rows, where))


@app.command()
@grouped
def stats(query: StoreQuery, clickhouse: ClickHouseOption = None) -> None:
    """Per function: calls, errors, error rate, mean, p50, p95, p99 and max duration.

    Calls and errors are scaled by the sampling rate; durations are over the kept calls.
    """
    _answer(query, clickhouse, function_stats, ClickHouseStore.function_stats, _stats_table)


@app.command()
@grouped
def errors(
    query: StoreQuery,
    limit: Annotated[int, typer.Option(min=1, help="How many error types.")] = 10,
    clickhouse: ClickHouseOption = None,
    stack: Annotated[bool, typer.Option("--stack", help="With the latest stack trace and session.")] = False,
) -> None:
    """Top errors by type, each with its latest message (with --stack: its stack trace and session)."""
    if stack:
        return error_stacks(query, limit)
    _answer(
        query,
        clickhouse,
        lambda connection, filters: top_errors(connection, filters, limit),
        lambda remote, filters: remote.top_errors(filters, limit),
        _errors_table,
    )


@app.command()
def metrics(
    names: Annotated[Optional[list[str]], typer.Argument(help="Metric names (default: all).")] = None,  # noqa: UP045
    store: StoreOption = None,
    aggregation: Annotated[str, typer.Option(help=f"One of {', '.join(AGGREGATIONS)}.")] = "MEAN",
    since: SinceOption = None,
    until: UntilOption = None,
    clickhouse: ClickHouseOption = None,
) -> None:
    """Recorded metric values aggregated per name, as JSON (the Dream.OS shape)."""
    time_range = (parse_when(since), parse_when(until)) if since or until else None
    if clickhouse:
        with _clickhouse(clickhouse) as remote_store:
            try:
                return print_json(remote_store.get_metrics(names or None, time_range, aggregation))
            except QueryError as exc:
                raise _fail(exc) from None
    connection, path = _open(store)
    try:
        with reading(path):
            answer = get_metrics(connection, names or None, time_range, aggregation)
    except QueryError as exc:
        raise _fail(exc) from None
    finally:
        connection.close()
    print_json(answer)


@app.command("health")
def health_command(
    store: StoreOption = None,
    retention_days: Annotated[
        float, typer.Option(envvar="SDK_TELEMETRY_RETENTION_DAYS", help="The retention to report, in days.")
    ] = DEFAULT_RETENTION_DAYS,
) -> None:
    """Status, version, what is stored, retention and storage usage, as JSON."""
    connection, path = _open(store)
    try:
        with reading(path):
            answer = health(connection, path, retention_days, 0.0)
        print_json(answer)
    finally:
        connection.close()


@app.command()
def serve(
    host: Annotated[str, typer.Option(envvar="SDK_TELEMETRY_SERVE_HOST", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="SDK_TELEMETRY_SERVE_PORT", help="Port (0: any free port).")] = 4319,
    store: StoreOption = None,
    api_key: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            envvar="SDK_TELEMETRY_SERVE_API_KEYS",
            help="An accepted API key (repeat, or a comma list in the variable); never logged.",
            show_default=False,
        ),
    ] = None,
    insecure_no_auth: Annotated[
        bool,
        typer.Option("--insecure-no-auth", help="Accept requests without an API key (on a loopback --host only)."),
    ] = False,
    composio_keyless: Annotated[
        bool,
        typer.Option(
            "--composio-keyless",
            envvar="SDK_TELEMETRY_SERVE_COMPOSIO_KEYLESS",
            help="Accept Composio clients that send no key, on the Composio routes only, rate-limited per client.",
        ),
    ] = False,
    keyless_rate: Annotated[
        float,
        typer.Option(envvar="SDK_TELEMETRY_SERVE_KEYLESS_RATE", help="Keyless requests per second per client address."),
    ] = DEFAULT_KEYLESS_RATE,
    keyless_burst: Annotated[
        int,
        typer.Option(envvar="SDK_TELEMETRY_SERVE_KEYLESS_BURST", help="Keyless requests a client may send at once."),
    ] = DEFAULT_KEYLESS_BURST,
    max_body_bytes: Annotated[
        int, typer.Option(envvar="SDK_TELEMETRY_SERVE_MAX_BODY_BYTES", help="Largest body, after decompression.")
    ] = DEFAULT_MAX_BODY_BYTES,
    max_backlog_rows: Annotated[
        int, typer.Option(envvar="SDK_TELEMETRY_SERVE_MAX_BACKLOG", help="Rows waiting for the store before 503.")
    ] = DEFAULT_MAX_BACKLOG_ROWS,
    max_connections: Annotated[
        int, typer.Option(envvar="SDK_TELEMETRY_SERVE_MAX_CONNECTIONS", help="Connections at once (503 beyond).")
    ] = DEFAULT_MAX_CONNECTIONS,
    max_inflight_bytes: Annotated[
        int,
        typer.Option(
            envvar="SDK_TELEMETRY_SERVE_MAX_INFLIGHT_BYTES", help="Bytes of request bodies held at once (503 beyond)."
        ),
    ] = DEFAULT_MAX_INFLIGHT_BYTES,
    header_timeout: Annotated[
        float, typer.Option(envvar="SDK_TELEMETRY_SERVE_HEADER_TIMEOUT", help="Seconds for a request's headers.")
    ] = DEFAULT_HEADER_TIMEOUT,
    body_timeout: Annotated[
        float, typer.Option(envvar="SDK_TELEMETRY_SERVE_BODY_TIMEOUT", help="Seconds a body may stall (408 beyond).")
    ] = DEFAULT_BODY_TIMEOUT,
    retention_days: Annotated[
        float, typer.Option(envvar="SDK_TELEMETRY_RETENTION_DAYS", help="Days raw data is kept (0: forever).")
    ] = DEFAULT_RETENTION_DAYS,
    retention_interval: Annotated[
        float, typer.Option(envvar="SDK_TELEMETRY_RETENTION_INTERVAL", help="Seconds between retention sweeps.")
    ] = DEFAULT_RETENTION_INTERVAL,
    retention_hourly_days: HourlyDaysOption = DEFAULT_ROLLUP_DAYS["hour"],
    retention_daily_days: DailyDaysOption = DEFAULT_ROLLUP_DAYS["day"],
    retention_weekly_days: WeeklyDaysOption = DEFAULT_ROLLUP_DAYS["week"],
    retention_monthly_days: MonthlyDaysOption = DEFAULT_ROLLUP_DAYS["month"],
    clickhouse_url: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--clickhouse-url",
            envvar="SDK_TELEMETRY_SERVE_CLICKHOUSE_URL",
            help="Also copy what is stored to this ClickHouse server (clickhouse-connect DSN; the clickhouse extra).",
            show_default=False,
        ),
    ] = None,
    store_client_ip: Annotated[
        bool,
        typer.Option(
            "--store-client-ip",
            envvar="SDK_TELEMETRY_SERVE_STORE_CLIENT_IP",
            help="Store the client's address, truncated to /24 (IPv4) or /48 (IPv6).",
        ),
    ] = False,
    monitors: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(envvar="SDK_TELEMETRY_MONITORS", help="Threshold rules to evaluate (.yaml or .toml)."),
    ] = None,
    clickhouse: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--clickhouse",
            envvar="SDK_TELEMETRY_CLICKHOUSE_URL",
            help="Serve the dashboard, the analytics API and the monitors from ClickHouse (a server URL or "
            "chdb:PATH) instead of the store; the receiver still stores (and copies with --clickhouse-url).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the receiver: Composio-style, Tinker-style and OTLP/HTTP endpoints into the store."""
    try:
        import uvicorn

        from sdk_telemetry.dashboard import mount
        from sdk_telemetry.monitors import MonitorConfigError, load_config
        from sdk_telemetry.receiver import ReceiverSettings, create_app, uvicorn_config
    except ImportError as exc:
        raise missing_extra("`sdk-telemetry serve`", "server", exc) from None
    import socket

    keys = tuple(part for value in api_key or () for part in parse_list(value))
    path = store_path(store)
    if insecure_no_auth and not is_loopback(host):
        typer.echo(
            f"sdk-telemetry serve: --insecure-no-auth is for a loopback --host only (127.0.0.1, ::1), not {host!r};"
            " give an --api-key (and --composio-keyless for keyless Composio clients)",
            err=True,
        )
        raise typer.Exit(2)
    try:
        settings = ReceiverSettings(
            store_path=path,
            api_keys=keys,
            insecure_no_auth=insecure_no_auth,
            composio_keyless=composio_keyless,
            keyless_rate=keyless_rate,
            keyless_burst=keyless_burst,
            max_body_bytes=max_body_bytes,
            max_backlog_rows=max_backlog_rows,
            max_connections=max_connections,
            max_inflight_bytes=max_inflight_bytes,
            header_timeout=header_timeout,
            body_timeout=body_timeout,
            retention_days=retention_days,
            retention_interval=retention_interval,
            retention_hourly_days=retention_hourly_days,
            retention_daily_days=retention_daily_days,
            retention_weekly_days=retention_weekly_days,
            retention_monthly_days=retention_monthly_days,
            store_client_ip=store_client_ip,
            clickhouse_url=clickhouse_url,
        )
    except ValueError as exc:
        typer.echo(f"sdk-telemetry serve: {exc}", err=True)
        raise typer.Exit(2) from None
    try:  # a bad rule stops the start-up, naming the rule
        rules = load_config(monitors) if monitors else None
    except MonitorConfigError as exc:
        typer.echo(f"sdk-telemetry serve: {exc}", err=True)
        raise typer.Exit(2) from None
    # Rules are checked against what was recorded before retention removes the oldest of it.
    read_from = Location.of(path, clickhouse)
    unknown = unrecorded_rule_functions(read_from, rules.rules) if rules is not None else []
    removed = _prepare_store(path, retention_days, settings.rollup_days)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: uvicorn does not set it on sockets it is handed, and
    # Nagle's algorithm would hold every keep-alive response's body for a delayed ACK (40 ms).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)  # connections made from now on wait until the app is ready
    except OSError as exc:
        typer.echo(f"sdk-telemetry serve: cannot listen on {host}:{port}: {exc}", err=True)
        raise typer.Exit(1) from None
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    auth = "no authentication (--insecure-no-auth)" if insecure_no_auth else f"{len(keys)} API key(s)"
    if composio_keyless and not insecure_no_auth:
        auth += f"; Composio routes also without a key, {keyless_rate:g} requests/s per client"
    typer.echo(f"sdk-telemetry serve: listening on http://{shown}:{bound} ({auth})")
    copy = "; copying to ClickHouse" if clickhouse_url else ""
    typer.echo(f"sdk-telemetry serve: storing in {path} (retention {retention_days:g} days){copy}")
    reads = f" (reading ClickHouse at {read_from})" if clickhouse else ""
    typer.echo(f"sdk-telemetry serve: dashboard at http://{shown}:{bound}/dashboard/{reads}")
    if clickhouse and not _clickhouse_rollups(read_from):
        typer.echo(
            "sdk-telemetry serve: ClickHouse has no rollups yet: `sdk-telemetry rollups --create --clickhouse URL` "
            "makes long ranges and the filters' lists fast",
            err=True,
        )
    if removed:
        typer.echo(f"sdk-telemetry serve: retention removed {removed}")
    for warning in unknown:  # before the rules' line: a reader of that line has seen them
        typer.echo(f"sdk-telemetry serve: {warning}", err=True)
    if rules is not None:
        typer.echo(f"sdk-telemetry serve: evaluating {len(rules.rules)} monitor rule(s) from {monitors}")
    sys.stdout.flush()
    try:
        application = create_app(settings)
        mount(application, read_from, monitors=rules, api_keys=None if insecure_no_auth else keys)
    except MissingExtra as exc:
        typer.echo(f"sdk-telemetry serve: --clickhouse-url: {exc}", err=True)
        raise typer.Exit(1) from None
    config = uvicorn_config(application, settings, lifespan="on")
    _server_class(uvicorn.Server)(config).run(sockets=[sock])
    typer.echo("sdk-telemetry serve: stopped; everything accepted is stored")


def _prepare_store(path: Path, retention_days: float, rollup_days: dict[Tier, float]) -> str:
    """Check that `path` is a store (or new), create its schema and apply retention before the
    receiver starts; what retention removed, as text ('' for nothing). A file that is not a store,
    or a damaged one, ends the command with one line (exit 1)."""
    if path.exists() and path.stat().st_size:
        open_store(path).close()  # refuses a file that is not a store, before anything is written
    with reading(path):
        try:
            connection = connect(path)
        except OSError as exc:
            typer.echo(f"sdk-telemetry serve: cannot create the store {path}: {exc.strerror or exc}", err=True)
            raise typer.Exit(1) from None
        try:
            deleted = apply_retention(connection, retention_days, rollup_days=rollup_days)
        finally:
            connection.close()
    names = {"spans": "span(s)", "events": "event(s)", "metrics": "metric value(s)"}
    raw = ", ".join(
        f"{count:,} {names.get(table, table)}" for table, count in deleted.items() if count and table in names
    )
    text = f"{raw} older than {retention_days:g} days" if raw else ""
    if deleted.get("rollups"):
        text += f"{'; ' if text else ''}{deleted['rollups']:,} rollup bucket(s) older than their tier keeps"
    return text


def _clickhouse_rollups(location: Location) -> bool:
    """Whether the ClickHouse at `location` keeps rollups (True when it cannot be asked now: the
    dashboard says why on its own)."""
    try:
        with location.open() as source:
            return bool(source.reader.rollup_tiers())
    except Exception:  # unreachable, no tables yet: not this notice's business
        return True


def _server_class(base: Any) -> Any:
    """uvicorn's Server, except that after a graceful shutdown on SIGINT/SIGTERM the command ends
    normally (exit 0, with its closing line) instead of re-raising the signal."""
    import contextlib

    class Server(base):  # type: ignore[misc,valid-type]
        @contextlib.contextmanager
        def capture_signals(self) -> Any:
            with super().capture_signals():
                yield
                self._captured_signals.clear()

    return Server


@contextmanager
def _clickhouse(url: str) -> Iterator[ClickHouseStore]:
    """The ClickHouse at `url`; what keeps it from answering ends the command with one line (exit 1)."""
    try:
        yield open_clickhouse(url)
    except MissingExtra as exc:
        raise missing_extra("--clickhouse", exc.extra) from None
    except QueryError:
        raise
    except Exception as exc:  # the engine's own errors (two client libraries): one line, not a traceback
        lines = str(exc).strip().splitlines()
        typer.echo(f"sdk-telemetry: ClickHouse at {shown(url)}: {lines[0] if lines else type(exc).__name__}", err=True)
        raise typer.Exit(1) from None


def _stats_table(rows: list[FunctionStats], path: str) -> Table:
    table = Table(title=f"Calls by function — {path}", title_justify="left")
    table.add_column("function", style="bold", no_wrap=True)
    for column in ("calls", "errors", "error rate", "mean ms", "p50 ms", "p95 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="right")
    for row in rows:
        rate = f"{row.error_rate:.1%}"
        table.add_row(
            row.function,
            f"{row.calls:,}",
            f"{row.errors:,}",
            f"[red]{rate}[/red]" if row.errors else rate,
            f"{row.mean_ms:.2f}",
            f"{row.p50_ms:.2f}",
            f"{row.p95_ms:.2f}",
            f"{row.p99_ms:.2f}",
            f"{row.max_ms:.2f}",
        )
    if not rows:
        table.caption = "No instrumented calls recorded yet."
    elif any(row.kept != row.calls for row in rows):
        table.caption = "Calls and errors scaled by the sampling rate; durations over the kept calls."
    return table


def _errors_table(rows: list[ErrorGroup], path: str) -> Table:
    table = Table(title=f"Top errors — {path}", title_justify="left")
    table.add_column("error type", style="bold red", no_wrap=True)
    table.add_column("count", justify="right")
    table.add_column("functions", justify="right")
    table.add_column("last seen")
    table.add_column("latest message (function)", overflow="fold")
    for row in rows:
        table.add_row(
            row.error_type,
            f"{row.count:,}",
            str(row.functions),
            row.last_seen or "",
            f"{row.sample_message} ({row.sample_function})",
        )
    if not rows:
        table.caption = "No errors recorded."
    return table


register_cli(app)  # funnel, journeys, retention, adoption, perf, export, monitors, mcp
