"""A tiny demo SDK client, standing in for the SDK you are instrumenting.

It makes no network calls: its methods sleep a little, and one of them fails.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Iterator


class AcmeError(Exception):
    """An error the way SDKs raise them: with a code."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class Tools:
    """The client's `tools` namespace."""

    def execute(self, tool: str, api_key: str | None = None) -> dict[str, str]:
        time.sleep(random.uniform(0.001, 0.004))
        if tool == "broken":
            raise AcmeError(f"tool {tool!r} is not available", code="TOOL_NOT_FOUND")
        return {"tool": tool, "status": "ok"}

    async def execute_async(self, tool: str) -> dict[str, str]:
        await asyncio.sleep(random.uniform(0.001, 0.003))
        return {"tool": tool, "status": "ok"}

    def list(self, limit: int = 3) -> Iterator[str]:
        for index in range(limit):
            time.sleep(0.0005)
            yield f"tool-{index}"

    async def stream(self, limit: int = 3) -> AsyncIterator[str]:
        for index in range(limit):
            await asyncio.sleep(0.0005)
            yield f"event-{index}"


def fetch_status() -> str:
    """A module-level function of the SDK."""
    return "green"
