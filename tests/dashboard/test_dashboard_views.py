"""The dashboard in headless Chromium (driven over the DevTools protocol) over a simulated week: time
axes, units, drill-down by clicking, filters, the analyses, and the states a user can land in — each
checked in the DOM and in a screenshot whose pixels are measured."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from sdk_telemetry.dashboard import mount
from tests.dashboard.browser import Browser
from tests.dashboard.test_dashboard import Served
from tests.helpers.processes import ROOT
from tests.helpers.week import EXECUTE, Made, write_week

KEY = "view-key-0123"
DOCS = os.environ.get("UPDATE_DOCS_SCREENSHOT")  # UPDATE_DOCS_SCREENSHOT=1: also copy the views into docs/


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Made, int]:
    path = tmp_path_factory.mktemp("views") / "week.sqlite3"
    now = time.time_ns()
    return path, write_week(path, now), now


@pytest.fixture(scope="module")
def url(week: tuple[Path, Made, int]) -> Iterator[str]:
    app = Starlette()
    mount(app, week[0])
    with Served(app) as running:
        yield running


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    opened = Browser(tmp_path_factory.mktemp("chromium") / "profile")
    try:
        yield opened
    finally:
        opened.close()


def _overview(url: str, **params: str) -> Any:
    return httpx.get(f"{url}/dashboard/api/overview", params=params, timeout=10).json()


def _runs(values: list[Any]) -> int:
    """How many unbroken runs of non-null values a series has."""
    return sum(1 for i, v in enumerate(values) if v is not None and (i == 0 or values[i - 1] is None))


def test_the_last_24_hours_are_drawn_in_time_with_dated_labels_and_per_minute_throughput(
    url: str, browser: Browser
) -> None:
    data = _overview(url, range="24h")
    browser.open(f"{url}/dashboard/?range=24h")
    bars = browser.evaluate(
        "[...document.querySelectorAll('#throughput rect.bar')].map((r) => +r.getAttribute('height'))"
    )
    assert len(bars) == len(data["series"]) >= 48  # every bucket, the night's too
    assert sum(1 for h in bars if h == 0) == sum(1 for b in data["series"] if not b["calls"]) > 10
    assert browser.evaluate("+document.querySelector('#latency svg').dataset.points") == len(data["series"])
    # An empty bucket breaks the line: one sub-path per run of buckets with calls.
    p50 = browser.evaluate("document.querySelector('#latency path[data-series=\"p50_ms\"]').getAttribute('d')")
    assert p50.count("M") == _runs([b["p50_ms"] for b in data["series"]]) >= 2
    labels = browser.texts("#latency .x-label")
    assert len(labels) >= 4 and all(re.fullmatch(r"\d\d [A-Z][a-z]{2} \d\d:\d\d", label) for label in labels), labels
    # Each label is a time inside the range, in order (the dates say which day: a range that
    # crosses midnight shows two, however the ticks fall).
    now = datetime.now(timezone.utc)
    times = []
    for label in labels:
        at = datetime.strptime(f"{now.year} {label}", "%Y %d %b %H:%M").replace(tzinfo=timezone.utc)
        times.append(at - timedelta(days=365) if at > now + timedelta(hours=1) else at)  # across New Year
    # The axis ends with the last bucket, which may end after now.
    last = now + timedelta(seconds=data["step_seconds"])
    assert times == sorted(times) and all(now - timedelta(hours=25) <= at <= last for at in times), labels
    assert browser.texts('[data-kpi="throughput"] .value small') == ["/min"]
    assert browser.texts("#throughput-unit")[0].startswith("calls / min")
    shown = float(browser.texts('[data-kpi="throughput"] .value')[0].removesuffix("/min"))
    assert shown == pytest.approx(data["totals"]["throughput_per_min"], abs=0.001)


def test_a_week_is_labelled_by_day(url: str, browser: Browser) -> None:
    browser.open(f"{url}/dashboard/?range=7d")
    labels = browser.texts("#latency .x-label")
    assert 5 <= len(labels) <= 8 and all(re.fullmatch(r"\d\d [A-Z][a-z]{2}", label) for label in labels), labels
    assert len(set(labels)) == len(labels)
    small = browser.texts("#throughput .x-label")
    assert small and all(re.fullmatch(r"\d\d [A-Z][a-z]{2}", label) for label in small), small


def test_drill_down_from_a_function_to_a_call_to_its_trace(url: str, browser: Browser, week: Any) -> None:
    made: Made = week[1]
    browser.open(f"{url}/dashboard/?range=7d")
    browser.click(f'#functions tr[data-function="{EXECUTE}"]')
    assert browser.evaluate("document.body.dataset.view") == "function"
    assert "view=function" in browser.evaluate("location.search")
    rows = browser.evaluate("document.querySelectorAll('#calls tbody tr').length")
    assert rows == min(50, made.count(0, 2**63, function=EXECUTE))
    assert browser.texts('#function-kpis [data-kpi="calls"] .value') == [str(made.count(0, 2**63, function=EXECUTE))]
    browser.click('#calls tr[data-status="Error"]')
    assert browser.evaluate("document.body.dataset.view") == "trace"
    spans = browser.evaluate(
        "[...document.querySelectorAll('.wf-row')].map((r) => [r.querySelector('.wf-label').textContent,"
        " r.dataset.depth, r.dataset.kind])"
    )
    assert spans == [[EXECUTE, "0", "call"], ["POST", "1", "other"]]
    assert "Traceback (most recent call last)" in browser.texts("#span-details pre.stack")[0]
    browser.click('.wf-row[data-kind="other"]')
    assert browser.texts('#span-attributes tr[data-attribute="http.request.method"] td') == ["POST"]
    assert browser.texts('#span-attributes tr[data-attribute="http.response.status_code"] td') == ["504"]
    browser.evaluate("document.body.dataset.ready = 'false'; history.back()")
    browser.settle()
    assert browser.evaluate("document.body.dataset.view") == "function"


def test_an_error_group_leads_to_its_stack_and_its_session(url: str, browser: Browser, week: Any) -> None:
    made: Made = week[1]
    browser.open(f"{url}/dashboard/?range=7d")
    browser.click('#top-errors .error-item[data-error="ToolTimeout"]')
    assert browser.evaluate("document.body.dataset.view") == "errors"
    assert browser.texts("#occurrences-title")[0].startswith(f"ToolTimeout in {EXECUTE}")
    occurrences = browser.evaluate("document.querySelectorAll('.occurrence').length")
    assert occurrences == min(20, made.count(0, 2**63, failed=True))
    assert "raise ToolTimeout(message)" in browser.texts(".occurrence[open] pre.stack")[0]
    session = browser.texts(".occurrence[open] summary a")[0].removeprefix("session ")
    browser.click(".occurrence[open] summary a")
    assert browser.evaluate("document.body.dataset.view") == "sessions"
    assert browser.texts("#timeline-title") == [f"Session {session}"]
    items = browser.evaluate("[...document.querySelectorAll('.tl-item')].map((i) => [i.dataset.kind, i.dataset.name])")
    assert items[0] == ["event", "SESSION_START"] and items[-1] == ["event", "SESSION_END"]
    assert [kind for kind, _ in items[1:-1]] == ["call"] * made.count(0, 2**63, session=session)
    assert browser.evaluate("document.querySelectorAll('.tl-item.failed').length") >= 1


def test_analyses_on_the_page_leave_future_retention_cells_blank(url: str, browser: Browser) -> None:
    browser.open(f"{url}/dashboard/?range=7d&view=analyses")
    kept = httpx.get(f"{url}/api/v1/analytics/retention", params={"since": "7d", "period": "day", "periods": 7}).json()
    cells = browser.evaluate(
        "[...document.querySelectorAll('#retention tbody tr')].map((r) =>"
        " [...r.querySelectorAll('td.cell')].map((c) => [c.dataset.rate, c.textContent]))"
    )
    assert len(cells) == len(kept["cohorts"]) >= 2
    for row, cohort in zip(cells, kept["cohorts"], strict=True):
        for (rate, text), expected in zip(row, cohort["rates"], strict=True):
            if expected is None:
                assert (rate, text) == ("", "")  # blank, not 0 %
            else:
                assert float(rate) == pytest.approx(expected, abs=1e-4) and text.endswith("%")
    assert any(rate == "" for row in cells for rate, _ in row)
    assert browser.evaluate("document.querySelectorAll('#journeys .journey').length") >= 1
    adoption = browser.evaluate("[...document.querySelectorAll('#adoption tbody tr')].map((r) => r.dataset.function)")
    assert sorted(adoption) == sorted(["Client.login", "Tools.list", EXECUTE, "Tools.search"])
    steps = browser.evaluate("[...document.querySelectorAll('#analyses-funnel .step')].map((s) => s.dataset.step)")
    assert steps[:2] == ["Client.login", "Tools.list"]


@pytest.mark.parametrize("range_key", ["24h", "30d"])
def test_journeys_cover_at_most_the_ranges_last_week(url: str, browser: Browser, range_key: str) -> None:
    browser.open(f"{url}/dashboard/?range={range_key}&view=analyses")
    asked = httpx.get(f"{url}/api/v1/analytics/journeys", params={"since": range_key, "last": "7d"}).json()
    whole = httpx.get(f"{url}/api/v1/analytics/journeys", params={"since": range_key}).json()
    note = browser.texts("#journeys-note")[0]
    assert note.startswith(f"{asked['sessions']:,} sessions") and asked["sessions"] > 0
    assert note.endswith("the range's last 7 days") is (range_key == "30d")
    if range_key == "24h":
        assert asked["sessions"] == whole["sessions"]


def test_service_and_environment_filters(url: str, browser: Browser, week: Any) -> None:
    made: Made = week[1]
    browser.open(f"{url}/dashboard/?range=7d")
    assert browser.texts("#service option") == ["all", "acme-sdk", "billing-sdk"]
    browser.evaluate(
        "document.body.dataset.ready = 'false'; const s = document.getElementById('service');"
        " s.value = 'billing-sdk'; s.dispatchEvent(new Event('change'))"
    )
    browser.settle()
    assert "service=billing-sdk" in browser.evaluate("location.search")
    assert browser.texts('[data-kpi="calls"] .value') == [str(made.count(0, 2**63, service="billing-sdk"))]
    browser.open(f"{url}/dashboard/?range=7d&view=sessions&environment=staging")
    shown = browser.evaluate("document.querySelectorAll('#sessions tbody tr').length")
    assert shown == sum(1 for s in made.sessions.values() if s["environment"] == "staging")


def _distinct(shots: dict[str, dict[str, Any]]) -> None:
    names = list(shots)
    for i, a in enumerate(names):
        stats = shots[a]
        assert stats["colours"] >= 12 and stats["top_share"] < 0.97, (a, stats["colours"], stats["top_share"])
        for b in names[i + 1 :]:
            assert stats["grid"] != shots[b]["grid"], f"the screenshots of {a} and {b} look the same"


def test_every_view_in_a_screenshot(url: str, browser: Browser, tmp_path: Path) -> None:
    views = {
        "overview": "?range=7d",
        "function": f"?range=7d&view=function&function={EXECUTE}",
        "errors": "?range=7d&view=errors",
        "sessions": "?range=7d&view=sessions",
        "analyses": "?range=7d&view=analyses",
    }
    shots = {}
    for name, query in views.items():
        browser.open(f"{url}/dashboard/{query}", 1400, 1000)
        assert browser.evaluate("document.body.dataset.state") == "ok", name
        shots[name] = browser.pixels(browser.screenshot(tmp_path / f"dashboard-{name}.png"))
    browser.open(f"{url}/dashboard/?range=7d&view=function&function={EXECUTE}", 1400, 1000)
    browser.click('#calls tr[data-status="Error"]')
    shots["trace"] = browser.pixels(browser.screenshot(tmp_path / "dashboard-trace.png"))
    _distinct(shots)
    if DOCS:
        for name in shots:
            shutil.copyfile(tmp_path / f"dashboard-{name}.png", ROOT / "docs" / f"dashboard-{name}.png")


def test_the_states_a_user_can_land_in(url: str, browser: Browser, week: Any, tmp_path: Path) -> None:
    keyed, empty = Starlette(), Starlette()
    mount(keyed, week[0], api_keys=[KEY])
    mount(empty, tmp_path / "nothing-yet.sqlite3")
    shots: dict[str, dict[str, Any]] = {}
    with Served(keyed) as keyed_url, Served(empty) as empty_url:
        cases = {
            "ok": (f"{url}/dashboard/?range=24h", 1400, "ok"),
            "narrow": (f"{url}/dashboard/?range=24h", 420, "ok"),
            "bad-range": (f"{url}/dashboard/?range=2h", 1400, "error"),
            "empty-store": (f"{empty_url}/dashboard/", 1400, "empty"),
            "needs-key": (f"{keyed_url}/dashboard/", 1400, "needs-key"),
            "wrong-key": (f"{keyed_url}/dashboard/#key=not-the-key", 1400, "wrong-key"),
            "with-key": (f"{keyed_url}/dashboard/?range=7d&view=sessions#key={KEY}", 1400, "ok"),
        }
        for name, (address, width, expected) in cases.items():
            browser.evaluate("localStorage.clear()")
            browser.open(address, width, 900)
            assert browser.evaluate("document.body.dataset.state") == expected, name
            assert len(browser.texts("#ranges button")) == 7, f"{name}: the range controls are there"
            notice = " ".join(browser.texts("#notice p"))
            if name == "bad-range":
                assert "range: expected one of 15m, 1h, 6h, 24h, 7d, 30d, all, got '2h'" in notice
            if name == "empty-store":
                assert "No telemetry recorded yet" in notice and "nothing-yet.sqlite3" in notice
            if name == "needs-key":
                assert "needs an API key" in notice and browser.evaluate("!!document.getElementById('key')")
            if name == "wrong-key":
                assert "not accepted" in notice and browser.evaluate("!!document.getElementById('key')")
            if name == "narrow":
                assert browser.evaluate("document.documentElement.scrollWidth") <= 420
                assert browser.evaluate("document.querySelector('#latency svg').getBoundingClientRect().width") <= 400
            if name == "with-key":
                assert browser.evaluate("document.querySelectorAll('#sessions tbody tr').length") > 10
            shots[name] = browser.pixels(browser.screenshot(tmp_path / f"state-{name}.png"))
        # A key typed into the form is used at once.
        browser.evaluate("localStorage.clear()")
        browser.open(f"{keyed_url}/dashboard/?range=7d", 1400, 900)
        browser.evaluate(f"document.getElementById('key').value = '{KEY}'; document.body.dataset.ready = 'false'")
        browser.click("#notice form button")
        assert browser.evaluate("document.body.dataset.state") == "ok"
        assert int(browser.texts('[data-kpi="calls"] .value')[0]) == len(week[1].calls)
    _distinct(shots)
    assert shots["narrow"]["width"] == 420 and shots["ok"]["width"] == 1400
    if DOCS:
        for name in ("narrow", "bad-range", "empty-store", "wrong-key"):
            shutil.copyfile(tmp_path / f"state-{name}.png", ROOT / "docs" / f"dashboard-state-{name}.png")
