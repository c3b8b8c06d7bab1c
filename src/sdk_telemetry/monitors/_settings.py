"""The monitors' settings: which rules file the receiver evaluates."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typing_extensions import TypedDict


class MonitorArguments(TypedDict, total=False):
    """Arguments about monitors (`sdk-telemetry serve --monitors`)."""

    monitors: str | Path | None


@dataclass(frozen=True)
class MonitorSettings:
    """Where the threshold rules come from (None: no monitors)."""

    rules_path: Path | None = None

    @classmethod
    def resolve(cls, arguments: Mapping[str, Any], environ: Mapping[str, str]) -> MonitorSettings:
        """`monitors` argument, then `SDK_TELEMETRY_MONITORS`, then none."""
        value = arguments.get("monitors") or environ.get("SDK_TELEMETRY_MONITORS") or None
        return cls(Path(value) if value else None)
