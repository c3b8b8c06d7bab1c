"""Issue 15, points 9 and 10 for the long-running commands: `serve` and the MCP server (through the
official `mcp` client) say in one line what is wrong with the store, an argument or a function."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from sdk_telemetry.store import _sqlite
from tests.helpers.processes import ROOT, child_env
from tests.helpers.store_data import load


def known_store(tmp_path: Path) -> Path:
    path = tmp_path / "known.sqlite3"
    connection = _sqlite.connect(path)
    load(connection)
    connection.close()
    return path


def serve(store: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sdk_telemetry",
            "serve",
            "--insecure-no-auth",
            "--port",
            "0",
            "--store",
            str(store),
            *extra,
        ],
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def test_serve_on_random_bytes_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "random.sqlite3"
    path.write_bytes(bytes(range(256)) * 64)
    out, err = serve(path).communicate(timeout=30)
    assert (out, err) == ("", f"sdk-telemetry: {path} cannot be read as a telemetry store: file is not a database\n")
    assert path.read_bytes() == bytes(range(256)) * 64


def test_serve_refuses_an_unrelated_sqlite_file_without_touching_it(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite3"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE notes (body TEXT)")
    connection.commit()
    connection.close()
    before = path.read_bytes()
    process = serve(path)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 1
    assert (out, err) == ("", f"sdk-telemetry: {path} is not a telemetry store (it has no otel_traces table)\n")
    assert path.read_bytes() == before


def test_serve_says_what_retention_removed_at_start_and_warns_of_rules_about_unknown_functions(
    tmp_path: Path,
) -> None:
    store = known_store(tmp_path)  # every row is from 2023: older than the 30 days kept
    connection = sqlite3.connect(store)
    (spans,) = connection.execute("SELECT COUNT(*) FROM otel_traces").fetchone()
    (metrics,) = connection.execute("SELECT COUNT(*) FROM otel_metrics_gauge").fetchone()
    connection.close()
    rules = tmp_path / "monitors.yaml"
    rules.write_text(
        "rules:\n  - name: slow_gets\n    function: Api.gte\n    metric: p95\n    above: 100\n    window: 5m\n"
    )
    process = serve(store, "--monitors", str(rules), "--retention-days", "30")
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(5)]
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    # The 2023 rows' rollups are older than even the month tier keeps (365 days).
    raw = f"sdk-telemetry serve: retention removed {spans:,} span(s), {metrics:,} metric value(s) older than 30 days"
    assert lines[3].startswith(raw + "; ") and lines[3].endswith(" rollup bucket(s) older than their tier keeps\n")
    assert lines[4] == f"sdk-telemetry serve: evaluating 1 monitor rule(s) from {rules}\n"
    assert (
        "sdk-telemetry serve: monitor rule 'slow_gets': no calls of 'Api.gte' recorded yet; "
        "did you mean Api.get, Api.outer, Api.put?\n"
    ) in err
    connection = sqlite3.connect(store)
    assert connection.execute("SELECT COUNT(*) FROM otel_traces").fetchone() == (0,)
    connection.close()


async def _call(store: Path, calls: list[tuple[str, dict[str, Any]]]) -> list[tuple[bool, str]]:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "sdk_telemetry.cli.mcp_server", "--store", str(store)], env=child_env()
    )
    answers = []
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        for name, arguments in calls:
            result = await session.call_tool(name, arguments)
            answers.append((result.is_error, result.content[0].text if result.content else ""))
    return answers


async def test_mcp_tools_on_a_damaged_store_say_why(tmp_path: Path) -> None:
    path = tmp_path / "random.sqlite3"
    path.write_bytes(bytes(range(256)) * 64)
    other = tmp_path / "other.sqlite3"
    connection = sqlite3.connect(other)
    connection.execute("CREATE TABLE notes (body TEXT)")
    connection.commit()
    connection.close()
    line = f"{path} cannot be read as a telemetry store: file is not a database"
    assert await _call(path, [("collect_metrics", {}), ("get_realtime_stats", {})]) == [
        (True, f"Error executing tool collect_metrics: {line}"),
        (True, f"Error executing tool get_realtime_stats: {line}"),
    ]
    assert await _call(other, [("analyze_performance", {})]) == [
        (
            True,
            f"Error executing tool analyze_performance: {other} is not a telemetry store (it has no otel_traces table)",
        )
    ]


async def test_mcp_tools_refuse_unknown_arguments_and_functions(tmp_path: Path) -> None:
    store = known_store(tmp_path)
    answers = await _call(
        store,
        [
            ("analyze_performance", {"functon": "Api.get"}),
            ("analyze_performance", {"function": "Api.gte"}),
            ("collect_metrics", {"functions": ["Api.get", "Nope.x"]}),
            ("analyze_user_behavior", {"steps": ["Api.get", "Api.putt"]}),
            ("collect_metrics", {"functions": ["Api.get"]}),
        ],
    )
    assert answers[0] == (
        True,
        "Error executing tool analyze_performance: unknown argument 'functon' (it takes function, since, step, until)",
    )
    assert answers[1] == (
        True,
        "Error executing tool analyze_performance: no function 'Api.gte' was ever recorded; "
        "did you mean Api.get, Api.outer, Api.put?",
    )
    assert answers[2] == (True, "Error executing tool collect_metrics: no function 'Nope.x' was ever recorded")
    assert answers[3][0] is True
    assert answers[3][1].startswith("Error executing tool analyze_user_behavior: no function or event 'Api.putt'")
    assert answers[4][0] is False
    assert '"Api.get.duration_ms"' in answers[4][1]
