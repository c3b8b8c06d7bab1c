"""Multi-row inserts: every row lands once, whatever the count, the duplicates and the limit on
bound parameters."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sdk_telemetry.store import _sqlite

COLUMNS = ("Id", "Value")


@pytest.fixture
def connection(tmp_path: Path) -> sqlite3.Connection:
    connection = _sqlite.connect(tmp_path / "inserts.sqlite3")
    connection.execute("CREATE TABLE pairs (Id INTEGER PRIMARY KEY, Value TEXT NOT NULL)")
    return connection


@pytest.mark.parametrize("count", [0, 1, 7, 1024, 1500, 3001])
def test_every_row_is_inserted_once_and_counted(connection: sqlite3.Connection, count: int) -> None:
    rows = [(i, f"v{i}") for i in range(count)]
    assert _sqlite.insert_rows(connection, "pairs", COLUMNS, rows) == count
    assert connection.execute("SELECT Id, Value FROM pairs ORDER BY Id").fetchall() == rows
    # Again, with some new rows among them: only the new ones count, the stored ones stay.
    again = [(i, "changed") for i in range(count + 5)]
    assert _sqlite.insert_rows(connection, "pairs", COLUMNS, again) == 5
    assert connection.execute("SELECT COUNT(*) FROM pairs WHERE Value = 'changed'").fetchone() == (5,)


@pytest.mark.skipif(not hasattr(sqlite3.Connection, "setlimit"), reason="Connection.setlimit is Python 3.11+")
def test_statements_stay_within_the_limit_on_bound_parameters(connection: sqlite3.Connection) -> None:
    connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 15)  # 7 rows of 2 at most
    rows = [(i, f"v{i}") for i in range(100)]
    assert _sqlite.insert_rows(connection, "pairs", COLUMNS, rows) == 100
    assert connection.execute("SELECT COUNT(*) FROM pairs").fetchone() == (100,)
