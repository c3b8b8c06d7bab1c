"""The analytics HTTP API on the real receiver (`sdk-telemetry serve`'s app, over HTTP on 127.0.0.1):
evenly spaced series, drill-down endpoints, filters, keys, and `GET /`."""

from __future__ import annotations

import calendar
import contextlib
import itertools
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sdk_telemetry.dashboard import mount
from sdk_telemetry.receiver import ReceiverSettings, create_app
from tests.helpers.receiver import KEY, Running, invocation, serve
from tests.helpers.week import EXECUTE, HTTP, Made, write_week


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Made, int]:
    path = tmp_path_factory.mktemp("api") / "week.sqlite3"
    now = time.time_ns()
    return path, write_week(path, now), now


@contextlib.contextmanager
def _receiver(store: Path, dashboard_store: Path | None = None) -> Iterator[Running]:
    """The receiver storing in `store`, with the dashboard and analytics API mounted over `dashboard_store`."""

    def app(settings: ReceiverSettings) -> Any:
        application = create_app(settings)
        mount(application, dashboard_store or settings.store_path, api_keys=[KEY])
        return application

    with serve(ReceiverSettings(store_path=store, api_keys=(KEY,)), app) as server:
        yield server


@pytest.fixture
def running(week: tuple[Path, Made, int]) -> Iterator[Running]:
    with _receiver(week[0]) as server:
        yield server


def _get(server: Running, path: str, **params: Any) -> Any:
    answer = server.get(path, **params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_series_cover_the_range_in_even_buckets(running: Running, week: Any) -> None:
    _, made, _ = week
    data = _get(running, "/dashboard/api/overview", range="7d")
    starts = [calendar.timegm(time.strptime(b["start"][:19], "%Y-%m-%dT%H:%M:%S")) for b in data["series"]]
    step = data["step_seconds"]
    assert step == 3 * 3600 and all(b - a == step for a, b in itertools.pairwise(starts))
    assert len(data["series"]) in (56, 57)  # 7 days of 3 h buckets, aligned: 56 whole plus a partial one
    assert any(b["calls"] == 0 and b["p50_ms"] is None for b in data["series"])  # nights are there, empty
    assert sum(b["calls"] for b in data["series"]) == data["totals"]["calls"] == len(made.calls)
    assert data["totals"]["throughput_per_min"] == pytest.approx(len(made.calls) / (7 * 24 * 60), rel=0.01)
    assert data["services"] == ["acme-sdk", "billing-sdk"] and data["environments"] == ["production", "staging"]
    filtered = _get(running, "/dashboard/api/overview", range="7d", service="billing-sdk", environment="staging")
    expected = made.count(0, 2**63, service="billing-sdk", environment="staging")
    assert filtered["totals"]["calls"] == expected and filtered["service"] == "billing-sdk"
    unknown = _get(running, "/dashboard/api/overview", range="7d", function="Tools.exectue")
    assert unknown["selected"] is None and "did you mean Tools.execute" in unknown["notice"]


def test_drill_down_from_a_function_to_a_trace_and_from_an_error_to_its_session(running: Running, week: Any) -> None:
    _, made, _ = week
    calls = _get(running, "/api/v1/analytics/calls", function=EXECUTE, errors="true", limit=5)["calls"]
    assert len(calls) == 5 and all(c["status"] == "Error" for c in calls)
    found = _get(running, f"/api/v1/analytics/traces/{calls[0]['trace_id']}")
    assert [(s["name"], s["depth"]) for s in found["spans"]] == [(EXECUTE, 0), (HTTP, 1)]
    assert found["spans"][1]["attributes"]["http.request.method"] == "POST"
    groups = _get(running, "/api/v1/analytics/errors", since="7d")["errors"]
    assert [(g["type"], g["function"]) for g in groups] == [("ToolTimeout", EXECUTE)]
    occurrences = _get(running, "/api/v1/analytics/errors/occurrences", type="ToolTimeout", function=EXECUTE)
    first = occurrences["occurrences"][0]
    assert "Traceback" in first["stacktrace"] and first["trace_id"] == calls[0]["trace_id"]
    session = _get(running, f"/api/v1/analytics/sessions/{first['session_id']}")
    assert session["errors"] >= 1 and session["items"][0]["name"] == "SESSION_START"
    assert any(item.get("trace_id") == first["trace_id"] for item in session["items"])
    listed = _get(running, "/api/v1/analytics/sessions", since="7d", limit=500)["sessions"]
    assert len(listed) == len(made.sessions)
    staging = _get(running, "/api/v1/analytics/sessions", since="7d", limit=500, environment="staging")["sessions"]
    assert {s["environment"] for s in staging} == {"staging"}
    assert len(staging) == sum(1 for s in made.sessions.values() if s["environment"] == "staging")
    missing = running.get("/api/v1/analytics/traces/" + "a" * 32)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"
    bad = running.get("/api/v1/analytics/traces/xyz")
    assert bad.status_code == 400 and "trace id" in bad.json()["error"]["message"]


def test_tail_follows_what_the_receiver_stores(week: Any, tmp_path: Path) -> None:
    store = tmp_path / "tail.sqlite3"
    shutil.copyfile(week[0], store)
    with _receiver(store) as running:
        _tail(running)


def _tail(running: Running) -> None:
    start = _get(running, "/api/v1/analytics/tail", limit=3)
    assert len(start["calls"]) == 3
    now = time.time()
    sent = running.post(
        "/v1/metrics/invocations", [invocation(i, timestamp=now, functionName="Tail.new") for i in (1, 2)]
    )
    assert sent.status_code == 200, sent.text
    update = _get(running, "/api/v1/analytics/tail", after=start["cursor"])
    assert [c["function"] for c in update["calls"]] == ["Tail.new", "Tail.new"] and update["cursor"] > start["cursor"]
    assert _get(running, "/api/v1/analytics/tail", after=update["cursor"])["calls"] == []


def test_keys_home_and_retention_future_cells(running: Running) -> None:
    no_key = httpx.get(running.url + "/api/v1/analytics/calls")
    assert no_key.status_code == 401 and no_key.json()["error"]["code"] == "UNAUTHORIZED"
    wrong = httpx.get(running.url + "/api/v1/analytics/traces/abc", headers={"X-API-Key": "wrong"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "INVALID_API_KEY"
    assert "not accepted" in wrong.json()["error"]["message"]
    overview = httpx.get(running.url + "/dashboard/api/overview", headers={"X-API-Key": "wrong"})
    assert overview.status_code == 401 and overview.json()["error"]["code"] == "INVALID_API_KEY"
    home = httpx.get(running.url + "/", follow_redirects=False)
    assert home.status_code == 307 and home.headers["location"] == "/dashboard/"
    assert httpx.get(running.url + "/", follow_redirects=True).text.count("sdk-telemetry") > 1
    kept = _get(running, "/api/v1/analytics/retention", since="7d", by="user", period="day", periods=7)
    last = kept["cohorts"][-1]
    assert last["rates"][0] == 1.0 and last["rates"][-1] is None  # the newest cohort's later days have not come


def test_an_empty_store_answers_no_store(tmp_path: Path) -> None:
    with _receiver(tmp_path / "elsewhere.sqlite3", tmp_path / "empty.sqlite3") as server:
        answer = server.get("/api/v1/analytics/sessions")
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "NO_STORE"
        assert server.get("/dashboard/api/overview").json()["empty"] is True


def test_journeys_of_the_ranges_last_stretch(running: Running) -> None:
    whole = _get(running, "/api/v1/analytics/journeys", since="7d")
    recent = _get(running, "/api/v1/analytics/journeys", since="7d", last="1d")
    start, end = (
        calendar.timegm(time.strptime(recent["time_range"][edge][:19], "%Y-%m-%dT%H:%M:%S"))
        for edge in ("start", "end")
    )
    assert end - start in (86399, 86400)  # the day ending at the range's last stored call
    assert 0 < recent["sessions"] < whole["sessions"]
    longer = _get(running, "/api/v1/analytics/journeys", since="7d", last="30d")
    assert (longer["sessions"], longer["paths"]) == (whole["sessions"], whole["paths"])
    refused = running.get("/api/v1/analytics/journeys", since="7d", last="0s")
    assert refused.status_code == 400 and "last" in refused.json()["error"]["message"]
