"""`open_read_only`: how every reader opens the store — SQLite `mode=ro`, refusing what is not a store."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from sdk_telemetry.store import StoreError, _sqlite, open_read_only
from tests.helpers.store_data import load


def test_a_real_store_opens_and_cannot_be_written(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    connection = _sqlite.connect(path)
    load(connection)
    connection.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    reader = open_read_only(path)
    try:
        assert reader.execute("SELECT COUNT(*) FROM otel_traces").fetchone()[0] > 0
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader.execute("DELETE FROM otel_traces")
    finally:
        reader.close()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_an_unrelated_database_is_refused_and_keeps_its_journal_mode(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite3"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE notes (body TEXT)")
    connection.commit()
    connection.close()
    with pytest.raises(StoreError) as raised:
        open_read_only(path)
    assert str(raised.value) == f"{path} is not a telemetry store (it has no otel_traces table)"
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    assert connection.execute("SELECT name FROM sqlite_master").fetchall() == [("notes",)]
    connection.close()


def test_missing_random_and_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        open_read_only(tmp_path / "none.sqlite3")
    assert not (tmp_path / "none.sqlite3").exists()
    noise = tmp_path / "noise.sqlite3"
    noise.write_bytes(b"\x00\x01not sqlite" * 500)
    with pytest.raises(StoreError) as raised:
        open_read_only(noise)
    assert str(raised.value) == f"{noise} cannot be read as a telemetry store: file is not a database"
    with pytest.raises(StoreError) as raised:
        open_read_only(tmp_path)
    assert str(raised.value) == f"{tmp_path} is a directory, not a telemetry store"
