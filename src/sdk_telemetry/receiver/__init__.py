"""`sdk-telemetry serve`: the receiver (needs the `server` extra: Starlette and uvicorn)."""

from sdk_telemetry.receiver._app import create_app, truncate_ip
from sdk_telemetry.receiver._settings import ReceiverSettings

__all__ = ["ReceiverSettings", "create_app", "truncate_ip"]
