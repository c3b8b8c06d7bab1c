"""The dashboard in a real browser: headless Chromium against the page served by uvicorn over a known store."""

from __future__ import annotations

import html
import os
import random
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from opentelemetry.sdk.trace import ReadableSpan
from starlette.applications import Starlette

from sdk_telemetry.dashboard import mount
from tests.dashboard.browser import HEADLESS
from tests.helpers.processes import ROOT
from tests.helpers.spans import MS, NS, SpanFactory, write_spans

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
MINUTE = 60 * NS
FUNCTIONS = {  # name: (median ms, spread, error share)
    "Client.login": (40, 0.25, 0.0),
    "Tools.list": (22, 0.3, 0.0),
    "Tools.execute": (180, 0.45, 0.06),
    "Tools.search": (65, 0.35, 0.01),
    "Files.upload": (420, 0.5, 0.03),
}
ERRORS = {
    "Tools.execute": ("ToolTimeout", "ToolTimeout: tool 'github.create_issue' did not answer within 30 s"),
    "Tools.search": ("RateLimited", "RateLimited: 429 from search backend, retry after 2 s"),
    "Files.upload": ("PayloadTooLarge", "PayloadTooLarge: 27.4 MB is above the 25 MB limit"),
}


def demo_spans(now_ns: int, sessions: int = 160, hours: int = 6, seed: int = 7) -> list[ReadableSpan]:
    """Sessions over the last `hours`: login, list, then executes, searches and uploads; slower lately."""
    rng = random.Random(seed)
    factory = SpanFactory(first_id=5_000_000)
    spans = []
    for index in range(sessions):
        start = now_ns - int(rng.uniform(0.02, hours) * 3600 * NS)
        resource = {"service.name": "acme-sdk", "session.id": f"demo-{index}", "enduser.id": f"user-{index % 60}"}
        plan = ["Client.login"]
        if rng.random() < 0.82:
            plan.append("Tools.list")
            if rng.random() < 0.7:
                plan += ["Tools.execute"] * rng.randint(1, 6)
                plan += ["Tools.search"] * rng.randint(0, 3)
                if rng.random() < 0.3:
                    plan.append("Files.upload")
        at = start
        for name in plan:
            median, spread, error_share = FUNCTIONS[name]
            recent = (now_ns - at) < 75 * MINUTE
            factor = 2.6 if recent and name == "Tools.execute" else 1.0
            duration = median * factor * rng.lognormvariate(0, spread)
            failed = rng.random() < error_share * (2.5 if recent else 1.0)
            error = ERRORS[name][1] if failed and name in ERRORS else None
            span = factory.call(name, at, duration, resource, error)
            spans.append(span)
            if name == "Tools.execute":
                spans.append(factory.call("Http.post", at + 2 * MS, duration * 0.8, resource, parent=span.context))
            at += int((duration + rng.uniform(200, 4000)) * MS)
            if at >= now_ns:
                break
    return [span for span in spans if (span.start_time or 0) < now_ns]


def _known_spans(now_ns: int) -> list[ReadableSpan]:
    """A small store whose figures the test checks: ten sessions in the last half hour."""
    factory = SpanFactory(first_id=9_000_000)
    spans = []
    for index in range(10):
        resource = {"service.name": "acme-sdk", "session.id": f"k-{index}"}
        at = now_ns - (30 - index) * MINUTE
        spans.append(factory.call("Client.login", at, 10, resource))
        if index < 6:
            spans.append(factory.call("Tools.list", at + NS, 20, resource))
        if index < 3:
            error = "ToolTimeout: took too long" if index == 0 else None
            spans.append(factory.call("Tools.execute", at + 2 * NS, 900 + index * 100, resource, error))
    return spans


class Served:
    """A Starlette app with the dashboard mounted, run by uvicorn in a thread on 127.0.0.1."""

    def __init__(self, app: Starlette) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.server.started, "uvicorn did not start"
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def _chromium(tmp_path: Path, *args: str, size: str = "1400,1000") -> subprocess.CompletedProcess[str]:
    flags = [
        *HEADLESS,
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--virtual-time-budget=3000",
        f"--window-size={size}",
    ]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=90)


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    path = tmp_path / "monitors.yaml"
    path.write_text(
        "interval: 0.2s\n"
        "rules:\n"
        "  - {name: slow-execute, function: Tools.execute, metric: p95, above: 500ms, window: 1h}\n"
        "  - {name: error-rate, metric: error_rate, above: 50%, window: 1h}\n"
    )
    return path


@pytest.fixture
def known_store(tmp_path: Path) -> Path:
    path = tmp_path / "dashboard.sqlite3"
    write_spans(path, _known_spans(time.time_ns()))
    return path


@pytest.fixture
def served(known_store: Path, rules: Path) -> Iterator[str]:
    app = Starlette()
    mounted = mount(app, known_store, monitors=rules)
    with Served(app) as url:
        assert mounted.runner is not None
        deadline = time.monotonic() + 5
        while mounted.runner.evaluator.snapshot()[0]["last_evaluated"] is None and time.monotonic() < deadline:
            time.sleep(0.05)
        yield url


def _text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", fragment))


def test_the_page_shows_the_known_figures(served: str, tmp_path: Path) -> None:
    started = time.perf_counter()
    page = httpx.get(f"{served}/dashboard/?range=1h", timeout=10)
    load_seconds = time.perf_counter() - started
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "http://" not in page.text.replace("http://www.w3.org/2000/svg", ""), "nothing is fetched from elsewhere"
    assert load_seconds < 3.0, f"the page took {load_seconds:.2f}s"

    result = _chromium(tmp_path, "--dump-dom", f"{served}/dashboard/?range=1h")
    dom = result.stdout
    assert 'data-ready="true"' in dom, result.stderr[-2000:]
    kpis = dict(re.findall(r'data-kpi="([\w-]+)".*?<div class="value">(.*?)</div>', dom))
    assert _text(kpis["calls"]).strip() == "19"  # 10 logins, 6 lists, 3 executes
    assert _text(kpis["error-rate"]).strip() == "5.26%"  # 1 of 19
    rows = re.findall(r'<tr[^>]*data-function="([^"]+)"', dom)
    assert rows == ["Client.login", "Tools.list", "Tools.execute"]
    steps = re.findall(r'data-step="([^"]+)" data-count="(\d+)"', dom)
    assert steps == [("Client.login", "10"), ("Tools.list", "6"), ("Tools.execute", "3")]  # the commonest journey
    alerts = dict(re.findall(r'data-alert="([^"]+)" data-state="(\w+)"', dom))
    assert alerts == {"slow-execute": "firing", "error-rate": "ok"}
    assert re.search(r'<path[^>]*data-series="p95_ms"', dom) and re.search(r'<rect[^>]*data-series="throughput', dom)
    assert 'data-error="ToolTimeout"' in dom


def test_selecting_a_function_and_the_json_api(served: str, tmp_path: Path) -> None:
    dom = _chromium(tmp_path, "--dump-dom", f"{served}/dashboard/?range=1h&function=Tools.execute").stdout
    assert re.search(r'<tr class="selected" data-function="Tools.execute"', dom)
    kpis = dict(re.findall(r'data-kpi="([\w-]+)".*?<div class="value">(.*?)</div>', dom))
    assert _text(kpis["calls"]).strip() == "19"  # the cards keep the totals
    data = httpx.get(f"{served}/dashboard/api/overview", params={"range": "1h", "function": "Tools.execute"}).json()
    assert data["selected"] == "Tools.execute"
    assert sum(bucket["calls"] for bucket in data["series"]) == 3
    assert httpx.get(f"{served}/dashboard/api/overview", params={"range": "2h"}).status_code == 400
    funnel = httpx.get(
        f"{served}/api/v1/analytics/funnel", params={"steps": "Client.login,Tools.execute", "window": "1h"}
    ).json()
    assert [step["count"] for step in funnel["steps"]] == [10, 3]
    alerts = httpx.get(f"{served}/api/v1/alerts").json()
    assert {alert["name"]: alert["state"] for alert in alerts["alerts"]} == {
        "slow-execute": "firing",
        "error-rate": "ok",
    }
    csv_export = httpx.get(f"{served}/api/v1/analytics/export", params={"kind": "calls", "since": "1h"})
    assert csv_export.headers["content-type"].startswith("text/csv") and csv_export.text.count("\n") == 20
    bad = httpx.get(f"{served}/api/v1/analytics/retention", params={"period": "fortnight"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_QUERY"


def test_api_keys_guard_the_data(known_store: Path) -> None:
    app = Starlette()
    mount(app, known_store, api_keys=["s3cret"])
    with Served(app) as url:
        page = httpx.get(f"{url}/dashboard/")
        assert page.status_code == 200 and "Client.login" not in page.text  # no data without the key
        assert httpx.get(f"{url}/dashboard/api/overview").status_code == 401
        assert httpx.get(f"{url}/api/v1/analytics/functions").status_code == 401
        ok = httpx.get(f"{url}/api/v1/analytics/functions", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and ok.json()["functions"][0]["function"] == "Client.login"


def test_screenshot_of_a_busy_store(tmp_path: Path) -> None:
    store = tmp_path / "demo.sqlite3"
    write_spans(store, demo_spans(time.time_ns()))
    rules = tmp_path / "monitors.yaml"
    rules.write_text(
        "interval: 0.2s\nrules:\n"
        "  - {name: slow-execute, function: Tools.execute, metric: p95, above: 500ms, window: 30m,"
        " description: 'p95 of Tools.execute above 500 ms over 30m'}\n"
        "  - {name: upload-errors, function: Files.upload, metric: error_rate, above: 20%, window: 1h}\n"
        "  - {name: error-rate, metric: error_rate, above: 10%, window: 15m}\n"
        "  - {name: traffic, metric: calls, below: 1, window: 30m, min_calls: 0, severity: info}\n"
    )
    app = Starlette()
    mounted = mount(app, store, monitors=rules)
    shot = tmp_path / "dashboard.png"
    with Served(app) as url:
        assert mounted.runner is not None
        deadline = time.monotonic() + 5
        while mounted.runner.evaluator.snapshot()[0]["last_evaluated"] is None and time.monotonic() < deadline:
            time.sleep(0.05)
        result = _chromium(tmp_path, f"--screenshot={shot}", f"{url}/dashboard/?range=6h", size="1400,1170")
    assert shot.exists() and shot.stat().st_size > 20_000, result.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("UPDATE_DOCS_SCREENSHOT"):  # UPDATE_DOCS_SCREENSHOT=1 pytest tests/dashboard/test_dashboard.py
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copyfile(shot, ROOT / "docs" / "dashboard.png")


def test_mounted_on_the_receiver_shows_what_it_received(tmp_path: Path, rules: Path) -> None:
    from sdk_telemetry.receiver import ReceiverSettings, create_app

    store = tmp_path / "received.sqlite3"
    app = create_app(ReceiverSettings(store_path=store, api_keys=("k1",)))
    mount(app, store, monitors=rules, api_keys=["k1"])
    now = time.time()
    batch = [
        {"functionName": "Tools.execute", "durationMs": 600 + i, "timestamp": now - i, "source": {"service": "sdk"}}
        for i in range(5)
    ]
    with Served(app) as url:
        sent = httpx.post(f"{url}/v1/metrics/invocations", json=batch, headers={"X-API-Key": "k1"})
        assert sent.status_code == 200, sent.text
        deadline = time.monotonic() + 10
        totals: dict[str, object] = {}
        while time.monotonic() < deadline:
            answer = httpx.get(f"{url}/dashboard/api/overview", params={"range": "1h"}, headers={"X-API-Key": "k1"})
            totals = answer.json().get("totals", {})
            if totals.get("calls") == 5:
                break
            time.sleep(0.1)
        assert totals["calls"] == 5 and totals["p50_ms"] == 602.0
        # The monitors evaluate on their own loop: wait until they have seen the new calls.
        deadline = time.monotonic() + 10
        states: dict[str, str] = {}
        while time.monotonic() < deadline and states.get("slow-execute") != "firing":
            alerts = httpx.get(f"{url}/api/v1/alerts", headers={"X-API-Key": "k1"}).json()["alerts"]
            states = {alert["name"]: alert["state"] for alert in alerts}
            time.sleep(0.05)
        assert states.get("slow-execute") == "firing", states
        dom = _chromium(tmp_path, "--dump-dom", f"{url}/dashboard/?range=1h#key=k1").stdout
    assert 'data-ready="true"' in dom  # the page fetched its data with the key from the address
    assert re.findall(r'<tr[^>]*data-function="([^"]+)"', dom) == ["Tools.execute"]
    assert 'data-alert="slow-execute" data-state="firing"' in dom
