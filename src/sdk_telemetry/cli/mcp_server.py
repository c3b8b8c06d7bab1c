"""The MCP server: the store's analyses as tools an agent can call (`sdk-telemetry mcp`).

Built with the official `mcp` package (2.x). Tools, each with a JSON schema for its inputs and a
structured result: `collect_metrics`, `analyze_performance`, `analyze_user_behavior` (journeys and
funnels), `get_realtime_stats` (receiver queue, storage, recent throughput) and
`analyze_feature_adoption`. The server only reads the store.

    python -m sdk_telemetry.cli.mcp_server --store ~/.local/share/sdk-telemetry/telemetry.sqlite3
    python -m sdk_telemetry.cli.mcp_server --transport streamable-http --port 8765   # http://127.0.0.1:8765/mcp
"""

from __future__ import annotations

import argparse
import hmac
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
import urllib3
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field
from sdk_telemetry_exporters.config import parse_list

from sdk_telemetry._version import __version__
from sdk_telemetry.analytics import (
    NS,
    AnalyticsError,
    Location,
    Source,
    TimeRange,
    adoption,
    funnel,
    journeys,
    json_ready,
    parse_duration,
    performance,
    top_errors,
)
from sdk_telemetry.analytics import functions as function_table
from sdk_telemetry.cli._options import is_loopback
from sdk_telemetry.store import MissingExtra, Scope, StoreError, iso, storage_bytes, unreadable

Aggregation = Literal["MEAN", "SUM", "MIN", "MAX", "COUNT", "P50", "P95", "P99"]
By = Annotated[str, Field(description="Whom to count: 'session', 'user' (enduser.id) or a resource attribute key.")]
Since = Annotated[
    str | None,
    Field(description="Start: ISO 8601 time, epoch seconds, or a duration back from now such as '1h' or '7d'."),
]
Until = Annotated[str | None, Field(description="End (exclusive), same forms as `since`; default: now / all data.")]

INSTRUCTIONS = (
    "Telemetry of an SDK's calls (one span per public method call). Use analyze_performance for latency "
    "and errors of a function, collect_metrics for one aggregate per function, analyze_user_behavior for "
    "journeys and funnels through sessions, analyze_feature_adoption for who uses which function and "
    "its trend, get_realtime_stats for what is happening now."
)


def _range(since: str | None, until: str | None) -> TimeRange:
    try:
        return TimeRange.parse(since, until)
    except AnalyticsError as exc:
        raise ToolError(str(exc)) from None


class MetricValue(BaseModel):
    """One aggregate in the Dream.OS shape."""

    value: float | None = Field(description="The aggregate of the call durations (ms); a count for COUNT.")
    aggregation: str
    sample_count: int = Field(description="Stored calls the value was computed from.")
    unit: str
    calls: float = Field(description="Calls made (stored calls scaled by 1 / sample rate).")
    errors: float
    error_rate: float
    time_range: dict[str, str | None]


class CollectMetricsResult(BaseModel):
    """`collect_metrics`: one aggregate per function."""

    status: str
    aggregation: str
    time_range: dict[str, str | None]
    metrics: dict[str, MetricValue] = Field(description="Keyed by '<function>.duration_ms' (or '.calls' for COUNT).")


class PerformanceResult(BaseModel):
    """`analyze_performance`: latency, errors and throughput, overall and per time bucket."""

    function: str | None
    time_range: dict[str, str | None]
    step_seconds: float
    summary: dict[str, Any] = Field(description="calls, errors, error_rate, throughput_per_s, mean/p50/p95/p99/max_ms")
    buckets: list[dict[str, Any]] = Field(description="Per bucket: start, calls, errors, error_rate, p50/p95/p99_ms")
    functions: list[dict[str, Any]] = Field(description="Every function over the range, busiest first")
    top_errors: list[dict[str, Any]]
    insights: list[str]


class UserBehaviorResult(BaseModel):
    """`analyze_user_behavior`: journeys and, when steps are given, a funnel."""

    by: str
    journeys: dict[str, Any] | None = Field(description="sessions, paths, transitions, exits")
    funnel: dict[str, Any] | None = Field(description="entered, completed, steps with count/conversion/dropped")
    biggest_drop_off: dict[str, Any] | None
    insights: list[str]


class RealtimeStatsResult(BaseModel):
    """`get_realtime_stats`: what is happening now."""

    at: str
    window_seconds: float
    throughput: dict[str, Any] = Field(description="calls, errors and calls per second in the recent window")
    active_sessions: int = Field(description="Distinct sessions with a call in the recent window")
    storage: dict[str, Any] = Field(description="path, bytes, stored calls, oldest and newest call")
    queue: dict[str, Any] | None = Field(description="The receiver's queue (from its /health), when one is known")
    receiver: dict[str, Any] | None


class FeatureAdoptionResult(BaseModel):
    """`analyze_feature_adoption`: share of sessions or users using each function per period, with a trend."""

    by: str
    period: str
    time_range: dict[str, str | None]
    active: int
    features: list[dict[str, Any]] = Field(description="function, users, share, per_period, trend (with how decided)")
    trending_up: list[str]
    trending_down: list[str]


def _metrics(source: Source, names: Sequence[str] | None, time_range: TimeRange, aggregation: str) -> dict[str, Any]:
    scope = source.scope(time_range, functions=tuple(names) if names else None)
    rows = source.reader.aggregate(scope, "function").rows
    result: dict[str, Any] = {}
    for row in rows:
        name, stored, calls, errors = row.key, row.kept, row.calls, row.errors
        if aggregation == "COUNT":
            key, value, unit = f"{name}.calls", float(calls), "calls"
        else:
            key, unit = f"{name}.duration_ms", "ms"
            figures = {"MEAN": row.mean, "SUM": row.duration_sum, "MIN": row.duration_min, "MAX": row.duration_max}
            figures.update({"P50": row.p50, "P95": row.p95, "P99": row.p99})
            value = figures[aggregation] / 1e6
        result[key] = MetricValue(
            value=value,
            aggregation=aggregation,
            sample_count=stored,
            unit=unit,
            calls=calls,
            errors=errors,
            error_rate=errors / calls if calls else 0.0,
            time_range=time_range.as_dict(),
        )
    return result


def _storage(source: Source) -> dict[str, Any]:
    stored = source.reader.stored_spans(calls_only=True)
    oldest, newest = source.reader.edge(Scope()), source.reader.edge(Scope(), last=True)
    path = source.path
    return {
        "path": str(path) if path else source.reader.location,
        "engine": source.reader.engine,
        "bytes": storage_bytes(path) if path else None,
        "stored_calls": stored,
        "oldest": iso(oldest) if oldest is not None else None,
        "newest": iso(newest) if newest is not None else None,
    }


#: One attempt; redirects are followed, as a browser would.
_NO_RETRY = urllib3.Retry(total=None, connect=0, read=0, status=0, other=0, redirect=3)


def _receiver_health(url: str, api_key: str | None) -> Any:
    """The receiver's `/health` answer, or what kept it from answering."""
    headers = {"X-API-Key": api_key} if api_key else {}
    try:
        response = urllib3.request("GET", url.rstrip("/") + "/health", headers=headers, timeout=2.0, retries=_NO_RETRY)
        if response.status >= 400:
            return {"status": f"HTTP {response.status}"}
        return orjson.loads(response.data)
    except (urllib3.exceptions.HTTPError, ValueError) as exc:
        return {"status": "unreachable", "error": f"{type(exc).__name__}: {exc}"}


def build_server(
    store: str | Path | Location | None = None, receiver_url: str | None = None, receiver_api_key: str | None = None
) -> Any:
    """An MCP server (`mcp.server.mcpserver.MCPServer`) answering from the store at `store`."""
    from mcp.server.mcpserver import MCPServer

    class StrictServer(MCPServer):  # type: ignore[misc]
        """Refuses a tool call naming an argument the tool does not take (pydantic would drop it)."""

        async def call_tool(self, name: str, arguments: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            schema = next((tool.input_schema for tool in await self.list_tools() if tool.name == name), None)
            if schema is not None:
                known = set(schema.get("properties", {}))
                unknown = sorted(set(arguments or {}) - known)
                if unknown:
                    raise ToolError(
                        f"Error executing tool {name}: unknown argument {unknown[0]!r}"
                        f" (it takes {', '.join(sorted(known)) or 'no arguments'})"
                    )
            return await super().call_tool(name, arguments, *args, **kwargs)

    location = Location.of(store)
    path = location.path or Path()
    server = StrictServer("sdk-telemetry", instructions=INSTRUCTIONS, version=__version__)

    @contextmanager
    def opened() -> Iterator[Source]:
        """The store, read-only; what keeps a question from being answered is a tool error saying why."""
        try:
            with location.open() as source:
                yield source
        except FileNotFoundError:
            raise ToolError(f"no telemetry store at {location}: nothing has been recorded yet") from None
        except MissingExtra as exc:
            raise ToolError(str(exc)) from None
        except (StoreError, AnalyticsError) as exc:
            raise ToolError(str(exc)) from None
        except sqlite3.DatabaseError as exc:
            raise ToolError(unreadable(path, exc)) from None

    @server.tool(
        description="Aggregate call durations per function over a time range, in the Dream.OS metrics shape "
        "(value, aggregation, sample_count, time_range)."
    )
    def collect_metrics(
        functions: Annotated[
            list[str] | None, Field(description="Function names such as 'Tools.execute'; default: all.")
        ] = None,
        aggregation: Annotated[Aggregation, Field(description="How to aggregate durations (COUNT counts calls).")] = (
            "MEAN"
        ),
        since: Since = None,
        until: Until = None,
    ) -> CollectMetricsResult:
        time_range = _range(since, until)
        with opened() as source:
            source.require_recorded(functions or [])
            metrics = _metrics(source, functions, time_range, aggregation)
        return CollectMetricsResult(
            status="success", aggregation=aggregation, time_range=time_range.as_dict(), metrics=metrics
        )

    @server.tool(
        description="Latency percentiles (p50/p95/p99), error rate and throughput of one function (or all) "
        "over time, with the slowest functions and the top errors."
    )
    def analyze_performance(
        function: Annotated[str | None, Field(description="A function name; default: all calls together.")] = None,
        since: Since = None,
        until: Until = None,
        step: Annotated[str | None, Field(description="Bucket width such as '1m' or '1h'; default: ~60 buckets.")] = (
            None
        ),
    ) -> PerformanceResult:
        time_range = _range(since, until)
        try:
            step_seconds = parse_duration(step, "step") if step else None
        except AnalyticsError as exc:
            raise ToolError(str(exc)) from None
        with opened() as source:
            result = performance(source, function, time_range, step_seconds)
            table = function_table(source, time_range)
            errors = top_errors(source, time_range)
        insights = []
        ranked = [row for row in table if row["p95_ms"] is not None]
        if ranked:
            slowest = max(ranked, key=lambda row: row["p95_ms"])
            insights.append(f"slowest by p95: {slowest['function']} at {slowest['p95_ms']:.1f} ms")
        failing = [row for row in table if row["errors"]]
        if failing:
            worst = max(failing, key=lambda row: row["error_rate"])
            insights.append(f"highest error rate: {worst['function']} at {worst['error_rate']:.1%}")
        if errors:
            insights.append(f"commonest error: {errors[0]['type']} in {errors[0]['function']} ({errors[0]['count']:g})")
        data = json_ready(result.as_dict())
        return PerformanceResult(**data, functions=json_ready(table), top_errors=json_ready(errors), insights=insights)

    @server.tool(
        description="User behaviour through sessions: the commonest journeys (paths, transitions, exits) and, "
        "given ordered steps, a conversion funnel with drop-off per step."
    )
    def analyze_user_behavior(
        steps: Annotated[
            list[str] | None,
            Field(description="Ordered funnel steps (function or event names); omit for journeys only."),
        ] = None,
        window: Annotated[str, Field(description="Funnel window from the first step, such as '30m' or '1d'.")] = "1h",
        by: By = "session",
        since: Since = None,
        until: Until = None,
        max_steps: Annotated[int, Field(ge=1, le=20, description="Journey paths are cut at this many steps.")] = 5,
        limit: Annotated[int, Field(ge=1, le=100, description="How many paths, transitions and exits.")] = 10,
        last: Annotated[
            str | None,
            Field(description="Journeys of the range's last stretch only, such as '7d' (faster over long ranges)."),
        ] = None,
    ) -> UserBehaviorResult:
        time_range = _range(since, until)
        try:
            with opened() as source:
                stretch = parse_duration(last, "last") if last is not None else None
                paths = journeys(source, by, time_range, max_steps, limit, last=stretch).as_dict()
                flow = (
                    funnel(source, steps, parse_duration(window, "window"), by, time_range).as_dict() if steps else None
                )
        except AnalyticsError as exc:
            raise ToolError(str(exc)) from None
        insights = []
        if paths["paths"]:
            top = paths["paths"][0]
            insights.append(f"commonest path ({top['count']} of {paths['sessions']}): {' → '.join(top['path'])}")
        drop = None
        if flow:
            later = flow["steps"][1:]
            if later:
                drop = max(later, key=lambda step: step["dropped"])
                insights.append(
                    f"biggest drop-off before {drop['step']}: {drop['dropped']} lost "
                    f"({1 - drop['from_previous']:.0%} of the previous step)"
                )
            insights.append(f"{flow['completed']} of {flow['entered']} completed the funnel")
        return UserBehaviorResult(
            by=by, journeys=json_ready(paths), funnel=json_ready(flow), biggest_drop_off=drop, insights=insights
        )

    @server.tool(
        description="What is happening now: recent throughput and errors, active sessions, storage use and, "
        "when the receiver is known, its queue."
    )
    def get_realtime_stats(
        window: Annotated[str, Field(description="How far back 'recent' goes, such as '1m' or '15m'.")] = "5m",
    ) -> RealtimeStatsResult:
        try:
            seconds = parse_duration(window, "window")
        except AnalyticsError as exc:
            raise ToolError(str(exc)) from None
        now = time.time()
        recent = TimeRange.last(seconds, now)
        with opened() as source:
            figures = source.reader.aggregate(source.scope(recent)).rows
            stored = figures[0].kept if figures else 0
            calls = figures[0].calls if figures else 0.0
            errors = figures[0].errors if figures else 0.0
            active = source.reader.active_actors(source.scope(recent), "session")
            storage = _storage(source)
        health = None
        if receiver_url:
            health = _receiver_health(receiver_url, receiver_api_key)
        queue = None
        if isinstance(health, dict):  # the receiver's backlog is its queue
            found = health.get("queue") or health.get("receiver")
            queue = found if isinstance(found, dict) else None
        return RealtimeStatsResult(
            at=iso(int(now * NS)),
            window_seconds=seconds,
            throughput={
                "calls": calls,
                "stored_calls": stored,
                "errors": errors,
                "error_rate": errors / calls if calls else 0.0,
                "calls_per_s": calls / seconds,
            },
            active_sessions=active,
            storage=storage,
            queue=queue,
            receiver=health,
        )

    @server.tool(
        description="Feature adoption: the share of sessions (or users) using each function per period, "
        "with a trend (up, down, stable) and how the trend was decided."
    )
    def analyze_feature_adoption(
        by: By = "session",
        period: Annotated[str, Field(description="'hour', 'day', 'week' or a duration such as '6h'.")] = "day",
        since: Since = None,
        until: Until = None,
        functions: Annotated[list[str] | None, Field(description="Only these functions; default: all.")] = None,
        threshold: Annotated[
            float, Field(gt=0, lt=1, description="Fitted change in share that counts as a trend (0.05 = 5 points).")
        ] = 0.05,
    ) -> FeatureAdoptionResult:
        time_range = _range(since, until)
        try:
            with opened() as source:
                source.require_recorded(functions or [])
                result = json_ready(adoption(source, by, period, time_range, functions, threshold).as_dict())
        except AnalyticsError as exc:
            raise ToolError(str(exc)) from None
        features = result["features"]
        return FeatureAdoptionResult(
            **result,
            trending_up=[f["function"] for f in features if f["trend"]["direction"] == "up"],
            trending_down=[f["function"] for f in features if f["trend"]["direction"] == "down"],
        )

    return server


class RequireApiKey:
    """An ASGI app that answers 401 to an HTTP request without one of `keys` (`X-API-Key` or
    `Authorization: Bearer`, compared in constant time with every key) and passes the rest to `app`."""

    def __init__(self, app: Any, keys: Sequence[str]) -> None:
        self.app = app
        self.keys = tuple(key.encode() for key in keys)

    def accepted(self, headers: Sequence[tuple[bytes, bytes]]) -> bool:
        """True when `headers` (ASGI, lower-case names) carry an accepted key."""
        found = dict(headers)
        supplied = found.get(b"x-api-key")
        if supplied is None:
            scheme, _, token = found.get(b"authorization", b"").partition(b" ")
            supplied = token.strip() if scheme.lower() == b"bearer" else b""
        matched = False
        for key in self.keys:
            matched |= hmac.compare_digest(supplied, key)
        return bool(supplied) and matched

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or self.accepted(scope.get("headers", ())):
            await self.app(scope, receive, send)
            return
        message = "an API key is required (X-API-Key or Authorization: Bearer)"
        body = orjson.dumps({"error": {"code": "UNAUTHORIZED", "message": message}})
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")],
            }
        )
        await send({"type": "http.response.body", "body": body})


def http_app(server: Any, api_keys: Sequence[str], host: str = "127.0.0.1") -> Any:
    """The streamable-HTTP ASGI app of `server` (path `/mcp`), behind `api_keys` unless there are none."""
    app = server.streamable_http_app(host=host)
    return RequireApiKey(app, api_keys) if api_keys else app


def serve(
    store: str | Path | Location | None = None,
    transport: str = "stdio",
    host: str = "127.0.0.1",
    port: int = 8765,
    receiver_url: str | None = None,
    receiver_api_key: str | None = None,
    api_keys: Sequence[str] = (),
    insecure_no_auth: bool = False,
) -> None:
    """Run the MCP server until its client goes away (stdio) or it is interrupted (streamable HTTP).

    Over streamable HTTP every request needs one of `api_keys` (the receiver's keys); only on a
    loopback `host` may `insecure_no_auth` serve without. Raises ValueError otherwise.
    """
    if transport not in ("stdio", "streamable-http"):
        raise ValueError(f"transport: expected 'stdio' or 'streamable-http', got {transport!r}")
    if transport == "streamable-http" and not api_keys:
        if not insecure_no_auth:
            raise ValueError(
                "streamable-http needs an API key (--api-key / SDK_TELEMETRY_SERVE_API_KEYS), "
                "or --insecure-no-auth on a loopback --host"
            )
        if not is_loopback(host):
            raise ValueError(f"--insecure-no-auth is for a loopback --host only (127.0.0.1, ::1), not {host!r}")
    server = build_server(store, receiver_url, receiver_api_key)
    if transport == "stdio":
        server.run("stdio")
        return
    import uvicorn

    uvicorn.run(http_app(server, api_keys, host), host=host, port=port, log_level="warning")


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m sdk_telemetry.cli.mcp_server [--store PATH] [--transport stdio|streamable-http] ...`."""
    parser = argparse.ArgumentParser(prog="sdk-telemetry mcp", description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=None, help="the store file (default: the configured one)")
    parser.add_argument(
        "--clickhouse",
        default=os.environ.get("SDK_TELEMETRY_CLICKHOUSE_URL") or None,
        help="read ClickHouse (a server URL or chdb:PATH) instead of the store",
    )
    parser.add_argument("--transport", choices=("stdio", "streamable-http"), default="stdio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--receiver", default=None, help="base URL of a running receiver, for its queue figures")
    parser.add_argument("--receiver-api-key", default=None, help="API key for the receiver's /health")
    parser.add_argument(
        "--api-key", action="append", default=[], help="a key streamable-http accepts (repeat; or the variable)"
    )
    parser.add_argument("--insecure-no-auth", action="store_true", help="streamable-http without a key (loopback)")
    options = parser.parse_args(argv)
    keys = tuple(options.api_key) or tuple(parse_list(os.environ.get("SDK_TELEMETRY_SERVE_API_KEYS", "")))
    try:
        serve(
            Location.of(options.store, options.clickhouse),
            options.transport,
            options.host,
            options.port,
            options.receiver,
            options.receiver_api_key,
            keys,
            options.insecure_no_auth,
        )
    except ValueError as exc:
        parser.exit(2, f"sdk-telemetry mcp: {exc}\n")


__all__ = ["RequireApiKey", "build_server", "http_app", "main", "serve"]

if __name__ == "__main__":
    main()
