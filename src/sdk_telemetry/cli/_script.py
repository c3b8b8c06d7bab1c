"""The `sdk-telemetry` console script: the Typer app, or, without the `cli` extra, one line saying what
to install (exit 1) instead of a traceback. Imports nothing of the CLI's libraries until it runs."""

from __future__ import annotations

import sys

#: The libraries of the `cli` extra (Typer brings Click and Rich).
CLI_LIBRARIES = frozenset({"typer", "click", "rich"})


def needs_extra(what: str, extra: str, reason: object = None) -> str:
    """The one-line message for a part of sdk-telemetry whose extra is not installed."""
    because = f" ({reason})" if reason is not None else ""
    return f"{what} needs the {extra} extra: pip install 'sdk-telemetry[{extra}]'{because}"


def main() -> None:
    """Entry point of the `sdk-telemetry` console script."""
    try:
        from sdk_telemetry.cli.commands import app
    except ModuleNotFoundError as exc:
        library = (exc.name or "").partition(".")[0]
        if library not in CLI_LIBRARIES:
            raise
        sys.stderr.write(needs_extra("`sdk-telemetry`", "cli", f"no module named {library!r}") + "\n")
        raise SystemExit(1) from None
    app()
