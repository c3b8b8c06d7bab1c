"""The `run(sql, params)` functions the ClickHouse store talks through: one over a
`clickhouse-connect` client (a ClickHouse server over HTTP), one over a chDB session (the engine
in-process). Both take `{name:Type}` query parameters and answer the result rows as lists."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

#: `run(sql, params)`: run one statement, answer its result rows (none for a statement without).
Runner = Callable[[str, Mapping[str, Any]], list[Sequence[Any]]]
#: chDB runs one engine per process, and a session is not safe to query from two threads at once
#: (a receiver's writer copying while the dashboard reads): its statements are taken one at a time.
_CHDB_LOCK = threading.Lock()


def answers_rows(sql: str) -> bool:
    """Whether `sql` is a query (answers rows), not a statement that changes the store."""
    head = sql.lstrip().split(None, 1)
    return bool(head) and head[0].upper() in ("SELECT", "WITH", "SHOW", "DESCRIBE", "EXISTS")


def client_runner(client: Any) -> Runner:
    """Over a `clickhouse_connect` client (`clickhouse_connect.get_client(...)`)."""

    def run(sql: str, params: Mapping[str, Any]) -> list[Sequence[Any]]:
        if not answers_rows(sql):
            client.command(sql, parameters=dict(params) or None)
            return []
        return list(client.query(sql, parameters=dict(params)).result_rows)

    return run


#: chDB reads a string parameter as escaped text, as a ClickHouse server reads `param_*` over HTTP
#: (clickhouse-connect escapes them the same way before sending).
_TEXT_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})


def _escaped(value: Any) -> Any:
    return value.translate(_TEXT_ESCAPES) if isinstance(value, str) else value


def chdb_runner(session: Any) -> Runner:
    """Over a chDB session (`chdb.session.Session(path)`)."""

    def run(sql: str, params: Mapping[str, Any]) -> list[Sequence[Any]]:
        with _CHDB_LOCK:
            result = session.query(sql, "JSONCompact", params={name: _escaped(value) for name, value in params.items()})
        text = result.bytes() if hasattr(result, "bytes") else bytes(result)
        return list(orjson.loads(text)["data"]) if text.strip() else []

    return run
