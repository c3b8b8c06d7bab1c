"""The analytics commands of `sdk-telemetry`: funnel, journeys, retention, adoption, perf, export, the
drill-down (calls, trace, sessions, session, tail, and `errors --stack`), monitors, mcp.

`register_cli(app)` adds them to the main Typer app. Each prints a readable table, or JSON with `--json`;
each analysis takes `--service` and `--environment`.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import orjson
import typer
from rich.markup import escape
from rich.table import Table
from sdk_telemetry_exporters.config import parse_list

from sdk_telemetry.analytics import (
    Location,
    NotFound,
    Source,
    adoption,
    did_you_mean,
    error_occurrences,
    export,
    funnel,
    journeys,
    parse_duration,
    performance,
    recent_calls,
    retention,
    session_timeline,
    sessions,
    tail,
    top_errors,
    trace,
)
from sdk_telemetry.cli._options import (
    ByOption,
    ClickHouseOption,
    DailyDaysOption,
    EnvironmentOption,
    HourlyDaysOption,
    JsonOption,
    MonthlyDaysOption,
    PeriodOption,
    ServiceOption,
    StoreOption,
    StoreQuery,
    StoreRange,
    WeeklyDaysOption,
    console,
    grouped,
    missing_extra,
    print_json,
    reading,
)
from sdk_telemetry.store import DEFAULT_ROLLUP_DAYS, TIERS, iso

LimitOption = Annotated[int, typer.Option(min=1, max=10_000, help="How many rows at most.")]


@dataclasses.dataclass(frozen=True)
class Scope(StoreRange):
    """What an analysis reads: `--since`, `--until`, `--store`, `--service`, `--environment`."""

    service: ServiceOption = None
    environment: EnvironmentOption = None

    @contextmanager
    def source(self) -> Iterator[Source]:
        """The store, open and narrowed to `--service` and `--environment`; an unknown trace or session
        ends the command with one line (exit 1)."""
        with super().source() as source:
            try:
                yield source.filtered(self.service, self.environment)
            except NotFound as exc:
                typer.echo(f"sdk-telemetry: {exc}", err=True)
                raise typer.Exit(1) from None


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _perf_cells(label: str, figures: dict[str, Any]) -> list[str]:
    """One row of the `perf` table: a bucket's (or the whole range's) figures."""
    rate = figures["error_rate"] if figures["calls"] else None
    return [
        label,
        f"{figures['calls']:,.0f}",
        f"{figures['errors']:,.0f}",
        "-" if rate is None else f"{rate:.1%}",
        f"{figures['throughput_per_min']:,.2f}",
        _ms(figures["p50_ms"]),
        _ms(figures["p95_ms"]),
        _ms(figures["p99_ms"]),
    ]


def _call_line(call: dict[str, Any]) -> str:
    """One call on one line: time, function, duration, outcome, session and trace id."""
    outcome = "ok" if call["status"] != "Error" else f"[red]{escape(call['error_type'] or 'Error')}[/red]"
    return (
        f"{call['timestamp']}  [bold]{escape(call['function'])}[/bold]  {call['duration_ms']:,.1f} ms  {outcome}"
        f"  session {escape(call['session_id'] or '-')}  trace {call['trace_id']}"
    )


def _attributes(values: dict[str, Any]) -> str:
    return "  ".join(f"{key}={value}" for key, value in sorted(values.items()))


def _json_line(value: Any) -> str:
    return orjson.dumps(value, default=str).decode() + "\n"


#: The export formats by file suffix.
EXPORT_SUFFIXES = {".csv": "csv", ".parquet": "parquet"}


def _export_format(out: Path) -> str:
    """The format `out`'s suffix names ('-', stdout, is CSV); an unknown suffix ends the command (exit 2)."""
    if str(out) == "-":
        return "csv"
    chosen = EXPORT_SUFFIXES.get(out.suffix.lower())
    if chosen is None:
        typer.echo(
            f"sdk-telemetry export: cannot tell the format of {out} from its suffix: use a .csv or .parquet file"
            " (or --format csv|parquet)",
            err=True,
        )
        raise typer.Exit(2)
    return chosen


def error_stacks(query: StoreQuery, limit: int) -> None:
    """`sdk-telemetry errors --stack`: each error group (type and function) with its latest occurrence's
    message, stack trace, session and trace."""
    scope = Scope(since=query.since, until=query.until, store=query.store, service=query.service,
                  environment=query.environment)  # fmt: skip
    with scope.source() as source:
        groups = top_errors(source, scope.time_range(), limit)
        for group in groups:
            found = error_occurrences(source, group["type"], group["function"], scope.time_range(), 1)
            group["latest"] = found[0] if found else None
    if query.json:
        return print_json(groups)
    out = console()
    if not groups:
        out.print("No errors recorded.")
    for group in groups:
        latest = group["latest"] or {}
        out.rule(
            f"[bold red]{escape(group['type'])}[/bold red] in {escape(group['function'])} — {group['count']:,.0f} times"
        )
        out.print(f"latest {group['last_seen']}  session {escape(latest.get('session_id') or '-')}  "
                  f"trace {latest.get('trace_id')}")  # fmt: skip
        out.print(escape(latest.get("message") or group["sample_message"] or ""))
        stack = latest.get("stacktrace")
        out.print(escape(stack.rstrip()) if stack else "(no stack recorded: raised through an inner call)")


def unrecorded_rule_functions(store: Path | Location, rules: Any) -> list[str]:
    """A warning for each monitor rule about a function the store never recorded, with close names."""
    location = Location.of(store)
    if location.path is not None and (not location.path.exists() or not location.path.stat().st_size):
        return []
    with reading(location.path or Path(str(location))), location.open() as source:
        known = source.recorded_functions()
    return [
        f"monitor rule {rule.name!r}: no calls of {rule.function!r} recorded yet{did_you_mean(rule.function, known)}"
        for rule in rules
        if rule.function and rule.function not in known
    ]


def register_cli(app: typer.Typer) -> None:
    """Add the analytics, monitors and MCP commands to `app`."""

    @app.command("funnel")
    @grouped
    def funnel_command(
        steps: Annotated[list[str], typer.Argument(help="Ordered steps: function or event names.")],
        window: Annotated[str, typer.Option(help="Time allowed from the first step (30m, 1h, 1d).")] = "1h",
        by: ByOption = "session",
        *,
        scope: Scope,
        json: JsonOption = False,
    ) -> None:
        """Conversion funnel: sessions (or users) reaching each step in order, and the drop-off."""
        with scope.source() as source:
            result = funnel(source, steps, parse_duration(window, "window"), by, scope.time_range())
        if json:
            return print_json(result.as_dict())
        table = Table(title=f"Funnel per {by} — window {window}", title_justify="left")
        for column in ("step", by + "s", "of entered", "from previous", "dropped"):
            table.add_column(column, justify="left" if column == "step" else "right")
        for index, step in enumerate(result.steps, start=1):
            table.add_row(
                f"{index}. {step.step}",
                f"{step.count:,}",
                f"{step.conversion:.1%}",
                f"{step.from_previous:.1%}",
                f"[red]{step.dropped:,}[/red]" if step.dropped else "0",
            )
        console().print(table)

    @app.command("journeys")
    @grouped
    def journeys_command(
        by: ByOption = "session",
        max_steps: Annotated[int, typer.Option(help="Cut paths at this many steps.")] = 5,
        limit: Annotated[int, typer.Option(help="How many paths to show.")] = 10,
        last: Annotated[
            str | None,
            typer.Option(help="Only the range's last stretch, such as 7d (ending at its end, or last call)."),
        ] = None,
        *,
        scope: Scope,
        json: JsonOption = False,
    ) -> None:
        """The commonest paths through functions within sessions, and where sessions end."""
        with scope.source() as source:
            stretch = parse_duration(last, "last") if last is not None else None
            result = journeys(source, by, scope.time_range(), max_steps, limit, last=stretch)
        if json:
            return print_json(result.as_dict())
        out = console()
        table = Table(title=f"Journeys — {result.sessions:,} {by}s", title_justify="left")
        table.add_column("path")
        table.add_column(by + "s", justify="right")
        table.add_column("share", justify="right")
        for path in result.paths:
            table.add_row(" → ".join(path["path"]), f"{path['count']:,}", f"{path['share']:.1%}")
        if not result.paths:
            table.caption = "No calls in this range."
        out.print(table)
        if result.transitions:
            moves = Table(title="Transitions (from a call to the next)", title_justify="left")
            for column in ("from", "to", "times"):
                moves.add_column(column, justify="right" if column == "times" else "left")
            for move in result.transitions:
                moves.add_row(move["from"], move["to"], f"{move['count']:,}")
            out.print(moves)
        if result.exits:
            exits = Table(title=f"Where {by}s end — their last call", title_justify="left")
            for column in ("function", by + "s", "share"):
                exits.add_column(column, justify="left" if column == "function" else "right")
            for end in result.exits:
                exits.add_row(end["function"], f"{end['count']:,}", f"{end['share']:.1%}")
            out.print(exits)

    @app.command("retention")
    @grouped
    def retention_command(
        by: ByOption = "user",
        period: PeriodOption = "day",
        periods: Annotated[int, typer.Option(help="Periods to follow each cohort for.")] = 8,
        *,
        scope: Scope,
        json: JsonOption = False,
    ) -> None:
        """Cohorts by first-seen period and the share returning in later periods."""
        with scope.source() as source:
            result = retention(source, by, period, periods, scope.time_range())
        if json:
            return print_json(result.as_dict())
        table = Table(title=f"Retention of {by}s by {result.period}", title_justify="left")
        table.add_column("cohort")
        table.add_column("size", justify="right")
        for index in range(periods):
            table.add_column(f"+{index}", justify="right")
        for cohort in result.cohorts:
            cells = ("" if rate is None else f"{rate:.0%}" for rate in cohort.rates)  # blank: not happened yet
            table.add_row(cohort.cohort[:16], f"{cohort.size:,}", *cells)
        console().print(table)

    @app.command("adoption")
    @grouped
    def adoption_command(
        by: ByOption = "session",
        period: PeriodOption = "day",
        threshold: Annotated[float, typer.Option(help="Fitted change in share that makes a trend.")] = 0.05,
        *,
        scope: Scope,
        json: JsonOption = False,
    ) -> None:
        """Share of sessions (or users) using each function per period, with the trend and why."""
        with scope.source() as source:
            result = adoption(source, by, period, scope.time_range(), None, threshold)
        if json:
            return print_json(result.as_dict())
        table = Table(title=f"Feature adoption — {result.active:,} active {by}s", title_justify="left")
        for column in ("function", by + "s", "share", "trend", "why"):
            table.add_column(column, justify="right" if column in (by + "s", "share") else "left")
        arrows = {"up": "[green]↑ up[/green]", "down": "[red]↓ down[/red]", "stable": "→ stable"}
        for feature in result.features:
            table.add_row(
                feature.function,
                f"{feature.users:,}",
                f"{feature.share:.1%}",
                arrows[feature.trend.direction],
                feature.trend.reason,
            )
        console().print(table)

    @app.command("perf")
    @grouped
    def perf_command(
        function: Annotated[Optional[str], typer.Argument(help="A function; default: all together.")] = None,  # noqa: UP045
        step: Annotated[Optional[str], typer.Option(help="Bucket width (1m, 1h); default ~60 buckets.")] = None,  # noqa: UP045
        *,
        scope: Scope,
        json: JsonOption = False,
    ) -> None:
        """p50/p95/p99, error rate and throughput per time bucket."""
        with scope.source() as source:
            seconds = parse_duration(step, "step") if step else None
            result = performance(source, function, scope.time_range(), seconds)
        if json:
            return print_json(result.as_dict())
        step_text = f"{result.step_seconds:g}s buckets"
        table = Table(title=f"Performance of {function or 'all calls'} — {step_text} (UTC)", title_justify="left")
        columns = ("bucket", "calls", "errors", "error rate", "calls/min", "p50 ms", "p95 ms", "p99 ms")
        for column in columns:
            table.add_column(column, justify="left" if column == "bucket" else "right")
        for bucket in result.buckets:
            table.add_row(*_perf_cells(bucket.start, bucket.__dict__))
        total = result.summary
        table.add_section()
        table.add_row(*_perf_cells("whole range", total), style="bold")
        table.caption = (
            "Every bucket of the range, empty ones too (per second: --json); exact percentiles (nearest rank)."
        )
        console().print(table)

    @app.command("calls")
    @grouped
    def calls_command(
        function: Annotated[Optional[str], typer.Argument(help="A function; default: every one.")] = None,  # noqa: UP045
        session: Annotated[Optional[str], typer.Option(help="Only this session's calls.")] = None,  # noqa: UP045
        errors: Annotated[bool, typer.Option("--errors", help="Only failed calls.")] = False,
        limit: LimitOption = 20,
        *,
        scope: Scope,
        json: JsonOption = False,
    ) -> None:
        """A function's recent calls, newest first, each with its trace id (for `sdk-telemetry trace ID`)."""
        with scope.source() as source:
            found = recent_calls(source, function, scope.time_range(), limit, session, errors)
        if json:
            return print_json(found)
        out = console()
        for call in found:
            out.print(_call_line(call), highlight=False)
        if not found:
            out.print("No calls in this range.")

    @app.command("trace")
    @grouped
    def trace_command(
        trace_id: Annotated[str, typer.Argument(help="A trace id (or its first 8+ hex digits).")],
        *,
        scope: Scope,
        json: JsonOption = False,
    ) -> None:
        """One trace as a waterfall: every span (HTTP children included) with its timing, attributes and stack."""
        with scope.source() as source:
            found = trace(source, trace_id)
        if json:
            return print_json(found)
        out = console()
        total = max(found["duration_ms"], 1e-9)
        out.print(f"[bold]trace {found['trace_id']}[/bold]  {found['start']}  {found['duration_ms']:,.1f} ms  "
                  f"{len(found['spans'])} span(s), {found['errors']} error(s)", highlight=False)  # fmt: skip
        width = 30
        for span in found["spans"]:
            left = round(width * span["offset_ms"] / total)
            size = max(1, round(width * span["duration_ms"] / total))
            bar = " " * min(left, width - 1) + "█" * min(size, width - min(left, width - 1))
            status = "[red]Error[/red]" if span["status"] == "Error" else span["status"]
            out.print(
                f"{'  ' * span['depth']}[bold]{escape(span['name'])}[/bold]  [dim]{escape(span['scope'])}[/dim]  "
                f"+{span['offset_ms']:,.1f} ms  {span['duration_ms']:,.1f} ms  {status}  |{bar:<{width}}|",
                highlight=False,
            )
            indent = "  " * (span["depth"] + 1)
            if span["attributes"]:
                out.print(f"{indent}{escape(_attributes(span['attributes']))}", highlight=False)
            for event in span["events"]:
                stack = (event["attributes"] or {}).get("exception.stacktrace")
                if stack:
                    out.print(escape(stack.rstrip()), highlight=False)

    @app.command("sessions")
    @grouped
    def sessions_command(
        limit: LimitOption = 20,
        *,
        scope: Scope,
        json: JsonOption = False,
    ) -> None:
        """Recent sessions: user, service, first and last call, calls, errors and events."""
        with scope.source() as source:
            found = sessions(source, scope.time_range(), limit)
        if json:
            return print_json(found)
        table = Table(title=f"Sessions — {len(found)} shown, latest active first", title_justify="left")
        for column in ("session", "user", "service", "start", "duration", "calls", "errors", "events"):
            table.add_column(column, justify="right" if column in ("calls", "errors", "events", "duration") else "left")
        for row in found:
            table.add_row(row["session_id"], row["user_id"] or "-", row["service"] or "-", row["start"],
                          f"{row['duration_s']:,.1f} s", f"{row['calls']:,}", f"{row['errors']:,}",
                          f"{row['events']:,}")  # fmt: skip
        console().print(table)

    @app.command("session")
    @grouped
    def session_command(
        session_id: Annotated[str, typer.Argument(help="A session id (see `sdk-telemetry sessions`).")],
        *,
        scope: Scope,
        json: JsonOption = False,
    ) -> None:
        """One session's calls and events, in time order."""
        with scope.source() as source:
            found = session_timeline(source, session_id)
        if json:
            return print_json(found)
        out = console()
        out.print(f"[bold]session {escape(found['session_id'])}[/bold]  user {escape(found['user_id'] or '-')}  "
                  f"{found['start']} → {found['end']}  {found['calls']} call(s), {found['errors']} error(s), "
                  f"{found['events']} event(s)", highlight=False)  # fmt: skip
        for item in found["items"]:
            if item["kind"] == "call":
                nested = "  " if item["parent_span_id"] else ""
                out.print(nested + _call_line(item), highlight=False)
            else:
                event = f"[cyan]event {escape(item['name'] or '')}[/cyan]  {escape(item['severity'] or '')}"
                out.print(f"{item['timestamp']}  {event}  {escape(item['body'] or '')}", highlight=False)

    @app.command("tail")
    @grouped
    def tail_command(
        limit: Annotated[int, typer.Option(min=0, help="Calls shown at the start.")] = 10,
        interval: Annotated[str, typer.Option(help="How often to look for new calls.")] = "1s",
        follow: Annotated[bool, typer.Option("--follow/--no-follow", help="Keep printing new calls.")] = True,
        *,
        scope: Scope,
        json: JsonOption = False,
    ) -> None:
        """Print calls as they are stored (the last few first), one line each (JSON lines with --json), until Ctrl-C."""
        pause = parse_duration(interval, "interval")
        out = console()

        def show(rows: list[dict[str, Any]]) -> None:
            for call in rows:
                if json:
                    sys.stdout.write(_json_line(call))
                else:
                    out.print(_call_line(call), highlight=False)
            sys.stdout.flush()

        with scope.source() as source:
            first = tail(source, None, limit) if limit else tail(source, None, 1)
            show(first["calls"] if limit else [])
            cursor = first["cursor"]
            try:
                while follow:
                    time.sleep(pause)
                    update = tail(source, cursor, 1000)
                    show(update["calls"])
                    cursor = update["cursor"]
            except KeyboardInterrupt:
                pass

    @app.command("rollups")
    def rollups_command(
        store: StoreOption = None,
        clickhouse: ClickHouseOption = None,
        create: Annotated[
            bool,
            typer.Option(
                "--create",
                help="On ClickHouse: create the rollup and error rollup tables and their materialized views over "
                "otel_traces, and the analysis columns (session, user, environment, error type, weight) on it, if "
                "absent; roll up the calls already stored (once).",
            ),
        ] = False,
        retention_hourly_days: HourlyDaysOption = DEFAULT_ROLLUP_DAYS["hour"],
        retention_daily_days: DailyDaysOption = DEFAULT_ROLLUP_DAYS["day"],
        retention_weekly_days: WeeklyDaysOption = DEFAULT_ROLLUP_DAYS["week"],
        retention_monthly_days: MonthlyDaysOption = DEFAULT_ROLLUP_DAYS["month"],
        json: JsonOption = False,
    ) -> None:
        """What each rollup tier (hour, day, week, month) holds, and from when raw rows hold every call."""
        with StoreRange(store=store, clickhouse=clickhouse).source() as source:
            created: dict[str, int] = {}
            if create:
                make = getattr(source.reader, "create_rollups", None)
                if make is None:
                    typer.echo("sdk-telemetry rollups: --create is for ClickHouse (the store keeps its own)", err=True)
                    raise typer.Exit(2)
                kept = (retention_hourly_days, retention_daily_days, retention_weekly_days, retention_monthly_days)
                # ClickHouse's TTL counts whole days: a fraction is rounded up (0 keeps forever).
                created = make({tier: math.ceil(days) for tier, days in zip(TIERS, kept, strict=True)})
            tiers = source.reader.rollup_tiers()
            since = source.reader.raw_complete_since()
        answer = {
            "engine": source.reader.engine,
            "raw_complete_since": iso(since) if since is not None else None,
            "created": created,
            "tiers": [{**dataclasses.asdict(row), "first": iso(row.first), "last": iso(row.last)} for row in tiers],
        }
        if json:
            return print_json(answer)
        for made, covered in created.items():  # `hour` ... `month errors`, `analysis columns`
            what = made if made == "analysis columns" else f"{made} rollup"
            typer.echo(f"created the {what} ({covered:,} stored call(s) covered)")
        table = Table(title=f"Rollups — {source.reader.location}", title_justify="left")
        for column in ("tier", "buckets", "first", "last", "calls", "stored"):
            table.add_column(column, justify="right" if column in ("buckets", "calls", "stored") else "left")
        for row in tiers:
            table.add_row(
                row.tier, f"{row.rows:,}", iso(row.first) or "-", iso(row.last) or "-", f"{row.calls:,.0f}",
                f"{row.kept:,}",
            )  # fmt: skip
        console().print(table if tiers else "no rollups (on ClickHouse: sdk-telemetry rollups --create)")
        console().print(f"raw rows hold every call since: {answer['raw_complete_since'] or 'the first one'}")

    @app.command("export")
    @grouped
    def export_command(
        out: Annotated[Path, typer.Argument(help="Output file (.csv or .parquet); '-' writes CSV to stdout.")],
        kind: Annotated[str, typer.Option(help="calls, events or aggregates (per function and bucket).")] = "calls",
        fmt: Annotated[
            Optional[str],  # noqa: UP045
            typer.Option("--format", help="csv or parquet (default: from the file's suffix)."),
        ] = None,
        function: Annotated[Optional[str], typer.Option(help="Only this function.")] = None,  # noqa: UP045
        step: Annotated[Optional[str], typer.Option(help="Bucket width for aggregates.")] = None,  # noqa: UP045
        *,
        scope: Scope,
    ) -> None:
        """Export calls, events or aggregates for a time range as CSV or Parquet."""
        chosen = fmt or _export_format(out)
        if str(out) != "-" and not out.parent.is_dir():
            typer.echo(f"sdk-telemetry export: cannot write {out}: no directory {out.parent}", err=True)
            raise typer.Exit(1)
        with scope.source() as source:
            seconds = parse_duration(step, "step") if step else None
            time_range = scope.time_range()
            try:
                count = export(source, sys.stdout if str(out) == "-" else out, kind, chosen, time_range, function,
                               seconds)  # fmt: skip
            except OSError as exc:  # the output file, not the store (which opened above)
                typer.echo(f"sdk-telemetry export: cannot write {out}: {exc.strerror or exc}", err=True)
                raise typer.Exit(1) from None
        typer.echo(f"exported {count:,} {kind} row(s) to {out}", err=True)

    @app.command("monitors")
    def monitors_command(
        rules: Annotated[Path, typer.Argument(help="A monitors file (.yaml, .yml or .toml) to check.")],
        json: JsonOption = False,
        store: StoreOption = None,
        clickhouse: ClickHouseOption = None,
    ) -> None:
        """Check a monitors file and list its rules (exit 2 naming the bad rule); warn of rules about
        functions the store never recorded."""
        from sdk_telemetry.monitors import MonitorConfigError, load_config

        try:
            config = load_config(rules)
        except MonitorConfigError as exc:
            typer.echo(f"sdk-telemetry monitors: {exc}", err=True)
            raise typer.Exit(2) from None
        for warning in unrecorded_rule_functions(Location.of(store, clickhouse), config.rules):
            typer.echo(f"sdk-telemetry monitors: {warning}", err=True)
        if json:
            return print_json({"interval_seconds": config.interval, "rules": [r.as_dict() for r in config.rules]})
        table = Table(title=f"{len(config.rules)} rule(s), evaluated every {config.interval:g}s", title_justify="left")
        for column in ("name", "condition", "for", "severity", "webhook"):
            table.add_column(column)
        for rule in config.rules:
            table.add_row(
                rule.name, rule.describe(), f"{rule.for_seconds:g}s", rule.severity, "yes" if rule.webhook else "—"
            )
        console().print(table)

    @app.command("mcp")
    def mcp_command(
        store: StoreOption = None,
        clickhouse: ClickHouseOption = None,
        transport: Annotated[str, typer.Option(help="stdio (for agents) or streamable-http.")] = "stdio",
        host: Annotated[str, typer.Option(help="Address for streamable-http.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port for streamable-http (path /mcp).")] = 8765,
        receiver: Annotated[
            Optional[str],  # noqa: UP045
            typer.Option(help="Base URL of a running receiver, for its queue figures."),
        ] = None,
        receiver_api_key: Annotated[
            Optional[str],  # noqa: UP045
            typer.Option(envvar="SDK_TELEMETRY_MCP_RECEIVER_API_KEY", help="API key for the receiver's /health."),
        ] = None,
        api_key: Annotated[
            Optional[list[str]],  # noqa: UP045
            typer.Option(
                envvar="SDK_TELEMETRY_SERVE_API_KEYS",
                help="A key streamable-http requires (the receiver's; repeat, or a comma list in the variable).",
                show_default=False,
            ),
        ] = None,
        insecure_no_auth: Annotated[
            bool, typer.Option("--insecure-no-auth", help="streamable-http without a key (on a loopback --host only).")
        ] = False,
    ) -> None:
        """Run the MCP server (tools for agents) over stdio or streamable HTTP (which needs an API key)."""
        try:
            from sdk_telemetry.cli.mcp_server import serve
        except ImportError as exc:
            raise missing_extra("`sdk-telemetry mcp`", "mcp", exc) from None
        if transport not in ("stdio", "streamable-http"):
            typer.echo(f"sdk-telemetry mcp: --transport must be stdio or streamable-http, got {transport!r}", err=True)
            raise typer.Exit(2)
        keys = tuple(part for value in api_key or () for part in parse_list(value))
        try:
            serve(
                Location.of(store, clickhouse),
                transport,
                host,
                port,
                receiver,
                receiver_api_key,
                keys,
                insecure_no_auth,
            )
        except ValueError as exc:
            typer.echo(f"sdk-telemetry mcp: {exc}", err=True)
            raise typer.Exit(2) from None


__all__ = ["register_cli", "unrecorded_rule_functions"]
