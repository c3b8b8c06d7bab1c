"""The `sdk-telemetry` command (needs the `cli` extra): `commands` is the Typer app with the store's
queries and the receiver, `analytics` the analytics commands added to it, `mcp_server` the MCP
server; `main` (the console script) says which extra to install when the CLI's libraries are missing."""

from sdk_telemetry.cli._script import main

__all__ = ["main"]
