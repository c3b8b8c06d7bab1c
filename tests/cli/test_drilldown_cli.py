"""The analysis and drill-down commands of `sdk-telemetry` over a simulated week: aligned perf buckets
in calls/min, filters, blank future retention cells, calls, trace, errors --stack, sessions, session
and a live tail (a real child process following the store)."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sdk_telemetry.cli.commands import app
from tests.helpers.processes import ROOT, child_env
from tests.helpers.spans import DAY, NS, SpanFactory, write_spans
from tests.helpers.week import EXECUTE, Made, write_week
from tests.helpers.week import WEEK_NOW as NOW

SINCE, UNTIL = str((NOW - 7 * DAY) // NS), str(NOW // NS)


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Made]:
    path = tmp_path_factory.mktemp("cli") / "week.sqlite3"
    return path, write_week(path, NOW)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_perf_buckets_align_to_the_day_and_say_calls_per_minute(week: Any) -> None:
    path, made = week
    code, out, err = run("perf", "--step", "1d", "--since", SINCE, "--until", UNTIL, "--store", str(path), "--json")
    assert code == 0, err
    buckets = json.loads(out)["buckets"]
    assert [b["start"][:10] for b in buckets] == [f"2026-11-{d}" for d in (26, 27, 28, 29, 30)] + [
        "2026-12-01", "2026-12-02", "2026-12-03"]  # fmt: skip
    assert all(b["start"].endswith("T00:00:00.000Z") for b in buckets)  # midnight UTC, not "now minus 7 days"
    assert buckets[0]["calls"] == 0 and buckets[0]["error_rate"] is None
    assert sum(b["calls"] for b in buckets) == len(made.calls)
    code, out, _ = run("perf", "--step", "1d", "--since", SINCE, "--until", UNTIL, "--store", str(path))
    assert code == 0 and "calls/min" in out and "2026-11-26T00:00:00.000Z" in out and "calls/s" not in out
    code, out, _ = run("perf", "--since", SINCE, "--until", UNTIL, "--store", str(path), "--service", "billing-sdk",
                       "--json")  # fmt: skip
    assert json.loads(out)["summary"]["calls"] == made.count(0, NOW, service="billing-sdk")


def test_filters_and_blank_retention_cells(week: Any) -> None:
    path, made = week
    code, out, _ = run("journeys", "--store", str(path), "--environment", "staging", "--json")
    assert code == 0 and json.loads(out)["sessions"] == sum(
        1 for s in made.sessions.values() if s["environment"] == "staging"
    )
    code, out, _ = run(
        "retention", "--periods", "7", "--since", SINCE, "--until", UNTIL, "--store", str(path), "--json"
    )
    last = json.loads(out)["cohorts"][-1]  # the newest cohort: its later days have not come yet
    elapsed = (datetime(2026, 12, 3, tzinfo=timezone.utc) - datetime.fromisoformat(last["cohort"][:10]).replace(
        tzinfo=timezone.utc)).days  # fmt: skip
    assert 0 < elapsed < 6 and last["rates"][0] == 1.0
    assert None not in last["rates"][: elapsed + 1] and last["rates"][elapsed + 1 :] == [None] * (6 - elapsed)
    code, out, _ = run("retention", "--periods", "7", "--since", SINCE, "--until", UNTIL, "--store", str(path))
    row = next(line for line in out.splitlines() if last["cohort"][:10] in line)
    assert row.count("%") == elapsed + 1  # the days still to come are blank, not 0 %
    code, out, _ = run("funnel", "Client.login", EXECUTE, "--store", str(path), "--service", "nope", "--json")
    assert code == 0 and json.loads(out)["entered"] == 0


def test_calls_then_trace_then_errors_with_stack(week: Any) -> None:
    path, made = week
    code, out, _ = run("calls", EXECUTE, "--errors", "--limit", "3", "--store", str(path), "--json")
    calls = json.loads(out)
    assert code == 0 and len(calls) == 3 and {c["status"] for c in calls} == {"Error"}
    code, out, _ = run("calls", EXECUTE, "--errors", "--limit", "3", "--store", str(path))
    assert out.count("ToolTimeout") == 3 and calls[0]["trace_id"] in out
    code, out, _ = run("trace", calls[0]["trace_id"], "--store", str(path))
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith(f"trace {calls[0]['trace_id']}") and "2 span(s), 1 error(s)" in lines[0]
    assert lines[1].startswith(EXECUTE) and any(line.startswith("  POST  sdk_telemetry.http")
                                                 for line in lines)  # fmt: skip
    assert "http.response.status_code=504" in out and "Traceback (most recent call last)" in out
    code, out, _ = run("trace", calls[0]["trace_id"], "--store", str(path), "--json")
    assert [s["name"] for s in json.loads(out)["spans"]] == [EXECUTE, "POST"]
    code, _, err = run("trace", "f" * 32, "--store", str(path))
    assert code == 1 and err.strip() == f"sdk-telemetry: no trace '{'f' * 32}' in the store"
    code, out, _ = run("errors", "--stack", "--store", str(path))
    assert code == 0 and f"ToolTimeout in {EXECUTE}" in out and f"{made.count(0, NOW, failed=True)} times" in out
    assert "raise ToolTimeout(message)" in out and f"session {calls[0]['session_id']}" in out
    code, out, _ = run("errors", "--stack", "--store", str(path), "--json")
    (group,) = json.loads(out)
    assert group["latest"]["trace_id"] == calls[0]["trace_id"] and "Traceback" in group["latest"]["stacktrace"]


def test_sessions_and_one_session(week: Any) -> None:
    path, made = week
    code, out, _ = run("sessions", "--limit", "500", "--store", str(path), "--environment", "staging", "--json")
    listed = json.loads(out)
    assert code == 0 and len(listed) == sum(1 for s in made.sessions.values() if s["environment"] == "staging")
    code, out, _ = run("session", "w-010", "--store", str(path))
    lines = out.splitlines()
    assert lines[0].startswith("session w-010") and "event SESSION_START" in lines[1] and "SESSION_END" in lines[-1]
    assert sum(1 for line in lines if "  session w-010  trace " in line) == made.count(0, NOW, session="w-010")
    code, _, err = run("session", "nobody", "--store", str(path))
    assert code == 1 and "no session 'nobody'" in err


def test_tail_prints_calls_as_they_are_stored(tmp_path: Path) -> None:
    store = tmp_path / "tail.sqlite3"
    factory = SpanFactory(first_id=7)
    resource = {"service.name": "acme-sdk", "session.id": "t1"}
    write_spans(store, [factory.call("Old.call", NOW, 5, resource)])
    code, out, _ = run("tail", "--no-follow", "--store", str(store))
    assert code == 0 and "Old.call" in out
    env = {**child_env(), "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "exporters" / "src"),
                                                         os.environ.get("PYTHONPATH", "")])}  # fmt: skip
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from sdk_telemetry.cli import main; main()",
            "tail",
            "--json",
            "--limit",
            "1",
            "--interval",
            "0.1s",
            "--store",
            str(store),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        first = _line(child)
        assert first["function"] == "Old.call"
        now = int(datetime.now(timezone.utc).timestamp() * NS)
        write_spans(store, [factory.call("New.call", now, 7, resource, error="Boom: new")])
        update = _line(child)
        assert (update["function"], update["status"], update["error_type"]) == ("New.call", "Error", "Boom")
    finally:
        child.terminate()
        child.wait(10)


def _line(child: subprocess.Popen[str], timeout: float = 20.0) -> dict[str, Any]:
    assert child.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([child.stdout], [], [], 0.2)
        if ready:
            line = child.stdout.readline()
            if line:
                return dict(json.loads(line))
        assert child.poll() is None, child.stderr.read() if child.stderr else ""
    raise AssertionError("tail printed nothing new")
