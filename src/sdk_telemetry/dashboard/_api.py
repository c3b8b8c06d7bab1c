"""The analytics HTTP API: Starlette routes answering JSON (and CSV or Parquet exports) from the analyses.

    GET /api/v1/analytics/performance?function=Tools.execute&since=1h&step=1m
    GET /api/v1/analytics/functions?since=24h
    GET /api/v1/analytics/errors?since=24h&limit=10
    GET /api/v1/analytics/funnel?steps=Client.login,Tools.list,Tools.execute&window=30m&by=session
    GET /api/v1/analytics/journeys?by=session&max_steps=5&limit=10
    GET /api/v1/analytics/retention?by=user&period=week&periods=8
    GET /api/v1/analytics/adoption?by=session&period=day
    GET /api/v1/analytics/export?kind=calls|events|aggregates&format=csv|parquet&since=...&until=...
    GET /api/v1/alerts

Bad parameters get 400 with `{"error": {"code": "INVALID_QUERY", "message": ...}}`; no store yet
gets 404 `NO_STORE`.
"""

from __future__ import annotations

import hmac
import io
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
from sdk_telemetry_exporters.config import parse_list
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sdk_telemetry.analytics import (
    AnalyticsError,
    Source,
    TimeRange,
    adoption,
    export,
    functions,
    funnel,
    journeys,
    open_source,
    parse_duration,
    performance,
    retention,
    top_errors,
)

Handler = Callable[[Request], Awaitable[Response]]
Snapshot = Callable[[], dict[str, Any] | None]


class ORJSONResponse(JSONResponse):
    """JSON through orjson (dataclasses, non-ASCII text)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=str)


def error(status: int, code: str, message: str) -> Response:
    """The API's error body."""
    return ORJSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def authorized(request: Request, keys: Sequence[str] | None) -> bool:
    """True when no keys are required, or the request carries one (`X-API-Key` or `Authorization: Bearer`)."""
    if not keys:
        return True
    given = request.headers.get("x-api-key") or ""
    bearer = request.headers.get("authorization") or ""
    if bearer.lower().startswith("bearer "):
        given = given or bearer[7:].strip()
    found = False
    for key in keys:  # compare with every key, in constant time, whatever matches
        found |= hmac.compare_digest(given.encode(), key.encode())
    return found


class Query:
    """Typed access to query parameters; a bad value raises `AnalyticsError` naming the parameter."""

    def __init__(self, request: Request) -> None:
        self.params = request.query_params

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.params.get(name)
        return value if value not in (None, "") else default

    def names(self, name: str) -> list[str] | None:
        value = self.text(name)
        return list(parse_list(value)) or None

    def integer(self, name: str, default: int, low: int = 1, high: int = 1000) -> int:
        value = self.text(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise AnalyticsError(f"{name}: expected a whole number, got {value!r}") from None
        if not low <= number <= high:
            raise AnalyticsError(f"{name}: must be between {low} and {high}, got {number}")
        return number

    def number(self, name: str, default: float) -> float:
        value = self.text(name)
        if value is None:
            return default
        try:
            return float(value)
        except ValueError:
            raise AnalyticsError(f"{name}: expected a number, got {value!r}") from None

    def seconds(self, name: str, default: float | None) -> float | None:
        value = self.text(name)
        return parse_duration(value, name) if value is not None else default

    def time_range(self) -> TimeRange:
        return TimeRange.parse(self.text("since"), self.text("until"))


def _answer(store: Path, keys: Sequence[str] | None, compute: Callable[[Source, Query], Any]) -> Handler:
    async def handler(request: Request) -> Response:
        if not authorized(request, keys):
            return error(401, "UNAUTHORIZED", "an API key is required (X-API-Key or Authorization: Bearer)")
        query = Query(request)

        def run() -> Any:
            with open_source(store) as source:
                return compute(source, query)

        try:
            result = await run_in_threadpool(run)
        except AnalyticsError as exc:
            return error(400, "INVALID_QUERY", str(exc))
        except FileNotFoundError:
            return error(404, "NO_STORE", f"no telemetry store at {store}: nothing has been recorded yet")
        if isinstance(result, Response):
            return result
        return ORJSONResponse(result.as_dict() if hasattr(result, "as_dict") else result)

    return handler


def _export(source: Source, query: Query) -> Response:
    kind = query.text("kind", "calls") or "calls"
    fmt = query.text("format", "csv") or "csv"
    out: io.BytesIO | io.StringIO = io.BytesIO() if fmt == "parquet" else io.StringIO()
    export(source, out, kind, fmt, query.time_range(), query.text("function"), query.seconds("step", None))
    disposition = {"Content-Disposition": f'attachment; filename="sdk-telemetry-{kind}.{fmt}"'}
    media = "application/vnd.apache.parquet" if fmt == "parquet" else "text/csv; charset=utf-8"
    return Response(out.getvalue(), media_type=media, headers=disposition)


def _funnel(source: Source, query: Query) -> Any:
    steps = query.names("steps")
    if not steps:
        raise AnalyticsError("steps: give the funnel's steps, comma-separated, such as steps=Client.login,Tools.list")
    window = query.seconds("window", 3600.0) or 3600.0
    return funnel(source, steps, window, query.text("by", "session") or "session", query.time_range())


def routes(store: str | Path, alerts: Snapshot | None = None, api_keys: Sequence[str] | None = None) -> list[BaseRoute]:
    """The analytics API's routes over the store at `store`; `alerts` returns the monitors' state."""
    path = Path(store)
    by = "by"

    def perf(source: Source, q: Query) -> Any:
        return performance(source, q.text("function"), q.time_range(), q.seconds("step", None), q.text("service"))

    handlers: dict[str, Callable[[Source, Query], Any]] = {
        "performance": perf,
        "functions": lambda s, q: {"functions": functions(s, q.time_range(), q.integer("limit", 50))},
        "errors": lambda s, q: {"errors": top_errors(s, q.time_range(), q.integer("limit", 10))},
        "funnel": _funnel,
        "journeys": lambda s, q: journeys(
            s, q.text(by, "session") or "session", q.time_range(), q.integer("max_steps", 5, 1, 50),
            q.integer("limit", 10),
        ),
        "retention": lambda s, q: retention(
            s, q.text(by, "user") or "user", q.text("period", "day") or "day", q.integer("periods", 8, 1, 366),
            q.time_range(),
        ),
        "adoption": lambda s, q: adoption(
            s, q.text(by, "session") or "session", q.text("period", "day") or "day", q.time_range(),
            q.names("functions"), q.number("threshold", 0.05),
        ),
        "export": _export,
    }  # fmt: skip
    result: list[BaseRoute] = [
        Route(f"/api/v1/analytics/{name}", _answer(path, api_keys, compute), methods=["GET"])
        for name, compute in handlers.items()
    ]

    async def alert_state(request: Request) -> Response:
        if not authorized(request, api_keys):
            return error(401, "UNAUTHORIZED", "an API key is required (X-API-Key or Authorization: Bearer)")
        snapshot = alerts() if alerts else None
        return ORJSONResponse(snapshot or {"alerts": [], "running": False, "source": None})

    result.append(Route("/api/v1/alerts", alert_state, methods=["GET"]))
    return result
