"""The disk spool: shared by senders without double sends, bounded by size and age, corruption-proof."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
from helpers.faults import Fault, FaultServer
from sdk_telemetry_exporters import ComposioSpanExporter, ExporterSettings, Spool, WireBatch


def test_senders_sharing_a_spool_never_send_a_batch_twice(tmp_path):
    """Four exporters (as four processes would) resend one spool at once; claims by rename keep them apart."""
    with FaultServer(then=Fault(delay=0.02)) as server:
        settings = ExporterSettings(endpoint=server.url, spool_dir=tmp_path / "spool")
        exporters = [ComposioSpanExporter(settings=settings) for _ in range(4)]
        assert len({exporter.spool_directory for exporter in exporters}) == 1
        deliver_shared_spool(server, exporters, Spool(Path(str(exporters[0].spool_directory))))


def deliver_shared_spool(server: FaultServer, exporters: list[ComposioSpanExporter], spool: Spool) -> None:
    expected = set()
    for batch_number in range(40):
        items = []
        for index in range(5):
            event = f"{batch_number:024x}{index:024x}"
            expected.add(event)
            items.append({"functionName": "A.b", "metadata": {"eventId": event}})
        assert spool.put(WireBatch("/metrics/invocations", tuple(items)))

    start = threading.Barrier(len(exporters))

    def resend(exporter: ComposioSpanExporter) -> None:
        start.wait(10)
        exporter.resend_spooled(10)

    threads = [threading.Thread(target=resend, args=(exporter,)) for exporter in exporters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    missing = server.wait_for_ids(expected, timeout=5)
    assert not missing
    assert server.duplicates() == 0, f"{server.duplicates()} events sent twice by exporters sharing the spool"
    resent = [exporter.stats()["resent"] for exporter in exporters]
    assert sum(resent) == 200, resent
    assert sum(1 for count in resent if count) >= 2, f"one exporter did everything: {resent}"


def test_a_corrupt_or_truncated_spool_file_is_set_aside_and_counted(tmp_path):
    server = FaultServer()
    server.up()
    exporter = ComposioSpanExporter(settings=ExporterSettings(endpoint=server.url, spool_dir=tmp_path / "spool"))
    directory = Path(str(exporter.spool_directory))
    spool = Spool(directory)
    good = {"functionName": "A.b", "metadata": {"eventId": "a" * 48}}
    assert spool.put(WireBatch("/metrics/invocations", (good,)))
    record = WireBatch("/metrics/invocations", (good,)).to_record()
    names = [f"{time.time_ns() - 10**9 + n:020d}-1-deadbeef" for n in range(3)]  # older than the good one
    (directory / f"{names[0]}.batch").write_bytes(record[: len(record) // 2])  # truncated
    (directory / f"{names[1]}.batch").write_bytes(b"\x00\xffnot json")
    (directory / f"{names[2]}.batch").write_bytes(orjson.dumps({"format": 99}))

    try:
        assert exporter.resend_spooled(5) == 1
        assert server.accepted_ids() == {"a" * 48}
    finally:
        server.__exit__()
    stats = exporter.stats()
    assert stats["spool_corrupt"] == 3, stats
    assert stats["spool_pending"] == 0
    assert sorted(path.name for path in (directory / "corrupt").iterdir()) == names


def test_the_spool_is_bounded_by_size_and_by_age(tmp_path):
    directory = tmp_path / "spool"
    item = {"functionName": "A.b", "metadata": {"eventId": "b" * 48}, "props": {"x": "y" * 400}}
    size = len(WireBatch("/metrics/invocations", (item, item), created=time.time()).to_record())
    spool = Spool(directory, max_bytes=3 * size + 10)
    results = [spool.put(WireBatch("/metrics/invocations", (item, item))) for _ in range(6)]
    assert results.count(True) == 3 and results[3:] == [False] * 3, results
    assert spool.stats()["dropped_spool_full"] == 6

    old = Spool(directory, max_bytes=10**6, max_age=3600)
    stale = directory / f"{(time.time_ns() - 7200 * 10**9):020d}-1-cafebabe.batch"
    stale.write_bytes(WireBatch("/metrics/invocations", (item,) * 4).to_record())
    claims = []
    while (claim := old.claim()) is not None:
        claims.append(claim)
    assert len(claims) == 3, "the three fresh batches are still sent"
    assert old.stats()["dropped_spool_expired"] == 4
    assert not stale.exists()


def test_a_claim_left_by_a_killed_process_is_given_back(tmp_path):
    directory = tmp_path / "spool"
    spool = Spool(directory)
    assert spool.put(WireBatch("/errors", ({"functionName": "A.b", "metadata": {"eventId": "c" * 48}},), single=True))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    [pending] = list(directory.glob("*.batch"))
    pending.rename(pending.with_name(f"{pending.stem}.{dead_pid}.claim"))  # as if claimed, then kill -9
    claim = Spool(directory).claim()
    assert claim is not None and claim.batch.single and claim.batch.items[0]["metadata"]["eventId"] == "c" * 48


def test_spooling_can_be_switched_off(tmp_path, monkeypatch):
    monkeypatch.setenv("SDK_TELEMETRY_SPOOL", "false")
    monkeypatch.setenv("SDK_TELEMETRY_ENDPOINT", "http://127.0.0.1:9")
    exporter = ComposioSpanExporter()
    assert exporter.spool_directory is None
    monkeypatch.setenv("SDK_TELEMETRY_SPOOL", "true")
    monkeypatch.setenv("SDK_TELEMETRY_STORE", str(tmp_path / "data" / "t.sqlite3"))
    directory = str(ComposioSpanExporter().spool_directory)
    assert Path(directory).parent == tmp_path / "data" / "spool"
    assert Path(directory).name.startswith("composio-")
    assert ComposioSpanExporter().spool_directory == directory, "the same endpoint and headers: the same spool"
    monkeypatch.setenv("SDK_TELEMETRY_API_KEY", "another-key")
    assert ComposioSpanExporter().spool_directory != directory, "another API key has its own spool"
    monkeypatch.setenv("SDK_TELEMETRY_ENDPOINT", "http://127.0.0.1:10")
    assert ComposioSpanExporter().spool_directory != directory, "each endpoint has its own spool"
