"""The analytics HTTP API: Starlette routes answering JSON (and CSV or Parquet exports) from the analyses.

    GET /api/v1/analytics/performance?function=Tools.execute&since=1h&step=1m
    GET /api/v1/analytics/functions?since=24h
    GET /api/v1/analytics/errors?since=24h&limit=10
    GET /api/v1/analytics/funnel?steps=Client.login,Tools.list,Tools.execute&window=30m&by=session
    GET /api/v1/analytics/journeys?by=session&max_steps=5&limit=10&last=7d
    GET /api/v1/analytics/retention?by=user&period=week&periods=8
    GET /api/v1/analytics/adoption?by=session&period=day
    GET /api/v1/analytics/export?kind=calls|events|aggregates&format=csv|parquet&since=...&until=...
    GET /api/v1/analytics/calls?function=Tools.execute&session=...&errors=true&limit=50
    GET /api/v1/analytics/traces/{trace_id}
    GET /api/v1/analytics/errors/occurrences?type=ToolTimeout&function=Tools.execute&limit=20
    GET /api/v1/analytics/sessions?since=24h&limit=50
    GET /api/v1/analytics/sessions/{session_id}
    GET /api/v1/analytics/tail?after=CURSOR&limit=100
    GET /api/v1/analytics/dimensions
    GET /api/v1/alerts

Every analysis takes `service=` and `environment=` to read one service's or environment's data.
Bad parameters get 400 with `{"error": {"code": "INVALID_QUERY", "message": ...}}`; no store yet
gets 404 `NO_STORE`, an unknown trace or session 404 `NOT_FOUND`; a missing key 401 `UNAUTHORIZED`,
a key that is not accepted 401 `INVALID_API_KEY`.
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
    Location,
    NotFound,
    Source,
    TimeRange,
    adoption,
    error_occurrences,
    export,
    functions,
    funnel,
    journeys,
    parse_duration,
    performance,
    recent_calls,
    retention,
    session_timeline,
    sessions,
    tail,
    top_errors,
    trace,
)

PREFIX = "/api/v1/analytics"
Handler = Callable[[Request], Awaitable[Response]]
Snapshot = Callable[[], dict[str, Any] | None]


class ORJSONResponse(JSONResponse):
    """JSON through orjson (dataclasses, non-ASCII text)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=str)


def error(status: int, code: str, message: str) -> Response:
    """The API's error body."""
    return ORJSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _given_key(request: Request) -> str:
    given = request.headers.get("x-api-key") or ""
    bearer = request.headers.get("authorization") or ""
    if bearer.lower().startswith("bearer "):
        given = given or bearer[7:].strip()
    return given


def authorized(request: Request, keys: Sequence[str] | None) -> bool:
    """True when no keys are required, or the request carries one (`X-API-Key` or `Authorization: Bearer`)."""
    if not keys:
        return True
    given = _given_key(request)
    found = False
    for key in keys:  # compare with every key, in constant time, whatever matches
        found |= hmac.compare_digest(given.encode(), key.encode())
    return found


def refused(request: Request, keys: Sequence[str] | None) -> Response | None:
    """The 401 answer when the request may not read (no key, or a key that is not accepted), else None."""
    if authorized(request, keys):
        return None
    if not _given_key(request):
        return error(401, "UNAUTHORIZED", "an API key is required (X-API-Key or Authorization: Bearer)")
    return error(401, "INVALID_API_KEY", "the API key is not accepted: check it against the server's --api-key")


class Query:
    """Typed access to query parameters; a bad value raises `AnalyticsError` naming the parameter."""

    def __init__(self, request: Request) -> None:
        self.params = request.query_params
        self.path = request.path_params

    def flag(self, name: str) -> bool:
        value = (self.text(name) or "false").lower()
        if value not in ("true", "false", "1", "0", "yes", "no"):
            raise AnalyticsError(f"{name}: expected true or false, got {value!r}")
        return value in ("true", "1", "yes")

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


def _answer(store: Location, keys: Sequence[str] | None, compute: Callable[[Source, Query], Any]) -> Handler:
    async def handler(request: Request) -> Response:
        denied = refused(request, keys)
        if denied is not None:
            return denied
        query = Query(request)

        def run() -> Any:
            with store.open(query.text("service"), query.text("environment")) as source:
                return compute(source, query)

        try:
            result = await run_in_threadpool(run)
        except NotFound as exc:
            return error(404, "NOT_FOUND", str(exc))
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


def _journeys(source: Source, query: Query) -> Any:
    by = query.text("by", "session") or "session"
    max_steps, limit = query.integer("max_steps", 5, 1, 50), query.integer("limit", 10)
    return journeys(source, by, query.time_range(), max_steps, limit, last=query.seconds("last", None))


def routes(
    store: str | Path | Location, alerts: Snapshot | None = None, api_keys: Sequence[str] | None = None
) -> list[BaseRoute]:
    """The analytics API's routes over the store at `store`; `alerts` returns the monitors' state."""
    path = Location.of(store)
    by = "by"

    def perf(source: Source, q: Query) -> Any:
        return performance(source, q.text("function"), q.time_range(), q.seconds("step", None))

    handlers: dict[str, Callable[[Source, Query], Any]] = {
        "performance": perf,
        "functions": lambda s, q: {"functions": functions(s, q.time_range(), q.integer("limit", 50))},
        "errors": lambda s, q: {"errors": top_errors(s, q.time_range(), q.integer("limit", 10))},
        "funnel": _funnel,
        "journeys": _journeys,
        "retention": lambda s, q: retention(
            s, q.text(by, "user") or "user", q.text("period", "day") or "day", q.integer("periods", 8, 1, 366),
            q.time_range(),
        ),
        "adoption": lambda s, q: adoption(
            s, q.text(by, "session") or "session", q.text("period", "day") or "day", q.time_range(),
            q.names("functions"), q.number("threshold", 0.05),
        ),
        "export": _export,
        "calls": lambda s, q: {"calls": recent_calls(
            s, q.text("function"), q.time_range(), q.integer("limit", 50), q.text("session"), q.flag("errors"),
        )},
        "traces/{trace_id}": lambda s, q: trace(s, str(q.path["trace_id"])),
        "errors/occurrences": lambda s, q: {"occurrences": error_occurrences(
            s, q.text("type") or "", q.text("function"), q.time_range(), q.integer("limit", 20),
        )},
        "sessions": lambda s, q: {"sessions": sessions(s, q.time_range(), q.integer("limit", 50))},
        "sessions/{session_id}": lambda s, q: session_timeline(s, str(q.path["session_id"])),
        "tail": lambda s, q: tail(
            s, q.integer("after", 0, 0, 2**63 - 1) if q.text("after") else None, q.integer("limit", 100),
        ),
        "dimensions": lambda s, q: s.dimensions(),
    }  # fmt: skip
    result: list[BaseRoute] = [
        Route(f"{PREFIX}/{name}", _answer(path, api_keys, compute), methods=["GET"])
        for name, compute in handlers.items()
    ]

    async def alert_state(request: Request) -> Response:
        denied = refused(request, api_keys)
        if denied is not None:
            return denied
        snapshot = alerts() if alerts else None
        return ORJSONResponse(snapshot or {"alerts": [], "running": False, "source": None})

    result.append(Route("/api/v1/alerts", alert_state, methods=["GET"]))
    return result
