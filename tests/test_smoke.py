"""The quick start's path: configure on the embedded default, instrument, read the stats."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sdk_telemetry import configure_telemetry, instrument
from tests.helpers.processes import ROOT, child_env


class Client:
    def ping(self) -> str:
        return "pong"

    def fail(self) -> None:
        raise ValueError("nope")


def test_calls_land_in_the_local_store_and_stats_reads_them(tmp_path):
    telemetry = configure_telemetry(service_name="smoke")
    instrument(Client)
    client = Client()
    for _ in range(3):
        client.ping()
    with pytest.raises(ValueError):
        client.fail()
    telemetry.shutdown()
    assert telemetry.stats()["exported"] == 4

    out = subprocess.run(
        [sys.executable, "-m", "sdk_telemetry", "stats", "--json"],
        env=child_env(),
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    rows = {row["function"]: row for row in json.loads(out)}
    assert rows["Client.ping"]["calls"] == 3
    assert rows["Client.ping"]["errors"] == 0
    assert rows["Client.fail"]["errors"] == 1
    assert rows["Client.fail"]["error_rate"] == 1.0
