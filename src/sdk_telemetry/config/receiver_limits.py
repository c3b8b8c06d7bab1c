"""The receiver's default limits, here rather than in `receiver/` so that the `sdk-telemetry serve`
options can show them without the `server` extra installed."""

#: The OTLP/HTTP recommendation: 20 MiB, measured after decompression.
DEFAULT_MAX_BODY_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_BACKLOG_ROWS = 100_000
DEFAULT_RETENTION_INTERVAL = 3600.0
#: Connections (and requests) at once; headers within 10 s; idle keep-alive closed after 5 s;
#: a body that stalls 30 s is dropped; bodies held at once at most 256 MiB.
DEFAULT_MAX_CONNECTIONS = 1000
DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_KEEP_ALIVE_TIMEOUT = 5.0
DEFAULT_BODY_TIMEOUT = 30.0
DEFAULT_MAX_INFLIGHT_BYTES = 256 * 1024 * 1024
#: Keyless Composio ingest: requests per second per client address, and the burst allowed.
DEFAULT_KEYLESS_RATE = 20.0
DEFAULT_KEYLESS_BURST = 200
