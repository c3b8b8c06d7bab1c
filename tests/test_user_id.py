"""The end user: `configure_telemetry(user_id=...)` / `SDK_TELEMETRY_USER_ID` on the resource, and
`with sdk_telemetry.user(...)` on the calls and events inside it; retention and journeys by user
read both from the real store."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest
from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord

import sdk_telemetry
from sdk_telemetry import configure_telemetry, instrument
from sdk_telemetry.analytics import journeys, open_source, retention
from sdk_telemetry.config import resolve_settings


class Shop:
    def browse(self) -> str:
        return "items"

    def buy(self) -> str:
        return "receipt"

    async def pay(self) -> str:
        await asyncio.sleep(0.01)
        return "paid"


def stored_users(store: Path) -> list[tuple[str, str | None, str | None]]:
    """(span name, the span's enduser.id, the resource's) of every stored call, in start order."""
    connection = sqlite3.connect(store)
    try:
        rows = connection.execute(
            "SELECT SpanName, json_extract(SpanAttributes, '$.\"enduser.id\"'), "
            "json_extract(ResourceAttributes, '$.\"enduser.id\"') FROM otel_traces ORDER BY Timestamp"
        ).fetchall()
    finally:
        connection.close()
    return [tuple(row) for row in rows]


def test_both_ways_are_counted_by_retention_and_journeys(tmp_path):
    store = tmp_path / "shop.sqlite3"
    telemetry = configure_telemetry(exporter="local", store_path=str(store), user_id="u-proc")
    instrument(Shop)
    Shop().browse()
    Shop().buy()
    with sdk_telemetry.user("u-42"):
        Shop().browse()
    with sdk_telemetry.user("u-7"):
        Shop().buy()
        with sdk_telemetry.user("u-8"):  # nested: the inner user, then the outer one again
            Shop().browse()
        Shop().browse()
    Shop().buy()  # outside any `with`: the process's user
    assert telemetry.flush(timeout=5)

    assert stored_users(store) == [
        ("Shop.browse", None, "u-proc"),
        ("Shop.buy", None, "u-proc"),
        ("Shop.browse", "u-42", "u-proc"),
        ("Shop.buy", "u-7", "u-proc"),
        ("Shop.browse", "u-8", "u-proc"),
        ("Shop.browse", "u-7", "u-proc"),
        ("Shop.buy", None, "u-proc"),
    ]
    with open_source(store) as source:
        cohorts = retention(source, by="user", period="day").cohorts
        paths = journeys(source, by="user")
    assert [cohort.size for cohort in cohorts] == [4], "u-proc, u-42, u-7 and u-8"
    assert paths.sessions == 4
    assert sorted((tuple(p["path"]), p["count"]) for p in paths.paths) == [
        (("Shop.browse",), 2),
        (("Shop.browse", "Shop.buy"), 1),
        (("Shop.buy", "Shop.browse"), 1),
    ]


def test_the_user_follows_asyncio_tasks_and_threads(tmp_path):
    store = tmp_path / "s.sqlite3"
    telemetry = configure_telemetry(exporter="local", store_path=str(store))
    instrument(Shop)

    async def customer(name: str) -> None:
        async with sdk_telemetry.user(name):
            await Shop().pay()

    async def main() -> None:
        await asyncio.gather(customer("u-a"), customer("u-b"))
        await Shop().pay()

    asyncio.run(main())
    with sdk_telemetry.user("u-main"):
        worker = threading.Thread(target=Shop().buy)  # a new thread starts with an empty context
        worker.start()
        worker.join()
    assert telemetry.flush(timeout=5)
    assert sorted(stored_users(store), key=lambda row: (row[0], row[1] or "")) == [
        ("Shop.buy", None, None),
        ("Shop.pay", None, None),
        ("Shop.pay", "u-a", None),
        ("Shop.pay", "u-b", None),
    ]


class Recording(LogRecordProcessor):
    def __init__(self) -> None:
        self.records: list[dict[str, object]] = []

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        self.records.append(dict(log_record.log_record.attributes or {}))

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def test_events_logged_inside_carry_the_user(monkeypatch):
    monkeypatch.setenv("SDK_TELEMETRY_USER_ID", "u-env")
    telemetry = configure_telemetry(exporter="local")
    assert telemetry.tracer_provider is not None
    assert telemetry.tracer_provider.resource.attributes["enduser.id"] == "u-env"
    recording = Recording()
    assert telemetry.logger_provider is not None
    telemetry.logger_provider.add_log_record_processor(recording)
    telemetry.log("outside")
    with sdk_telemetry.user("u-42"):
        telemetry.log("inside")
        telemetry.log_exception(ValueError("boom"))
    assert [record.get("enduser.id") for record in recording.records] == [None, "u-42", "u-42"]


def test_bad_user_ids_are_refused_in_code_and_warned_about_in_the_environment(caplog):
    with pytest.raises(ValueError, match="user_id must be a non-empty string"):
        sdk_telemetry.user("")
    with pytest.raises(ValueError, match="user_id must be a non-empty string"):
        resolve_settings(user_id=42)  # type: ignore[arg-type]
    assert resolve_settings({"SDK_TELEMETRY_USER_ID": "  "}).user_id is None
    assert resolve_settings({"SDK_TELEMETRY_USER_ID": "x" * 300}).user_id is None
    warnings = [r.getMessage() for r in caplog.records if "SDK_TELEMETRY_USER_ID" in r.getMessage()]
    assert warnings == [
        "sdk-telemetry: SDK_TELEMETRY_USER_ID must be a non-empty string of at most 256 characters, not ''; "
        "no user id is set",
        "sdk-telemetry: SDK_TELEMETRY_USER_ID must be a non-empty string of at most 256 characters, "
        f"not {'x' * 300!r}; no user id is set",
    ]
