"""ClickHouse as the OpenTelemetry Collector's exporter writes it: its tables (`schema`), rows
written into them with content-derived deduplication tokens (`writer`), the `run(sql, params)`
functions over a clickhouse-connect client or a chDB session (`connection`), the questions the
SQLite store answers, asked of ClickHouse (`queries.ClickHouseStore`), the store interface on those
tables (`reader.ClickHouseReader`, its column expressions in `expressions`), the rollups as
materialized views (`rollups`), and opening all of it by URL (`urls`: a server or `chdb:PATH`).

The SQL runs on a ClickHouse server through `clickhouse-connect` (extra `clickhouse`) or on the
embedded engine chDB (extra `chdb`).
"""

from sdk_telemetry.store.clickhouse.connection import Runner, chdb_runner, client_runner
from sdk_telemetry.store.clickhouse.queries import ClickHouseStore
from sdk_telemetry.store.clickhouse.schema import DEDUPLICATION_WINDOW, TABLES, create_tables
from sdk_telemetry.store.clickhouse.writer import (
    deduplication_token,
    log_rows_as_json_each_row,
    metric_rows_as_json_each_row,
    trace_rows_as_json_each_row,
)

__all__ = [
    "DEDUPLICATION_WINDOW",
    "TABLES",
    "ClickHouseStore",
    "Runner",
    "chdb_runner",
    "client_runner",
    "create_tables",
    "deduplication_token",
    "log_rows_as_json_each_row",
    "metric_rows_as_json_each_row",
    "trace_rows_as_json_each_row",
]
