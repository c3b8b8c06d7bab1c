"""Where analyses read from: a store (`Reader`: SQLite or ClickHouse) narrowed to a service and environment."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sdk_telemetry.analytics._range import AnalyticsError, TimeRange
from sdk_telemetry.store import (
    Reader,
    Scope,
    SQLiteReader,
    open_clickhouse_reader,
    open_read_only,
    shown,
    store_path,
)


@dataclass(frozen=True)
class Source:
    """A store to analyse (any `Reader`: the embedded SQLite store or ClickHouse); with `service` or
    `environment`, every analysis reads only that service's (or deployment environment's) calls and events."""

    reader: Reader
    service: str | None = None
    environment: str | None = None

    @property
    def path(self) -> Path | None:
        """The store file, for an embedded store."""
        path = getattr(self.reader, "path", None)
        return path if isinstance(path, Path) else None

    @property
    def has_logs(self) -> bool:
        """Whether the store keeps events."""
        return self.reader.has_events()

    def filtered(self, service: str | None = None, environment: str | None = None) -> Source:
        """This store, narrowed to one service and/or environment (None or empty: every one)."""
        return replace(self, service=service or None, environment=environment or None)

    def scope(self, time_range: TimeRange | None = None, **narrower: Any) -> Scope:
        """The `Scope` of `time_range` within the filters, narrowed further by `narrower` (`Scope` fields)."""
        time_range = time_range or TimeRange()
        scope = Scope(time_range.start, time_range.end, self.service, self.environment)
        return scope.narrowed(**{key: value for key, value in narrower.items() if value is not None})

    def snapshot(self) -> AbstractContextManager[None]:
        """A block of analyses that share what they learn of the store (see `Reader.snapshot`)."""
        return self.reader.snapshot()

    def dimensions(self) -> dict[str, list[str]]:
        """Every service and deployment environment with stored calls (whatever the filters), sorted."""
        return self.reader.dimensions()

    def recorded_functions(self) -> list[str]:
        """Every function with a stored call, ever (whatever the filters and range), sorted."""
        return self.reader.recorded_functions()

    def recorded_events(self) -> list[str]:
        """Every stored event name, sorted."""
        return self.reader.recorded_events()

    def require_recorded(self, names: Sequence[str], events: bool = False) -> None:
        """Raise `AnalyticsError` naming the first of `names` never recorded as a function (or, with
        `events`, as an event either), with the closest recorded names."""
        known = self.recorded_functions()
        if events and any(name not in known for name in names):  # events are asked for only when needed
            known += self.recorded_events()
        for name in names:
            if name not in known:
                what = "function or event" if events else "function"
                raise AnalyticsError(f"no {what} {name!r} was ever recorded{did_you_mean(name, known)}")

    @staticmethod
    def actor(by: str) -> str:
        """`by` checked: `session`, `user`, `service` or a resource attribute key."""
        if not by or '"' in by or "\\" in by or not by.isprintable():
            raise AnalyticsError(f"by: expected 'session', 'user', 'service' or a resource attribute key, got {by!r}")
        return by

    def bounds(self, time_range: TimeRange) -> TimeRange:
        """`time_range` with open ends closed on the first and last stored invocation (where raw rows
        were trimmed by retention: on the oldest hour, day or week bucket of the rollups)."""
        if time_range.start is not None and time_range.end is not None:
            return time_range
        scope = self.scope(time_range)
        low = self.reader.edge(scope) if time_range.start is None else time_range.start
        since = self.reader.raw_complete_since() if time_range.start is None else None
        if since is not None:  # raw rows were trimmed: the rollups reach further back
            # Hour, day and week buckets start within a week of their oldest call; months would not.
            rolled = [
                tier.first
                for tier in self.reader.rollup_tiers()
                if tier.tier != "month" and tier.first is not None and tier.first < since
            ]
            if rolled and (low is None or min(rolled) < low):
                low = min(rolled)
        high = self.reader.edge(scope, last=True) if time_range.end is None else time_range.end - 1
        start = time_range.start if time_range.start is not None else (low if low is not None else 0)
        end = time_range.end if time_range.end is not None else (high + 1 if high is not None else start + 1)
        return TimeRange(start, max(end, start + 1))

    def last(self, time_range: TimeRange, nanoseconds: int) -> TimeRange:
        """The last `nanoseconds` of `time_range` (closed as `bounds` does), or all of it if shorter."""
        bounded = self.bounds(time_range)
        assert bounded.start is not None and bounded.end is not None
        return TimeRange(max(bounded.start, bounded.end - int(nanoseconds)), bounded.end)


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`; did you mean A, B?` with the names of `known` closest to `name`, or `` when none is close."""
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    return f"; did you mean {', '.join(close)}?" if close else ""


@dataclass(frozen=True)
class Location:
    """Where analyses read: the embedded store's file, or ClickHouse (`clickhouse`: a server URL
    such as `http://user:password@host:8123/database`, or `chdb:PATH` for the embedded engine)."""

    path: Path | None = None
    clickhouse: str | None = None

    @classmethod
    def of(cls, store: str | os.PathLike[str] | Location | None = None, clickhouse: str | None = None) -> Location:
        """`store` as a location (a path, or the configured store for None), or ClickHouse when given."""
        if isinstance(store, Location):
            return store
        if clickhouse:
            return cls(clickhouse=clickhouse)
        return cls(path=store_path(store))

    def exists(self) -> bool:
        """Whether there is anything to read yet (a ClickHouse server always counts)."""
        return self.clickhouse is not None or (self.path is not None and self.path.exists())

    def __str__(self) -> str:
        return shown(self.clickhouse) if self.clickhouse else str(self.path)

    @contextmanager
    def open(self, service: str | None = None, environment: str | None = None) -> Iterator[Source]:
        """The store, opened read-only and narrowed (see `open_source`)."""
        with open_source(self.path, service, environment, self.clickhouse) as source:
            yield source


@contextmanager
def open_source(
    path: str | os.PathLike[str] | None = None,
    service: str | None = None,
    environment: str | None = None,
    clickhouse: str | None = None,
) -> Iterator[Source]:
    """The store at `path` (default: the configured one), or the ClickHouse at `clickhouse` (see
    `Location`), opened read-only, narrowed to `service` and `environment` when given; raises
    `FileNotFoundError` when there is no store file, `StoreError` when the file is not a readable
    store, `MissingExtra` when ClickHouse's library is not installed."""
    if clickhouse:
        yield Source(open_clickhouse_reader(clickhouse)).filtered(service, environment)
        return
    resolved = store_path(path)
    connection = open_read_only(resolved)
    try:
        yield Source(SQLiteReader(connection, resolved)).filtered(service, environment)
    finally:
        connection.close()
