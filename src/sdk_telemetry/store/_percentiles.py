"""Exact durations by rank, per function: `otel_traces_durations` (sorted) plus the newest rows.

Rows above the durations mark are not in `otel_traces_durations` yet (see `_sqlite`). The k-th
smallest of the union of the sorted durations A (n values) and the waiting ones B (t values,
sorted here) is found from a window of at most t + 1 values of A: the k - 1 smallest of the
union hold at least lo = max(0, k - 1 - t) values of A, which are A's smallest, so the answer is
the (k - lo)-th smallest of A[lo+1 .. min(k, n)] and B. The window is read from the nearer end
of the index. With no row waiting this is the plain walk to rank k.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import orjson

from sdk_telemetry.store import _sqlite

_DURATIONS = "otel_traces_durations"
_FILTERED = "otel_traces_durations JOIN otel_traces ON otel_traces.rowid = otel_traces_durations.TraceRow"


class Durations:
    """The durations of one scope's functions in a read snapshot, filtered by `where` (SQL over
    `otel_traces` columns, each term starting with " AND ") and its `params`."""

    def __init__(self, connection: sqlite3.Connection, scope: str, where: str, params: Sequence[Any]) -> None:
        self._connection, self._scope, self._where, self._params = connection, scope, where, list(params)
        # One JSON array per function: SQLite collects, orjson parses, both without a Python step per row.
        self.waiting: dict[str, list[int]] = {
            name: sorted(orjson.loads(durations))
            for name, durations in connection.execute(
                "SELECT SpanName, json_group_array(Duration) FROM otel_traces "
                f"WHERE rowid > ? AND ScopeName = ?{where} GROUP BY SpanName",
                [_sqlite.durations_through(connection), scope, *params],
            )
        }

    def ranked(self, name: str, count: int, rank: int) -> int:
        """The `rank`-th smallest duration (1-based, ns) of function `name`, which has `count` rows."""
        tail = self.waiting.get(name, [])
        indexed = count - len(tail)
        low = max(0, rank - 1 - len(tail))
        window = self._slice(name, indexed, low, min(rank, indexed) - low)
        if not tail:
            return window[rank - low - 1]
        return sorted(window + tail)[rank - low - 1]  # two sorted runs: merged in one pass

    def _slice(self, name: str, indexed: int, start: int, length: int) -> list[int]:
        """Sorted durations of `name` at ranks start + 1 .. start + length in `otel_traces_durations`."""
        if length <= 0:
            return []
        source = _FILTERED if self._where else _DURATIONS
        from_top = indexed - start - length
        descending = from_top < start
        (found,) = self._connection.execute(
            f"SELECT json_group_array(Duration) FROM (SELECT {_DURATIONS}.Duration FROM {source} "
            f"WHERE {_DURATIONS}.ScopeName = ? AND {_DURATIONS}.SpanName = ?{self._where} "
            f"ORDER BY {_DURATIONS}.Duration {'DESC' if descending else 'ASC'} LIMIT ? OFFSET ?)",
            [self._scope, name, *self._params, length, from_top if descending else start],
        ).fetchone()
        values: list[int] = orjson.loads(found)
        values.sort()  # the walk's order, ascending
        return values
