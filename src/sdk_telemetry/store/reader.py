"""The store interface: every question the query layer (analyses, dashboard, MCP tools, monitors,
exports) asks of a store, answered by the embedded SQLite store (`SQLiteReader`) and by ClickHouse
(`ClickHouseReader`) alike.

Like httpx's transports, it is one small interface with interchangeable implementations: the
analyses hold their logic (cohorts, trends, waterfalls) once and ask a `Reader` only for the rows
and aggregates they need, in plain Python values; each engine answers in its own SQL (SQLite walks
its indexes, ClickHouse aggregates with `windowFunnel`, `uniqExact`, materialized rollups).

Conventions every implementation keeps, so that both answer identically:
- Calls are invocation spans (`ScopeName = sdk_telemetry`); times are nanoseconds since the epoch;
  a `Scope` is half-open, `[start, end)`.
- A stored call weighs 1 / its `sdk_telemetry.sample_rate` (1 when absent, zero or above 1); counts
  (`calls`, `errors`) are sums of weights, durations are over the stored calls.
- Percentiles are by nearest rank over stored durations: the ceil(n p)-th smallest (at least the
  first) — from raw rows when they are still stored, from the rollups' sketches beyond.
- An actor (`by`) is `session` (the call's session id), `user` (the call's `enduser.id`, else the
  resource's), `service`, or any resource attribute key; calls without one are not counted.
- An error is `StatusCode = 'Error'`; its type is the `error.type` attribute, `Error` without one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import Any, Literal, Protocol

#: Where an aggregate's figures came from: raw rows, or a rollup tier.
Origin = Literal["raw", "hour", "day", "week", "month"]


@dataclass(frozen=True)
class Scope:
    """Which calls a question is about; None means any."""

    start: int | None = None  # ns, inclusive
    end: int | None = None  # ns, exclusive
    service: str | None = None
    environment: str | None = None
    function: str | None = None
    functions: tuple[str, ...] | None = None  # any of these names
    session: str | None = None
    errors_only: bool = False
    error_type: str | None = None  # failed calls of this type (`Error`: those without `error.type`)

    def narrowed(self, **changes: Any) -> Scope:
        """This scope with some fields replaced."""
        return replace(self, **changes)


@dataclass(frozen=True)
class Buckets:
    """Fixed-width time buckets: bucket `i` holds `[origin + i * step, origin + (i + 1) * step)` (ns)."""

    origin: int
    step: int

    def index(self, timestamp: int) -> int:
        """The bucket holding `timestamp`."""
        return (timestamp - self.origin) // self.step


@dataclass(frozen=True)
class Aggregate:
    """The figures of one group of calls (durations in ns; counts scaled by sampling)."""

    key: Any  # the bucket index, the function name, or None for everything
    kept: int  # stored calls
    calls: float
    errors: float
    duration_sum: float
    duration_min: int
    duration_max: int
    p50: int
    p95: int
    p99: int

    @property
    def mean(self) -> float:
        """The mean duration (ns) of the stored calls."""
        return self.duration_sum / self.kept if self.kept else 0.0


@dataclass(frozen=True)
class Aggregation:
    """Aggregates in key order, and what they were computed from (`raw`, and rollup tiers when a
    part of the range is older than the raw rows kept)."""

    rows: list[Aggregate]
    origins: list[Origin] = field(default_factory=lambda: ["raw"])
    #: With time buckets, an implementation may give the overall figures of the same read too.
    total: Aggregate | None = None


@dataclass(frozen=True)
class ErrorGroupRow:
    """Failed calls of one error type and function."""

    error_type: str
    function: str
    count: float  # scaled by sampling
    sample_message: str
    last_seen: int  # ns


@dataclass(frozen=True)
class CallRow:
    """One stored call."""

    cursor: int  # the order it was stored in (SQLite rowid; ClickHouse: its Timestamp)
    timestamp: int
    function: str
    duration: int
    status: str
    message: str
    trace_id: str
    span_id: str
    parent_span_id: str
    service: str
    environment: str
    session_id: str
    user_id: str | None
    error_type: str | None
    sample_rate: float
    events: list[dict[str, Any]] = field(default_factory=list)  # only when asked for (`with_events`)
    propagated: bool = False  # the error was recorded by an inner call (`sdk_telemetry.error.propagated`)


@dataclass(frozen=True)
class SpanRow:
    """One stored span of any scope (a trace's waterfall)."""

    timestamp: int
    span_id: str
    parent_span_id: str
    name: str
    kind: str
    scope: str
    service: str
    duration: int
    status: str
    status_message: str
    attributes: dict[str, Any]
    events: list[dict[str, Any]]  # {"Name", "Timestamp" (ns), "Attributes"}
    session_id: str
    resource: dict[str, Any]


@dataclass(frozen=True)
class EventRow:
    """One stored event (an `otel_logs` record)."""

    timestamp: int
    event_id: str
    name: str
    service: str
    session_id: str
    severity: str
    body: str
    attributes: dict[str, Any]
    trace_id: str


@dataclass(frozen=True)
class SessionRow:
    """One session's calls over a range."""

    session_id: str
    first: int  # the first call's start (ns)
    last: int  # the latest call's end (ns)
    calls: int
    errors: int
    user_id: str | None  # the greatest of its calls' users (see `Reader`: the call's own, else the process's)
    service: str
    environment: str


@dataclass(frozen=True)
class TierRow:
    """What one rollup tier holds."""

    tier: Origin
    rows: int  # buckets, one per (bucket start, function, service, environment)
    first: int | None  # the oldest bucket's start (ns)
    last: int | None  # the newest bucket's start (ns)
    kept: int  # stored calls rolled up
    calls: float  # scaled by sampling


@dataclass(frozen=True)
class Usage:
    """Distinct actors per period (`active`), over the range (`everyone`), and per function."""

    active: dict[int, int]
    everyone: int
    using: dict[str, dict[int, int]]  # function -> period -> actors
    users: dict[str, int]  # function -> actors over the range


def row_limit(limit: int) -> int:
    """How many rows a `limit` allows: a negative one allows none, on either engine (SQLite alone
    would read a negative LIMIT as no limit, ClickHouse refuse it)."""
    return max(int(limit), 0)


@dataclass(frozen=True)
class PathSummary:
    """What is counted of the actors' paths (`Reader.paths`): actors with a path; the commonest
    paths cut at a number of steps (most actors first, then by path); every step to the next one
    (`from`, `to`, how many times, over all actors' paths); and where the paths end (the last
    step, and how many actors' paths end there)."""

    actors: int
    paths: list[tuple[tuple[str, ...], int]]
    steps: list[tuple[str, str, int]]
    exits: list[tuple[str, int]]

    @classmethod
    def of(cls, paths: Iterable[tuple[tuple[str, ...], int]], max_steps: int, limit: int) -> PathSummary:
        """The summary of whole paths, each with how many actors took it."""
        actors, cut, steps, exits = 0, Counter[tuple[str, ...]](), Counter[tuple[str, str]](), Counter[str]()
        for path, count in paths:
            actors += count
            cut[path[:max_steps]] += count
            for pair in pairwise(path):
                steps[pair] += count
            exits[path[-1]] += count
        return cls(
            actors,
            sorted(cut.items(), key=lambda item: (-item[1], item[0]))[: row_limit(limit)],
            sorted(((a, b, n) for (a, b), n in steps.items()), key=lambda item: (-item[2], item[:2])),
            sorted(exits.items(), key=lambda item: (-item[1], item[0])),
        )


class Reader(Protocol):
    """A store, read."""

    #: `sqlite` or `clickhouse`.
    engine: str
    #: Where the data is (a file path or a server), for display.
    location: str

    def snapshot(self) -> AbstractContextManager[None]:
        """A block of reads that may share what they learn of the store (one page's analyses)."""
        ...

    # What is stored.
    def has_events(self) -> bool:
        """Whether the store keeps events (`otel_logs`)."""
        ...

    def recorded_functions(self) -> list[str]:
        """Every function with a stored call, ever, sorted."""
        ...

    def recorded_events(self) -> list[str]:
        """Every stored event name, sorted."""
        ...

    def dimensions(self) -> dict[str, list[str]]:
        """`{"services": [...], "environments": [...]}` with stored calls, sorted."""
        ...

    def stored_spans(self, calls_only: bool = False) -> int:
        """How many spans (or, with `calls_only`, calls) are stored."""
        ...

    def edge(self, scope: Scope, last: bool = False) -> int | None:
        """The first (or last) call's Timestamp in `scope`; None without calls."""
        ...

    # Figures.
    def aggregate(self, scope: Scope, group: Literal["function"] | Buckets | None = None) -> Aggregation:
        """Calls, errors, durations and percentiles per function, per time bucket, or overall (one
        row keyed None, absent without calls), in key order."""
        ...

    def error_groups(self, scope: Scope, limit: int) -> list[ErrorGroupRow]:
        """Failed calls grouped by (error type, function), the most frequent (by weight) first, then
        by type and function; the message is the greatest, `last_seen` the latest start."""
        ...

    def active_actors(self, scope: Scope, by: str) -> int:
        """Distinct actors with calls in `scope`."""
        ...

    def rollup_tiers(self) -> list[TierRow]:
        """What each rollup tier holds, finest first (no tiers: none kept)."""
        ...

    def raw_complete_since(self) -> int | None:
        """From when (ns) raw rows hold every stored call; None when no raw row was ever deleted."""
        ...

    # Who did what.
    def funnel(self, scope: Scope, steps: Sequence[str], window: int, by: str) -> list[int]:
        """Actors reaching each step (ClickHouse's `windowFunnel(window)` semantics, over calls and
        events named as steps): element k counts actors who did steps 1..k+1 in order, each within
        `window` ns of the step-1 occurrence that started the chain."""
        ...

    def paths(
        self, scope: Scope, by: str, top_level: bool, max_steps: int | None = None
    ) -> list[tuple[tuple[str, ...], int]]:
        """Each distinct path and how many actors took it, in path order: an actor's calls (with
        `top_level`, only calls whose parent span is not a stored call) in (Timestamp, SpanId)
        order, consecutive repeats of a function folded into one step (with `max_steps`, cut there:
        the paths that share their first steps counted as one)."""
        ...

    def path_summary(self, scope: Scope, by: str, top_level: bool, max_steps: int, limit: int) -> PathSummary:
        """Over the paths `paths` gives: how many actors, the `limit` commonest paths cut at
        `max_steps`, the step-to-step transitions and the exits (see `PathSummary`)."""
        ...

    def cohorts(self, scope: Scope, by: str, period: Buckets, periods: int) -> dict[int, list[int]]:
        """Per cohort (the period index of an actor's first call in `scope`): actors active 0 ..
        `periods` - 1 periods after it."""
        ...

    def usage(self, scope: Scope, by: str, period: Buckets) -> Usage:
        """Distinct actors per period and per function (see `Usage`)."""
        ...

    # Rows.
    def calls(
        self,
        scope: Scope,
        order: Literal["newest", "oldest", "stored"] = "newest",
        limit: int | None = None,
        after: int | None = None,
        with_events: bool = False,
    ) -> Iterator[CallRow]:
        """Calls in `scope`: newest first, oldest first (Timestamp then SpanId), or in the order they
        were stored after the cursor `after` (with `order="stored"` and no `after`: the last `limit`
        stored, in stored order)."""
        ...

    def last_cursor(self) -> int:
        """The cursor of the last call stored (0 when none)."""
        ...

    def trace_ids(self, prefix: str, limit: int = 2) -> list[str]:
        """Trace ids starting with `prefix` (lower-case hex), at most `limit`."""
        ...

    def trace_spans(self, trace_id: str) -> list[SpanRow]:
        """Every stored span of one trace, in (Timestamp, SpanId) order."""
        ...

    def sessions(self, scope: Scope, limit: int) -> list[SessionRow]:
        """Sessions with calls in `scope`, the latest ending first (then by id)."""
        ...

    def event_counts(self, session_ids: Sequence[str]) -> dict[str, int]:
        """Stored events per session id (ids without events absent)."""
        ...

    def events(self, scope: Scope, limit: int | None = None) -> Iterator[EventRow]:
        """Events in `scope` (time, service, environment and session filters), oldest first (then by id)."""
        ...
