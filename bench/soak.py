"""Soak: a steady load of instrumented calls against a flaky server, for minutes; then count.

    python bench/soak.py                  # 3 minutes
    python bench/soak.py --duration 60    # one minute

The server runs in another process and misbehaves on purpose: 503s, 500 bursts, 429 with
Retry-After, connection resets before and after it took the batch, slow answers, 413 for big
batches, and an outage (the port refuses connections) of a few seconds every so often. The
client makes calls from several threads (some fail) through `configure_telemetry(exporter=
"composio")` with the disk spool on. At the end it waits for the spool to drain and prints:
events sent, received (distinct ids), lost, duplicated, the client's counters, and its memory
growth (RSS after warm-up to the end).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import random
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
for _name in list(os.environ):
    if _name.startswith(("SDK_TELEMETRY_", "OTEL_")) or _name in ("TELEMETRY_DISABLED", "DO_NOT_TRACK"):
        del os.environ[_name]


def serve(conn: Connection, seed: int, harshness: float) -> None:
    """The flaky server: answers commands `down`, `up`, `report`, `stop` from the parent."""
    from tests.faults import OK, Fault, FaultServer

    rng = random.Random(seed)
    lock = threading.Lock()

    # Cumulative thresholds of each fault, scaled by `harshness` (1: about 8 % of requests misbehave).
    faults = [
        (0.03, Fault(503)),
        (0.01, Fault(500)),
        (0.005, Fault(429, headers={"Retry-After": "1"})),
        (0.005, Fault(reset="request")),
        (0.005, Fault(reset="response")),
        (0.02, Fault(delay=0.3)),
    ]

    def decide(request: Any, ids: list[str]) -> Fault:
        with lock:
            roll = rng.random()
        if len(ids) > 60:
            return Fault(413)
        threshold = 0.0
        for share, fault in faults:
            threshold += share * harshness
            if roll < threshold:
                return fault
        return OK

    server = FaultServer(decide=decide)
    server.up()
    conn.send(server.url)
    while True:
        command = conn.recv()
        if command == "down":
            server.down()
        elif command == "up":
            server.up()
        elif command == "report":
            conn.send({"distinct": len(server.accepted_ids()), "duplicates": server.duplicates()})
        elif command == "stop":
            server.__exit__()
            conn.send("stopped")
            return


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of load (default 180)")
    parser.add_argument("--rate", type=float, default=400.0, help="calls per second, all threads (default 400)")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--outage-every", type=float, default=20.0, help="seconds between outages (default 20)")
    parser.add_argument("--outage", type=float, default=3.0, help="seconds each outage lasts (default 3)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--harshness", type=float, default=1.0, help="scale of the fault rates (default 1: ~8 %%)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="sdk-telemetry-soak-"))
    os.environ["SDK_TELEMETRY_STORE"] = str(workdir / "telemetry.sqlite3")
    os.environ["SDK_TELEMETRY_SPOOL_DIR"] = str(workdir / "spool")
    parent, child = multiprocessing.Pipe()
    context = multiprocessing.get_context("spawn")
    process = context.Process(target=serve, args=(child, args.seed, args.harshness), daemon=True)
    process.start()
    url = parent.recv()

    from sdk_telemetry import configure_telemetry, instrument

    class Failure(Exception):
        pass

    class Client:
        def call(self, n: int) -> int:
            return n

        def fail(self, n: int) -> None:
            raise Failure(f"call {n} failed")

    telemetry = configure_telemetry(exporter="composio", endpoint=url, batch_interval=0.2, timeout=2.0)
    instrument(Client)
    sent = [0] * args.threads
    stop = threading.Event()
    per_thread = args.rate / args.threads

    def load(index: int) -> None:
        client = Client()
        rng = random.Random(index)
        next_at = time.monotonic()
        while not stop.is_set():
            if rng.random() < 0.05:
                with contextlib.suppress(Failure):
                    client.fail(sent[index])
            else:
                client.call(sent[index])
            sent[index] += 1
            next_at += 1.0 / per_thread
            pause = next_at - time.monotonic()
            if pause > 0:
                time.sleep(pause)

    threads = [threading.Thread(target=load, args=(index,), daemon=True) for index in range(args.threads)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(min(10.0, args.duration / 6))
    rss_start = rss_kib()
    outages = 0
    next_outage = time.monotonic() + args.outage_every
    rss_series = [rss_start]
    next_sample = time.monotonic() + 10
    while time.monotonic() - started < args.duration:
        if time.monotonic() >= next_sample:
            rss_series.append(rss_kib())
            next_sample += 10
        if time.monotonic() >= next_outage:
            parent.send("down")
            time.sleep(args.outage)
            parent.send("up")
            outages += 1
            next_outage = time.monotonic() + args.outage_every
        time.sleep(0.1)
    stop.set()
    for thread in threads:
        thread.join()
    load_seconds = time.monotonic() - started
    rss_end = rss_kib()
    total = sum(sent)

    telemetry.flush(timeout=30)
    drain_started = time.monotonic()
    report: dict[str, Any] = {}
    while time.monotonic() - drain_started < 60:
        parent.send("report")
        report = parent.recv()
        if report["distinct"] >= total:
            break
        time.sleep(0.5)
    drained_in = time.monotonic() - drain_started
    exit_started = time.monotonic()
    telemetry.shutdown(timeout=2.0)
    exit_took = time.monotonic() - exit_started
    parent.send("report")
    report = parent.recv()
    parent.send("stop")
    parent.recv()

    stats = telemetry.stats()
    entry = stats["exporters"]["composio"]
    exporter = entry["exporter"]
    result = {
        "seconds": round(load_seconds, 1),
        "rate": args.rate,
        "harshness": args.harshness,
        "outages": outages,
        "sent": total,
        "received": report["distinct"],
        "lost": total - report["distinct"],
        "duplicated": report["duplicates"],
        "counted_drops": sum(entry["dropped"].values()) + sum(exporter["dropped"].values()),
        "drops_by_reason": {**entry["dropped"], **exporter["dropped"]},
        "retried_requests": exporter["retried"],
        "retried_items": exporter["retried_items"],
        "splits": exporter["splits"],
        "spooled": exporter["spooled"],
        "resent": exporter["resent"],
        "requests": exporter["requests"],
        "drain_after_load_s": round(drained_in, 2),
        "exit_s": round(exit_took, 3),
        "rss_start_mib": round(rss_start / 1024, 1),
        "rss_end_mib": round(rss_end / 1024, 1),
        "rss_growth_mib": round((rss_end - rss_start) / 1024, 1),
        "rss_every_10s_mib": [round(value / 1024, 1) for value in rss_series],
    }
    print(json.dumps(result, indent=2))
    print(
        f"sent {total}, received {report['distinct']}, lost {result['lost']}, duplicated {report['duplicates']}, "
        f"memory growth {result['rss_growth_mib']} MiB over {load_seconds:.0f}s"
    )
    from sdk_telemetry.pipeline.health import health_summary

    print(health_summary(stats))


if __name__ == "__main__":
    main()
