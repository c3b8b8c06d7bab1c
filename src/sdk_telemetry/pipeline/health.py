"""Status from `Telemetry.stats()`: is telemetry getting through, per exporter, and since when not.

`ok` only while data is being delivered: nothing lost, nothing waiting in the spool, no failure
since the last success and no configuration problem. `failing`: the exporter is not delivering
now (its last attempt failed, or it cannot send at all). `degraded`: it delivers again, but data
was lost or still waits in the spool.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

LEVELS = ("ok", "degraded", "failing")


@dataclass(frozen=True)
class ExporterHealth:
    """The state of one exporter: its level, what is wrong and since when (a wall-clock time, or None)."""

    name: str
    level: str
    exported: int
    queued: int
    retried: int
    spooled: int
    resent: int
    lost: int
    pending_batches: int
    problem: str | None
    since: float | None

    def line(self, now: float) -> str:
        """`<name> <level> (<figures>)`, then what is wrong and since when."""
        figures = [
            f"{self.exported} exported",
            f"{self.queued} queued",
            f"{self.retried} retried",
            f"{self.spooled} spooled",
            f"{self.resent} resent",
            f"{self.lost} lost",
        ]
        if self.pending_batches:
            figures.append(f"{self.pending_batches} batch(es) waiting in the spool")
        text = f"{self.name} {self.level} ({', '.join(figures)})"
        if self.problem:
            when = "" if self.since is None else f" {_age(now - self.since)} ago"
            text += f", {'failing since' if self.level == 'failing' else 'last error'}{when}: {self.problem}"
        return text


def exporter_health(name: str, entry: Mapping[str, Any]) -> ExporterHealth:
    """The health of one exporter from its batching stage's stats (`entry`, with the exporter's under `exporter`)."""
    exporter: Mapping[str, Any] = entry.get("exporter") or {}
    # An exporter that keeps its own books (the HTTP ones) counts each failed item as spooled or
    # dropped; for the others (local, OTLP) every item the batching stage saw fail is lost.
    own_books = "dropped" in exporter
    lost = _total(entry.get("dropped")) + (
        _total(exporter.get("dropped")) if own_books else int(entry.get("failed") or 0)
    )
    pending = int(exporter.get("spool_pending") or 0)
    error, error_time = _latest_error(entry, exporter)
    success = max(_time(exporter.get("last_success_time")), _time(entry.get("last_success_time")))
    config_problem = exporter.get("problem")
    failing_now = bool(config_problem) or (error is not None and (error_time or 0.0) >= success)
    problem: str | None
    since: float | None
    if config_problem:
        problem, since = str(config_problem), _first_time(exporter.get("failing_since"), entry.get("failing_since"))
    elif failing_now:
        problem = error
        since = _first_time(exporter.get("failing_since"), entry.get("failing_since")) or error_time
    else:
        problem, since = error, error_time
    level = "failing" if failing_now else "degraded" if lost or pending else "ok"
    return ExporterHealth(
        name=name,
        level=level,
        exported=int(exporter.get("exported", entry.get("exported", 0)) or 0),
        queued=int(entry.get("queue") or 0),
        retried=int(exporter.get("retried") or 0),
        spooled=int(exporter.get("spooled") or 0) + int(entry.get("spooled") or 0),
        resent=int(exporter.get("resent") or 0),
        lost=lost,
        pending_batches=pending,
        problem=problem if level != "ok" else None,
        since=since if level != "ok" else None,
    )


def exporters_health(stats: Mapping[str, Any]) -> Iterator[ExporterHealth]:
    """The health of every span exporter, then of every events exporter (named `<name> events`)."""
    for name, entry in (stats.get("exporters") or {}).items():
        yield exporter_health(name, entry)
    for name, entry in ((stats.get("session") or {}).get("exporters") or {}).items():
        yield exporter_health(f"{name} events", entry)


def health_summary(stats: Mapping[str, Any], now: float | None = None) -> str:
    """`ok`, `degraded` or `failing` (or `disabled`), then per exporter what was sent, retried,
    spooled and lost, and, when it is not ok, what is wrong and since when."""
    if not stats.get("enabled", True):
        return f"disabled ({stats.get('disabled_reason') or 'off'})"
    moment = time.time() if now is None else now
    states = list(exporters_health(stats))
    if not states:
        return "ok: no exporter"
    worst = max((state.level for state in states), key=LEVELS.index)
    return f"{worst}: " + "; ".join(state.line(moment) for state in states)


def undelivered(stats: Mapping[str, Any]) -> tuple[int, int]:
    """Items lost so far and batches waiting in a spool, over every exporter (for `flush()`)."""
    states = list(exporters_health(stats))
    return sum(state.lost for state in states), sum(state.pending_batches for state in states)


def _latest_error(entry: Mapping[str, Any], exporter: Mapping[str, Any]) -> tuple[str | None, float | None]:
    """The error to show, with its time (None when unknown): the exporter's when it failed since its last
    success (it says why), else the most recent of the exporter's and the batching stage's."""
    own = exporter.get("last_error")
    if own and _time(exporter.get("last_error_time")) >= _time(exporter.get("last_success_time")):
        moment = max(_time(exporter.get("last_error_time")), _time(entry.get("last_error_time")))
        return str(own), moment or None
    candidates = [
        (str(source["last_error"]), _time(source.get("last_error_time")))
        for source in (exporter, entry)
        if source.get("last_error")
    ]
    if not candidates:
        return None, None
    error, moment = max(candidates, key=lambda candidate: candidate[1])
    return error, moment or None


def _first_time(*values: Any) -> float | None:
    """The earliest real (non-zero) time among `values`, or None."""
    times = [_time(value) for value in values if _time(value) > 0]
    return min(times) if times else None


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _total(dropped: Any) -> int:
    if isinstance(dropped, Mapping):
        return sum(int(value or 0) for value in dropped.values())
    return int(dropped or 0)


def _time(value: Any) -> float:
    """A wall-clock time in seconds, 0.0 when absent or not a number."""
    try:
        return float(value) if value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0
