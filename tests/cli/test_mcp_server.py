"""The MCP server end to end: spawned over stdio, every tool called through the official MCP client."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

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
