"""A pytest plugin for `bench/host_suite.py`: sdk-telemetry on, and the library under test
instrumented, before the first test of the session; the number of spans recorded, written at the end.

    HOST_SUITE_TARGETS=requests HOST_SUITE_STORE=... HOST_SUITE_REPORT=... pytest -p host_suite_plugin
"""

from __future__ import annotations

import json
import os
import sqlite3
from typing import Any

_telemetry: Any = None


def pytest_configure(config: Any) -> None:
    global _telemetry
    from sdk_telemetry import configure_telemetry, instrument

    _telemetry = configure_telemetry(
        service_name="host-suite", exporter="local", store_path=os.environ["HOST_SUITE_STORE"], batch_interval=0.5
    )
    for target in os.environ["HOST_SUITE_TARGETS"].split(","):
        instrument(target)


def pytest_unconfigure(config: Any) -> None:
    if _telemetry is None:
        return
    _telemetry.flush(timeout=30)
    spans = 0
    if os.path.exists(os.environ["HOST_SUITE_STORE"]):
        connection = sqlite3.connect(os.environ["HOST_SUITE_STORE"])
        try:
            spans = connection.execute("SELECT count(*) FROM otel_traces").fetchone()[0]
        finally:
            connection.close()
    with open(os.environ["HOST_SUITE_REPORT"], "w") as report:
        json.dump({"spans": spans}, report)
