"""The dashboard served from ClickHouse looks the same: the same week of calls in the embedded store
and in ClickHouse's engine (chDB, the Collector's tables), each dashboard in headless Chromium."""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

from sdk_telemetry.analytics import Location
from sdk_telemetry.dashboard import mount
from sdk_telemetry.store import ClickHouseStore, chdb_session, close_chdb
from tests.dashboard.browser import Browser
from tests.dashboard.test_dashboard import Served
from tests.helpers.processes import ROOT
from tests.helpers.week import EXECUTE, write_week

DOCS = os.environ.get("UPDATE_DOCS_SCREENSHOT")  # UPDATE_DOCS_SCREENSHOT=1: also copy the view into docs/


@pytest.fixture(scope="module")
def urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    base = tmp_path_factory.mktemp("dashboard-engines")
    store = base / "week.sqlite3"
    write_week(store, time.time_ns())
    connection = sqlite3.connect(store)
    spans = connection.execute("SELECT * FROM otel_traces").fetchall()
    events = connection.execute("SELECT * FROM otel_logs").fetchall()
    connection.close()
    clickhouse = ClickHouseStore.from_chdb(chdb_session(str(base / "chdb")))
    clickhouse.create_tables()
    clickhouse.insert_spans(spans)
    clickhouse.insert_events(events)
    apps = {"sqlite": Starlette(), "clickhouse": Starlette()}
    mount(apps["sqlite"], store)
    mount(apps["clickhouse"], Location(clickhouse=f"chdb:{base / 'chdb'}"))
    with Served(apps["sqlite"]) as sqlite_url, Served(apps["clickhouse"]) as clickhouse_url:
        yield {"sqlite": sqlite_url, "clickhouse": clickhouse_url}
    close_chdb()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    opened = Browser(tmp_path_factory.mktemp("chromium") / "profile")
    try:
        yield opened
    finally:
        opened.close()


def drawn(browser: Browser, url: str) -> dict[str, Any]:
    """What the overview page shows: the figures, the functions table, the series and the funnel."""
    browser.open(f"{url}/dashboard/?range=7d")
    text = "(selector) => document.querySelector(selector).innerText"
    return {
        "kpis": browser.evaluate(f"({text})('#kpis')"),
        "functions": browser.texts("#functions tbody tr"),
        "errors": browser.evaluate(f"({text})('#top-errors')"),
        "funnel": browser.evaluate(f"({text})('#funnel')"),
        "latency points": browser.evaluate("document.querySelectorAll('#latency circle, #latency path').length"),
        "x labels": browser.texts("#latency .x-label"),
    }


def test_the_dashboard_from_clickhouse_draws_what_the_store_draws(urls: dict[str, str], browser: Browser) -> None:
    pages = {engine: drawn(browser, url) for engine, url in urls.items()}
    shown = pages["sqlite"]
    assert shown["functions"] and shown["latency points"] and "p95" in shown["kpis"].lower()
    assert any(EXECUTE in row for row in shown["functions"])
    assert EXECUTE in shown["funnel"] and "ToolTimeout" in shown["errors"], (shown["funnel"], shown["errors"])
    assert pages["clickhouse"] == pages["sqlite"]
    if DOCS:
        browser.open(f"{urls['clickhouse']}/dashboard/?range=7d")
        shutil.copy(browser_shot(browser), ROOT / "docs" / "dashboard-clickhouse.png")


def browser_shot(browser: Browser) -> Path:
    path = Path(os.environ.get("TMPDIR", "/tmp")) / "dashboard-clickhouse.png"
    browser.screenshot(path, full_page=True)
    return path


def test_drill_down_on_clickhouse(urls: dict[str, str], browser: Browser) -> None:
    seen = {}
    for engine, url in urls.items():
        browser.open(f"{url}/dashboard/?range=7d")
        browser.click(f'#functions tr[data-function="{EXECUTE}"]')
        assert browser.evaluate("document.body.dataset.view") == "function"
        calls = browser.texts("#calls tbody tr")
        browser.click('#calls tr[data-status="Error"]')
        assert browser.evaluate("document.body.dataset.view") == "trace"
        spans = browser.evaluate(
            "[...document.querySelectorAll('.wf-row')].map((r) => [r.querySelector('.wf-label').textContent,"
            " r.dataset.depth, r.dataset.kind])"
        )
        seen[engine] = (calls, spans, browser.texts("#span-details pre.stack"))
    assert seen["clickhouse"] == seen["sqlite"]
    calls, spans, stack = seen["clickhouse"]
    assert calls and spans == [[EXECUTE, "0", "call"], ["POST", "1", "other"]]
    assert "Traceback (most recent call last)" in stack[0]
