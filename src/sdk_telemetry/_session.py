"""Sessions: one per telemetry setup, with an id and a start time. (Settings only, for now.)"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from typing_extensions import TypedDict


class SessionArguments(TypedDict, total=False):
    """`configure_telemetry()` arguments about sessions and events."""


@dataclass(frozen=True)
class SessionSettings:
    """How sessions and events behave."""

    @classmethod
    def resolve(cls, arguments: Mapping[str, Any], environ: Mapping[str, str]) -> SessionSettings:
        """From `configure_telemetry()` arguments (already without Nones), then `environ`, then defaults."""
        return cls()
