"""The dashboard: one self-contained web page (no CDN, nothing fetched from elsewhere) and the JSON it reads.

`routes()` gives the Starlette routes of the page; `mount()` adds to a receiver app everything this
part offers — the page, the analytics HTTP API (`/api/v1/analytics/...`), the alert state
(`/api/v1/alerts`) — and runs the monitors with the app's lifespan. The page and `mount()` live in
`_app`, the analytics HTTP API in `_api`, the page's JSON in `_data`. Needs the `server` extra.
"""

from sdk_telemetry.dashboard._app import Mounted, mount, routes

__all__ = ["Mounted", "mount", "routes"]
