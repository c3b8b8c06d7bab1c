"""One line of status from `Telemetry.stats()`: is telemetry getting through, and what did it cost."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

#: An error this recent (seconds) means the endpoint is failing now rather than in the past.
RECENT_ERROR = 60.0


def health_summary(stats: Mapping[str, Any], now: float | None = None) -> str:
    """`ok`, `degraded` or `failing` (or `disabled`), then per exporter what was sent, retried, spooled and lost.

    `degraded`: something was lost, is waiting in the spool, or failed within the last minute
    with no success since. `failing`: such an error left batches waiting in the spool.
    """
    if not stats.get("enabled", True):
        return f"disabled ({stats.get('disabled_reason') or 'off'})"
    moment = time.time() if now is None else now
    exporters: Mapping[str, Any] = stats.get("exporters") or {}
    if not exporters:
        return "ok: no exporter"
    levels = {"ok": 0, "degraded": 1, "failing": 2}
    worst = "ok"
    parts = []
    for name, entry in exporters.items():
        level, text = _exporter_line(name, entry, moment)
        parts.append(text)
        if levels[level] > levels[worst]:
            worst = level
    return f"{worst}: " + "; ".join(parts)


def _exporter_line(name: str, entry: Mapping[str, Any], now: float) -> tuple[str, str]:
    exporter: Mapping[str, Any] = entry.get("exporter") or {}
    lost = _total(entry.get("dropped")) + _total(exporter.get("dropped"))
    pending = int(exporter.get("spool_pending") or 0)
    error_time = max(_number(entry.get("last_error_time")), _number(exporter.get("last_error_time")))
    error = (
        exporter.get("last_error")
        if _number(exporter.get("last_error_time")) >= _number(entry.get("last_error_time"))
        else entry.get("last_error")
    )
    recovered = _number(exporter.get("last_success_time")) > error_time
    recent = bool(error) and not recovered and now - error_time <= RECENT_ERROR
    level = "failing" if recent and pending else "degraded" if lost or pending or recent else "ok"
    figures = [
        f"{int(exporter.get('exported', entry.get('exported', 0)) or 0)} exported",
        f"{int(entry.get('queue') or 0)} queued",
        f"{int(exporter.get('retried') or 0)} retried",
        f"{int(exporter.get('spooled') or 0) + int(entry.get('spooled') or 0)} spooled",
        f"{int(exporter.get('resent') or 0)} resent",
        f"{lost} lost",
    ]
    if pending:
        figures.append(f"{pending} batch(es) waiting in the spool")
    text = f"{name} {level} ({', '.join(figures)})"
    if error:
        text += f", last error {max(0.0, now - error_time):.0f}s ago: {error}"
    return level, text


def _total(dropped: Any) -> int:
    if isinstance(dropped, Mapping):
        return sum(int(value or 0) for value in dropped.values())
    return int(dropped or 0)


def _number(value: Any) -> float:
    try:
        return float(value) if value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0
