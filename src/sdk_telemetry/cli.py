"""The `sdk-telemetry` command."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import orjson
import typer
from rich.console import Console
from rich.table import Table

from sdk_telemetry._settings import resolve_settings
from sdk_telemetry.store import _sqlite
from sdk_telemetry.store.queries import FunctionStats, function_stats

app = typer.Typer(help="sdk-telemetry: look at what your SDK's telemetry recorded.", no_args_is_help=True)


@app.callback()
def _root() -> None:
    """sdk-telemetry: look at what your SDK's telemetry recorded."""


@app.command()
def stats(
    store: Annotated[
        Optional[Path],  # noqa: UP045 (typer needs Optional on Python 3.10)
        typer.Option(help="The store file (default: SDK_TELEMETRY_STORE or the user data directory)."),
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")] = False,
) -> None:
    """Per function: calls, errors, error rate, mean, p50, p95 and max duration."""
    path = store or resolve_settings().store_path
    try:
        connection = _sqlite.connect(path, create=False)
    except FileNotFoundError:
        typer.echo(f"No telemetry recorded yet: no store at {path}.", err=True)
        raise typer.Exit(1) from None
    try:
        rows = function_stats(connection)
    finally:
        connection.close()
    if json:
        sys.stdout.write(orjson.dumps([row.as_dict() for row in rows], option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    # Piped output gets room for the whole table instead of the default 80 columns.
    Console(width=None if sys.stdout.isatty() else 160).print(_table(rows, path))


def _table(rows: list[FunctionStats], path: Path) -> Table:
    table = Table(title=f"Calls by function — {path}", title_justify="left")
    table.add_column("function", style="bold", no_wrap=True)
    for column in ("calls", "errors", "error rate", "mean ms", "p50 ms", "p95 ms", "max ms"):
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
            f"{row.max_ms:.2f}",
        )
    if not rows:
        table.caption = "No instrumented calls recorded yet."
    return table


def main() -> None:
    """Entry point of the `sdk-telemetry` console script."""
    app()
