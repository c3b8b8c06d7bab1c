"""What the dashboard adds to a Starlette app: the page's routes, and `mount()` for the page, the
analytics HTTP API, the alert state and the monitors running with the app's lifespan."""

from __future__ import annotations

import html
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
from sdk_telemetry_exporters.config import parse_list
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from sdk_telemetry.analytics import AnalyticsError, Location, parse_duration
from sdk_telemetry.dashboard import _api
from sdk_telemetry.dashboard._data import DEFAULT_RANGE, RANGES, overview
from sdk_telemetry.monitors import Evaluator, MonitorConfig, MonitorRunner, load_config

PREFIX = "/dashboard"


@lru_cache(maxsize=1)
def _template() -> str:
    """index.html with the stylesheet and script inlined: one response, no further request."""
    static = resources.files("sdk_telemetry.dashboard") / "static"
    page = (static / "index.html").read_text(encoding="utf-8")
    page = page.replace("/*STYLE*/", (static / "dashboard.css").read_text(encoding="utf-8"))
    return page.replace("/*SCRIPT*/", (static / "dashboard.js").read_text(encoding="utf-8"))


def _inline_json(value: Any) -> str:
    """JSON safe inside a <script> element."""
    return orjson.dumps(value, default=str).decode().replace("<", "\\u003c").replace(">", "\\u003e")


def _payload(store: Location, request: Request, alerts: _api.Snapshot | None) -> dict[str, Any]:
    params = request.query_params
    steps = list(parse_list(params.get("steps"))) or None
    window = parse_duration(params.get("window") or "1h", "window")
    snapshot = alerts() if alerts else None
    if not store.exists():
        return {
            "empty": True,
            "store": str(store),
            "engine": "clickhouse" if store.clickhouse else "sqlite",
            "alerts": snapshot,
            "range": params.get("range") or DEFAULT_RANGE,
            "ranges": list(RANGES),
        }
    service, environment = params.get("service") or None, params.get("environment") or None
    with store.open(service, environment) as source:
        return overview(
            source, params.get("range") or DEFAULT_RANGE, params.get("function") or None, steps, window, snapshot
        )


def routes(
    store: str | Path | Location,
    alerts: _api.Snapshot | None = None,
    api_keys: Sequence[str] | None = None,
    prefix: str = PREFIX,
) -> list[BaseRoute]:
    """The page (`{prefix}/`) and its JSON (`{prefix}/api/overview`) over the store at `store`.

    With `api_keys`, the JSON needs a key and the page carries no data: it asks for the key (kept in
    the browser's local storage) and fetches with it.
    """
    path = Location.of(store)

    async def page(request: Request) -> Response:
        started = time.perf_counter()
        initial: Any = None
        if not api_keys:
            try:
                initial = await run_in_threadpool(_payload, path, request, alerts)
            except AnalyticsError as exc:
                initial = {"error": str(exc), "ranges": list(RANGES)}
        body = _template().replace("/*INITIAL*/null", _inline_json(initial))
        body = body.replace("{{API}}", html.escape(f"{prefix}/api/overview"))
        body = body.replace("{{ANALYTICS}}", html.escape(_api.PREFIX))
        elapsed = f"total;dur={(time.perf_counter() - started) * 1000:.1f}"
        return HTMLResponse(body, headers={"Cache-Control": "no-store", "Server-Timing": elapsed})

    async def data(request: Request) -> Response:
        denied = _api.refused(request, api_keys)
        if denied is not None:
            return denied
        try:
            payload = await run_in_threadpool(_payload, path, request, alerts)
        except AnalyticsError as exc:
            return _api.error(400, "INVALID_QUERY", str(exc))
        return _api.ORJSONResponse(payload, headers={"Cache-Control": "no-store"})

    async def redirect(request: Request) -> Response:
        return RedirectResponse(f"{prefix}/", status_code=307)

    return [
        Route(f"{prefix}/", page, methods=["GET"]),
        Route(prefix, redirect, methods=["GET"]),
        Route(f"{prefix}/api/overview", data, methods=["GET"]),
    ]


@dataclass
class Mounted:
    """What `mount()` added: the monitors runner (None without a rules file)."""

    runner: MonitorRunner | None


def mount(
    app: Starlette,
    store: str | Path | Location,
    monitors: str | Path | MonitorConfig | None = None,
    api_keys: Sequence[str] | None = None,
) -> Mounted:
    """Add the dashboard (and `GET /` leading to it), the analytics API and `/api/v1/alerts` to `app`,
    and evaluate the monitors of the rules file `monitors` (or an already loaded `MonitorConfig`) in
    the background while the app runs.

    Raises `MonitorConfigError` (naming the bad rule) before anything starts when the file is wrong.
    """
    path = Location.of(store)
    config = monitors if isinstance(monitors, MonitorConfig) or monitors is None else load_config(monitors)
    runner = MonitorRunner(Evaluator(config, path)) if config is not None else None
    snapshot: _api.Snapshot | None = runner.snapshot if runner else None
    app.router.routes.extend(_api.routes(path, snapshot, api_keys))
    app.router.routes.extend(routes(path, snapshot, api_keys))
    if not any(getattr(route, "path", None) == "/" for route in app.router.routes):

        async def home(request: Request) -> Response:
            return RedirectResponse(f"{PREFIX}/", status_code=307)

        app.router.routes.append(Route("/", home, methods=["GET"]))
    if runner is not None:
        previous = app.router.lifespan_context

        @asynccontextmanager
        async def lifespan(application: Any) -> AsyncIterator[Any]:
            runner.start()
            try:
                async with previous(application) as state:
                    yield state
            finally:
                await run_in_threadpool(runner.stop)

        app.router.lifespan_context = lifespan
    return Mounted(runner)
