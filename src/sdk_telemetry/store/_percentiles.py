"""Exact durations by rank, per function: `otel_traces_durations` (sorted) plus the newest rows.

Rows above the durations mark are not in `otel_traces_durations` yet (see `_sqlite`). The k-th
smallest of the union of the sorted durations A (n values) and the waiting ones B (t values,
sorted here) is found from a window of at most t + 1 values of A: the k smallest of the union
hold at least k - t values of A, which are A's smallest, so the answer is the (k - lo)-th
smallest of A[lo+1 .. min(k, n)] and B, with lo = max(0, k - max(t, 1)). The window is read
from the nearer end of the index. With no row waiting this is the plain walk to rank k.
"""

from __future__ import annotations

import heapq
import itertools
import sqlite3
from collections.abc import Sequence
from typing import Any

from sdk_telemetry.store import _sqlite

_DURATIONS = "otel_traces_durations"
_FILTERED = "otel_traces_durations JOIN otel_traces ON otel_traces.rowid = otel_traces_durations.TraceRow"


class Durations:
    """The durations of one scope's functions in a read snapshot, filtered by `where` (SQL over
    `otel_traces` columns, each term starting with " AND ") and its `params`."""

    def __init__(self, connection: sqlite3.Connection, scope: str, where: str, params: Sequence[Any]) -> None:
        self._connection, self._scope, self._where, self._params = connection, scope, where, list(params)
        self.waiting: dict[str, list[int]] = {}
        for name, duration in connection.execute(
            f"SELECT SpanName, Duration FROM otel_traces WHERE rowid > ? AND ScopeName = ?{where}",
            [_sqlite.durations_through(connection), scope, *params],
        ):
            self.waiting.setdefault(name, []).append(duration)
        for values in self.waiting.values():
            values.sort()

    def ranked(self, name: str, count: int, rank: int) -> int:
        """The `rank`-th smallest duration (1-based, ns) of function `name`, which has `count` rows."""
        tail = self.waiting.get(name, [])
        indexed = count - len(tail)
        low = max(0, rank - max(len(tail), 1))
        window = self._slice(name, indexed, low, min(rank, indexed) - low)
        return next(itertools.islice(heapq.merge(window, tail), rank - low - 1, None))

    def _slice(self, name: str, indexed: int, start: int, length: int) -> list[int]:
        """Sorted durations of `name` at ranks start + 1 .. start + length in `otel_traces_durations`."""
        if length <= 0:
            return []
        source = _FILTERED if self._where else _DURATIONS
        from_top = indexed - start - length
        descending = from_top < start
        found = self._connection.execute(
            f"SELECT {_DURATIONS}.Duration FROM {source} WHERE {_DURATIONS}.ScopeName = ? "
            f"AND {_DURATIONS}.SpanName = ?{self._where} ORDER BY {_DURATIONS}.Duration "
            f"{'DESC' if descending else 'ASC'} LIMIT ? OFFSET ?",
            [self._scope, name, *self._params, length, from_top if descending else start],
        ).fetchall()
        values = [duration for (duration,) in found]
        return values[::-1] if descending else values
