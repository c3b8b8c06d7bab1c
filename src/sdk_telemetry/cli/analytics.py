"""The analytics commands of `sdk-telemetry`: funnel, journeys, retention, adoption, perf, export, monitors, mcp.

`register_cli(app)` adds them to the main Typer app. Each prints a readable table, or JSON with `--json`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table
from sdk_telemetry_exporters.config import parse_list

from sdk_telemetry.analytics import adoption, export, funnel, journeys, parse_duration, performance, retention
from sdk_telemetry.cli._options import (
    ByOption,
    JsonOption,
    PeriodOption,
    StoreOption,
    StoreRange,
    console,
    grouped,
    missing_extra,
    print_json,
)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def register_cli(app: typer.Typer) -> None:
    """Add the analytics, monitors and MCP commands to `app`."""

    @app.command("funnel")
    @grouped
    def funnel_command(
        steps: Annotated[list[str], typer.Argument(help="Ordered steps: function or event names.")],
        window: Annotated[str, typer.Option(help="Time allowed from the first step (30m, 1h, 1d).")] = "1h",
        by: ByOption = "session",
        *,
        scope: StoreRange,
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
        *,
        scope: StoreRange,
        json: JsonOption = False,
    ) -> None:
        """The commonest paths through functions within sessions, and where sessions end."""
        with scope.source() as source:
            result = journeys(source, by, scope.time_range(), max_steps, limit)
        if json:
            return print_json(result.as_dict())
        table = Table(title=f"Journeys — {result.sessions:,} {by}s", title_justify="left")
        table.add_column("path")
        table.add_column(by + "s", justify="right")
        table.add_column("share", justify="right")
        for path in result.paths:
            table.add_row(" → ".join(path["path"]), f"{path['count']:,}", f"{path['share']:.1%}")
        console().print(table)

    @app.command("retention")
    @grouped
    def retention_command(
        by: ByOption = "user",
        period: PeriodOption = "day",
        periods: Annotated[int, typer.Option(help="Periods to follow each cohort for.")] = 8,
        *,
        scope: StoreRange,
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
            table.add_row(cohort.cohort[:16], f"{cohort.size:,}", *(f"{rate:.0%}" for rate in cohort.rates))
        console().print(table)

    @app.command("adoption")
    @grouped
    def adoption_command(
        by: ByOption = "session",
        period: PeriodOption = "day",
        threshold: Annotated[float, typer.Option(help="Fitted change in share that makes a trend.")] = 0.05,
        *,
        scope: StoreRange,
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
        scope: StoreRange,
        json: JsonOption = False,
    ) -> None:
        """p50/p95/p99, error rate and throughput per time bucket."""
        with scope.source() as source:
            seconds = parse_duration(step, "step") if step else None
            result = performance(source, function, scope.time_range(), seconds)
        if json:
            return print_json(result.as_dict())
        table = Table(title=f"Performance of {function or 'all calls'}", title_justify="left")
        for column in ("bucket", "calls", "errors", "error rate", "calls/s", "p50 ms", "p95 ms", "p99 ms"):
            table.add_column(column, justify="left" if column == "bucket" else "right")
        for bucket in result.buckets:
            table.add_row(
                bucket.start,
                f"{bucket.calls:,.0f}",
                f"{bucket.errors:,.0f}",
                f"{bucket.error_rate:.1%}",
                f"{bucket.throughput_per_s:.3g}",
                _ms(bucket.p50_ms),
                _ms(bucket.p95_ms),
                _ms(bucket.p99_ms),
            )
        console().print(table)

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
        scope: StoreRange,
    ) -> None:
        """Export calls, events or aggregates for a time range as CSV or Parquet."""
        chosen = fmt or ("parquet" if out.suffix.lower() == ".parquet" else "csv")
        with scope.source() as source:
            seconds = parse_duration(step, "step") if step else None
            time_range = scope.time_range()
            if str(out) == "-":
                count = export(source, sys.stdout, kind, chosen, time_range, function, seconds)
            else:
                count = export(source, out, kind, chosen, time_range, function, seconds)
        typer.echo(f"exported {count:,} {kind} row(s) to {out}", err=True)

    @app.command("monitors")
    def monitors_command(
        rules: Annotated[Path, typer.Argument(help="A monitors file (.yaml, .yml or .toml) to check.")],
        json: JsonOption = False,
    ) -> None:
        """Check a monitors file and list its rules (exit 2 naming the bad rule)."""
        from sdk_telemetry.monitors import MonitorConfigError, load_config

        try:
            config = load_config(rules)
        except MonitorConfigError as exc:
            typer.echo(f"sdk-telemetry monitors: {exc}", err=True)
            raise typer.Exit(2) from None
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
            serve(store, transport, host, port, receiver, receiver_api_key, keys, insecure_no_auth)
        except ValueError as exc:
            typer.echo(f"sdk-telemetry mcp: {exc}", err=True)
            raise typer.Exit(2) from None


__all__ = ["register_cli"]
