"""The disk spool across processes of `sdk_telemetry`: what a killed process spooled, the next one delivers.

The spool on its own (shared senders, bounds, corruption) is tested in `exporters/tests/test_spool.py`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from sdk_telemetry_exporters import WireBatch

from exporters.tests.helpers.faults import FaultServer
from tests.helpers.processes import child_env, run_python

SPOOLING_CHILD = """
import sys, time
from sdk_telemetry import configure_telemetry, instrument

class Client:
    def call(self, n):
        return n

telemetry = configure_telemetry(exporter="composio", endpoint={url!r}, batch_interval=0.02, batch_size=5, timeout=0.2)
instrument(Client)
client = Client()
n = 0
while True:  # spool during the outage until killed
    for _ in range(5):
        client.call(n)
        n += 1
    telemetry.flush(timeout=5)
    print(telemetry.stats()["exporters"]["composio"]["exporter"]["spooled"], flush=True)
"""

SENDING_CHILD = """
from sdk_telemetry import configure_telemetry, instrument

class Client:
    def call(self, n):
        return n

telemetry = configure_telemetry(exporter="composio", endpoint={url!r}, batch_interval=0.02)
instrument(Client)
Client().call(-1)
telemetry.flush(timeout=20)
print(telemetry.stats()["exporters"]["composio"]["exporter"]["resent"], flush=True)
"""


def spooled_ids(directory: Path) -> set[str]:
    """Event ids in the pending spool files (whole files only: what the spool promises to resend)."""
    ids: set[str] = set()
    for path in directory.rglob("*.batch"):
        batch = WireBatch.from_record(path.read_bytes())
        ids.update(item["metadata"]["eventId"] for item in batch.items)
    return ids


def test_kill_9_during_an_outage_then_a_new_process_delivers_every_spooled_event(tmp_path):
    spool_dir = tmp_path / "spool"
    server = FaultServer()
    server.up()
    url = server.url
    server.down()  # the outage
    env = child_env(SDK_TELEMETRY_SPOOL_DIR=str(spool_dir), SDK_TELEMETRY_RETRY_BASE="0.01")
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SPOOLING_CHILD.format(url=url))],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    reported = 0
    deadline = time.monotonic() + 20
    while reported < 60 and time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            break
        reported = int(line)
    os.kill(child.pid, signal.SIGKILL)  # in the middle of spooling
    child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    assert reported >= 60, f"the child reported only {reported} spooled events; stderr: {child.stderr.read()[-2000:]}"

    on_disk = spooled_ids(spool_dir)
    assert len(on_disk) >= reported, f"{reported} reported spooled, {len(on_disk)} on disk"
    try:
        server.up()
        result = run_python(SENDING_CHILD.format(url=url), env=env, timeout=60)
        assert result.returncode == 0, result.stderr[-3000:]
        missing = server.wait_for_ids(on_disk, timeout=10)
    finally:
        server.__exit__()
    assert not missing, f"{len(missing)} of {len(on_disk)} spooled events never arrived"
    assert int(result.stdout.split()[-1]) == len(on_disk)
    assert server.duplicates() == 0
    assert spooled_ids(spool_dir) == set()
