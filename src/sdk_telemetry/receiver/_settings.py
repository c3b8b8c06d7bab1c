"""The receiver's settings: built by `sdk-telemetry serve` from its options (each with its
environment variable), or passed to `create_app()` directly."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sdk_telemetry.config import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_KEEP_ALIVE_TIMEOUT,
    DEFAULT_KEYLESS_BURST,
    DEFAULT_KEYLESS_RATE,
    DEFAULT_MAX_BACKLOG_ROWS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_INFLIGHT_BYTES,
    DEFAULT_RETENTION_INTERVAL,
)
from sdk_telemetry.store import DEFAULT_RETENTION_DAYS, DEFAULT_ROLLUP_DAYS, Tier


@dataclass(frozen=True)
class ReceiverSettings:
    """What `sdk-telemetry serve` was started with."""

    store_path: Path
    #: Accepted API keys (X-API-Key or Authorization: Bearer); empty requires `insecure_no_auth`.
    api_keys: tuple[str, ...] = ()
    insecure_no_auth: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_backlog_rows: int = DEFAULT_MAX_BACKLOG_ROWS
    retention_days: float = DEFAULT_RETENTION_DAYS
    retention_interval: float = DEFAULT_RETENTION_INTERVAL
    #: Days each rollup tier is kept (0: forever).
    retention_hourly_days: float = DEFAULT_ROLLUP_DAYS["hour"]
    retention_daily_days: float = DEFAULT_ROLLUP_DAYS["day"]
    retention_weekly_days: float = DEFAULT_ROLLUP_DAYS["week"]
    retention_monthly_days: float = DEFAULT_ROLLUP_DAYS["month"]
    #: Store the client's address (truncated to /24 for IPv4, /48 for IPv6) as `client.address`.
    store_client_ip: bool = False
    #: A ClickHouse server (clickhouse-connect DSN, e.g. http://user:pass@host:8123/db) that gets a
    #: copy of every span, event and metric value newly stored, in the Collector's tables.
    clickhouse_url: str | None = None
    #: Seconds a client is asked to wait (Retry-After) when the store cannot keep up.
    retry_after: int = 1
    #: Accept requests without a key on the Composio routes (`/v1/metrics/invocations`,
    #: `/v1/errors`) only, as the real Composio clients send none; every other route keeps its key.
    composio_keyless: bool = False
    #: Keyless requests per second per client address (IPv6: per /64), and the burst allowed.
    keyless_rate: float = DEFAULT_KEYLESS_RATE
    keyless_burst: int = DEFAULT_KEYLESS_BURST
    #: Connections and requests served at once (uvicorn answers 503 beyond).
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    #: Seconds for a request's headers to arrive; for an idle keep-alive connection.
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    keep_alive_timeout: float = DEFAULT_KEEP_ALIVE_TIMEOUT
    #: Seconds a request body may stall between two reads (408 beyond).
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    #: Bytes of request bodies held at once, across requests (wire and decompressed); 503 with
    #: Retry-After beyond, so memory stays bounded whatever the number of clients.
    max_inflight_bytes: int = DEFAULT_MAX_INFLIGHT_BYTES

    def __post_init__(self) -> None:
        if not self.api_keys and not self.insecure_no_auth:
            raise ValueError(
                "the receiver needs an API key (--api-key / SDK_TELEMETRY_SERVE_API_KEYS) or --insecure-no-auth"
            )
        if any(not key for key in self.api_keys):
            raise ValueError("an API key must not be empty")
        if self.max_body_bytes <= 0:
            raise ValueError(f"max_body_bytes must be positive, got {self.max_body_bytes}")
        if self.max_backlog_rows <= 0:
            raise ValueError(f"max_backlog_rows must be positive, got {self.max_backlog_rows}")
        if not 0 < self.keyless_rate < float("inf"):
            raise ValueError(f"keyless_rate must be a positive number, got {self.keyless_rate}")
        if self.keyless_burst < 1:
            raise ValueError(f"keyless_burst must be at least 1, got {self.keyless_burst}")
        for name in ("max_connections", "max_inflight_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("header_timeout", "keep_alive_timeout", "body_timeout"):
            if not 0 < getattr(self, name) < float("inf"):
                raise ValueError(f"{name} must be a positive number of seconds, got {getattr(self, name)}")
        if self.max_inflight_bytes < self.max_body_bytes:
            raise ValueError("max_inflight_bytes must be at least max_body_bytes (one largest body must fit)")
        for name in (
            "retention_hourly_days",
            "retention_daily_days",
            "retention_weekly_days",
            "retention_monthly_days",
        ):
            if not getattr(self, name) < float("inf"):  # also NaN
                raise ValueError(f"{name} must be a number of days (0: forever), got {getattr(self, name)}")
        if self.retention_interval <= 0:
            raise ValueError(f"retention_interval must be positive, got {self.retention_interval}")

    @property
    def rollup_days(self) -> dict[Tier, float]:
        """Days each rollup tier is kept, by tier."""
        return {
            "hour": self.retention_hourly_days,
            "day": self.retention_daily_days,
            "week": self.retention_weekly_days,
            "month": self.retention_monthly_days,
        }
