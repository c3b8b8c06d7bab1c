"""HTTP child spans: a request that `requests`, `httpx` or `httpx2` sends inside an instrumented call
becomes a CLIENT span under the call's span, and nothing changes for requests sent outside one
(`spans`: whether a request is inside a call and what its span records; `transports`: the
libraries' wrapped transports, patched at their import and restored at shutdown)."""

from sdk_telemetry.http.spans import HTTP_SCOPE
from sdk_telemetry.http.transports import instrument_http

__all__ = ["HTTP_SCOPE", "instrument_http"]
