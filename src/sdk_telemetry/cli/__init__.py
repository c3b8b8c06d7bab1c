"""The `sdk-telemetry` command: the store's queries, the receiver, the analytics commands and the
MCP server."""

from sdk_telemetry.cli.main import app, main

__all__ = ["app", "main"]
