"""The demo SDK's tools: module-level functions (one of them a debug helper)."""

from __future__ import annotations


def search(query: str) -> list[str]:
    return [f"result for {query}"]


def debug_dump() -> str:
    return "state"
