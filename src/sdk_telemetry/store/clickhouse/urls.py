"""Opening ClickHouse by URL: a server (`http://user:password@host:8123/database`, through
`clickhouse-connect`, extra `clickhouse`) or the embedded engine chDB (`chdb:PATH`, a directory;
extra `chdb`), as a `ClickHouseStore` (writes, stats) and a `Reader` (every analysis).

chDB runs one directory per process at a time: its session is kept, so that a receiver copying
to chDB and a dashboard reading it in the same process share it (asking for another directory
closes it).
"""

from __future__ import annotations

import atexit
import threading
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sdk_telemetry.store._sqlite import StoreError
from sdk_telemetry.store.clickhouse import ClickHouseStore, Runner
from sdk_telemetry.store.clickhouse.reader import ClickHouseReader

_SESSIONS: dict[str, Any] = {}
_LOCK = threading.Lock()


class MissingExtra(ImportError):
    """The library a ClickHouse URL needs is not installed; `extra` names the extra that brings it."""

    def __init__(self, extra: str, reason: str) -> None:
        super().__init__(reason)
        self.extra = extra


def is_chdb(url: str) -> bool:
    """Whether `url` names the embedded engine (`chdb:PATH`)."""
    return url.startswith("chdb:")


def chdb_path(url: str) -> str:
    """The directory of a `chdb:PATH` URL (`chdb:///data/ch` and `chdb:/data/ch` alike)."""
    path = url[len("chdb:") :]
    return "/" + path.lstrip("/") if path.startswith("//") else path


def shown(url: str) -> str:
    """`url` without its password, for messages and pages."""
    if is_chdb(url):
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def chdb_session(path: str) -> Any:
    """The process's chDB session for the directory `path`."""
    try:
        from chdb import session as chdb_sessions  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise MissingExtra("chdb", f"chdb: URLs need the chdb extra ({exc})") from None
    with _LOCK:
        session = _SESSIONS.get(path)
        if session is None:
            for other in _SESSIONS.values():  # chDB runs one directory per process at a time
                other.close()
            _SESSIONS.clear()
            try:
                session = _SESSIONS[path] = chdb_sessions.Session(path)  # type: ignore[no-untyped-call,unused-ignore]
            except Exception as exc:  # another process holds the directory, or it is not chDB's
                lines = [line for line in str(exc).splitlines() if line.strip()]
                raise StoreError(f"chDB at {path}: {lines[-1] if lines else type(exc).__name__}") from None
        return session


def close_chdb() -> None:
    """Close the process's chDB session, if one is open (before the process uses another directory)."""
    with _LOCK:
        for session in _SESSIONS.values():
            session.close()
        _SESSIONS.clear()


# A session left open to the interpreter's finalization crashes (SIGSEGV) or hangs the exit.
atexit.register(close_chdb)


def open_clickhouse(url: str) -> ClickHouseStore:
    """The ClickHouse at `url` (a server DSN or `chdb:PATH`)."""
    if is_chdb(url):
        return ClickHouseStore.from_chdb(chdb_session(chdb_path(url)))
    try:
        import clickhouse_connect  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise MissingExtra("clickhouse", f"ClickHouse URLs need the clickhouse extra ({exc})") from None
    return ClickHouseStore.from_client(clickhouse_connect.get_client(dsn=url))


def open_clickhouse_reader(url: str) -> ClickHouseReader:
    """A `Reader` over the ClickHouse at `url`; what the engine refuses (an unreachable server, no
    tables yet, a bad password) is a `StoreError` naming the server and the engine's first line."""
    run = open_clickhouse(url).run
    where = shown(url)

    def guarded(sql: str, params: Any) -> Any:
        try:
            return run(sql, params)
        except Exception as exc:  # every engine error type of two client libraries
            text = str(exc).strip().splitlines()
            raise StoreError(f"ClickHouse at {where}: {text[0] if text else type(exc).__name__}") from exc

    runner: Runner = guarded
    return ClickHouseReader(runner, where)
