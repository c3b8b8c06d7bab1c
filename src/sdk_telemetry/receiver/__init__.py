"""`sdk-telemetry serve`: the receiver (needs the `server` extra: Starlette and uvicorn).

`create_app` builds the ASGI app from `ReceiverSettings`; `uvicorn_config` serves it within the
settings' connection limits and timeouts.
"""

from sdk_telemetry.receiver._app import create_app, truncate_ip
from sdk_telemetry.receiver._server import uvicorn_config
from sdk_telemetry.receiver._settings import ReceiverSettings

__all__ = ["ReceiverSettings", "create_app", "truncate_ip", "uvicorn_config"]
