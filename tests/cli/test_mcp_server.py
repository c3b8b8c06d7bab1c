"""The MCP server end to end: spawned over stdio, every tool called through the official MCP client."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from exporters.tests.helpers.loopback import LoopbackServer, Reply
from tests.helpers.processes import child_env
from tests.helpers.spans import BASE, EXECUTE, LIST, LOGIN, NS, SEARCH, SpanFactory, known_spans, write_spans

TOOLS = {
    "collect_metrics",
    "analyze_performance",
    "analyze_user_behavior",
    "get_realtime_stats",
    "analyze_feature_adoption",
}
DAY0, DAY3 = str(BASE // NS), str(BASE // NS + 3 * 86_400)


async def _session_calls(store: Path, receiver: str) -> dict[str, Any]:
    params = StdioServerParameters(
        command=sys.executable,
        args=[
            "-m",
            "sdk_telemetry.cli.mcp_server",
            "--store",
            str(store),
            "--receiver",
            receiver,
            "--receiver-api-key",
            "k1",
        ],
        env=child_env(),
    )
    results: dict[str, Any] = {}
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        listed = (await session.list_tools()).tools
        results["tools"] = {tool.name: tool for tool in listed}

        async def call(name: str, arguments: dict[str, Any]) -> Any:
            result = await session.call_tool(name, arguments)
            return result

        results["metrics"] = await call("collect_metrics", {"aggregation": "P95", "since": DAY0, "until": DAY3})
        results["mean"] = await call("collect_metrics", {"functions": [EXECUTE], "aggregation": "MEAN"})
        results["performance"] = await call(
            "analyze_performance", {"function": EXECUTE, "since": DAY0, "until": DAY3, "step": "1d"}
        )
        results["behavior"] = await call("analyze_user_behavior", {"steps": [LOGIN, LIST, EXECUTE], "window": "1h"})
        results["recent"] = await call("analyze_user_behavior", {"last": "1h"})
        results["realtime"] = await call("get_realtime_stats", {"window": "5m"})
        results["adoption"] = await call("analyze_feature_adoption", {"by": "session", "period": "day"})
        results["bad"] = await call("analyze_user_behavior", {"steps": [LOGIN], "window": "1h"})
        results["invalid"] = await call("collect_metrics", {"aggregation": "MEDIAN"})
    return results


async def test_every_tool_through_a_real_client_session(tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite3"
    factory = SpanFactory(first_id=1_000_000)
    live = [factory.call(SEARCH, time.time_ns() - i * NS, 30, {"session.id": f"live-{i % 2}"}) for i in range(1, 5)]
    write_spans(store, [*known_spans(), *live])
    health = b'{"status": "healthy", "receiver": {"backlog_rows": 3, "max_backlog_rows": 100000}}'
    with LoopbackServer(lambda request: Reply(body=health)) as receiver:
        results = await _session_calls(store, receiver.url)
        asked = receiver.requests_to("/health")
        assert asked and asked[0].headers["x-api-key"] == "k1", "get_realtime_stats asks the receiver for its queue"

    tools = results["tools"]
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.input_schema["type"] == "object" and tool.output_schema["type"] == "object"
        assert tool.description
    assert tools["collect_metrics"].input_schema["properties"]["aggregation"]["enum"][:2] == ["MEAN", "SUM"]
    assert "steps" in tools["analyze_user_behavior"].input_schema["properties"]

    metrics = results["metrics"].structured_content
    assert metrics["status"] == "success" and metrics["aggregation"] == "P95"
    assert metrics["metrics"][f"{EXECUTE}.duration_ms"]["value"] == 1000.0
    assert metrics["metrics"][f"{EXECUTE}.duration_ms"]["sample_count"] == 5
    assert metrics["metrics"][f"{EXECUTE}.duration_ms"]["error_rate"] == 0.2
    assert results["mean"].structured_content["metrics"][f"{EXECUTE}.duration_ms"]["value"] == 400.0

    perf = results["performance"].structured_content
    assert perf["summary"]["p50_ms"] == 300.0 and perf["summary"]["error_rate"] == 0.2
    assert [b["calls"] for b in perf["buckets"]] == [3, 1, 1]
    assert perf["top_errors"][0]["type"] == "ValueError"
    assert any("slowest by p95: Tools.execute" in line for line in perf["insights"])

    behavior = results["behavior"].structured_content
    assert [s["count"] for s in behavior["funnel"]["steps"]] == [6, 4, 2]
    assert behavior["journeys"]["paths"][0]["path"] == [LOGIN, LIST, EXECUTE]
    assert behavior["biggest_drop_off"]["step"] == LIST  # 2 lost at both; the first is kept
    recent = results["recent"].structured_content["journeys"]  # the last hour: the two live sessions
    assert recent["sessions"] == 2 < behavior["journeys"]["sessions"]
    assert recent["paths"] == [{"path": [SEARCH], "count": 2, "share": 1.0}]

    realtime = results["realtime"].structured_content
    assert realtime["throughput"]["stored_calls"] == 4 and realtime["active_sessions"] == 2
    assert realtime["storage"]["stored_calls"] == 24 and realtime["storage"]["bytes"] > 0
    assert realtime["queue"] == {"backlog_rows": 3, "max_backlog_rows": 100000}

    adoption = results["adoption"].structured_content
    assert SEARCH in adoption["trending_up"] and EXECUTE in adoption["trending_down"]
    search = next(f for f in adoption["features"] if f["function"] == SEARCH)
    assert search["trend"]["reason"].startswith("share went from")

    assert results["bad"].is_error and "at least two steps" in results["bad"].content[0].text
    assert results["invalid"].is_error


MCP_HTTP = [sys.executable, "-m", "sdk_telemetry.cli.mcp_server", "--transport", "streamable-http"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _listed_tools(url: str, headers: dict[str, str]) -> set[str]:
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    async with (
        create_mcp_http_client(headers=headers) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        return {tool.name for tool in (await session.list_tools()).tools}


def test_streamable_http_requires_the_receivers_api_key(tmp_path: Path) -> None:
    port = _free_port()
    process = subprocess.Popen(
        [*MCP_HTTP, "--port", str(port), "--store", str(tmp_path / "s.sqlite3")],
        env=child_env(SDK_TELEMETRY_SERVE_API_KEYS="mcp-key-1,mcp-key-2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                refused = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and process.poll() is None, "the MCP server did not start"
                time.sleep(0.1)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "UNAUTHORIZED"
        wrong = httpx.post(url, json={}, headers={"Authorization": "Bearer nope"}, timeout=5)
        assert wrong.status_code == 401
        assert asyncio.run(_listed_tools(url, {"Authorization": "Bearer mcp-key-2"})) == TOOLS
    finally:
        process.terminate()
        process.communicate(timeout=20)


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ([], "needs an API key"),
        (["--insecure-no-auth", "--host", "0.0.0.0"], "loopback"),
    ],
)
def test_streamable_http_does_not_start_without_a_key(tmp_path: Path, arguments: list[str], problem: str) -> None:
    result = subprocess.run(
        [*MCP_HTTP, "--port", "0", "--store", str(tmp_path / "s.sqlite3"), *arguments],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert problem in result.stderr
