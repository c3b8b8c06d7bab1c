"""How fast `sdk-telemetry serve` ingests over HTTP: Composio-style batches of 100 invocations.

    python bench/ingest.py [--events 200000] [--batch 100] [--connections 16] [--format composio|otlp]

Starts the receiver in a subprocess (a fresh store in a temporary directory, an API key),
sends pre-built request bodies over keep-alive connections from client threads, and counts
events per second from the first request to the last answer (every answer must be 200), then
checks the store holds every event once. Goal (issue 5): >= 50,000 events/s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import http.client
import os
import queue
import random
import resource
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson

API_KEY = "bench-key"


def composio_bodies(events: int, batch: int) -> list[bytes]:
    rng = random.Random(1)
    now = time.time()
    bodies = []
    for start in range(0, events, batch):
        items = []
        for i in range(start, min(events, start + batch)):
            item = {
                "functionName": f"Client.method_{i % 20}",
                "durationMs": rng.lognormvariate(1, 1),
                "timestamp": now - (events - i) / 1000,
                "source": {"service": "sdk", "language": "python", "version": "1.0.0", "environment": "production"},
                "metadata": {"projectId": "bench", "eventId": f"{i + 1:032x}{i + 1:016x}"},
            }
            if i % 50 == 0:
                item["error"] = {"name": "TimeoutError", "message": "timed out", "errorId": f"e{i}"}
            items.append(item)
        bodies.append(orjson.dumps(items))
    return bodies


def otlp_bodies(events: int, batch: int) -> list[bytes]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    now = time.time_ns()
    bodies = []
    for start in range(0, events, batch):
        request = ExportTraceServiceRequest()
        resource_spans = request.resource_spans.add()
        kv = resource_spans.resource.attributes.add()
        kv.key, kv.value.string_value = "service.name", "bench"
        scope_spans = resource_spans.scope_spans.add()
        scope_spans.scope.name = "sdk_telemetry"
        for i in range(start, min(events, start + batch)):
            span = scope_spans.spans.add()
            span.trace_id = (i + 1).to_bytes(16, "big")
            span.span_id = (i + 1).to_bytes(8, "big")
            span.name = f"Client.method_{i % 20}"
            span.kind = 1
            span.start_time_unix_nano = now - (events - i) * 1_000_000
            span.end_time_unix_nano = span.start_time_unix_nano + 1_000_000 + i % 1000
        bodies.append(request.SerializeToString())
    return bodies


def start_server(store: Path) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "sdk_telemetry", "serve", "--port", "0", "--store", str(store), "--api-key", API_KEY],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    port = int(line.rsplit(":", 1)[1].split()[0])
    process.stdout.readline()
    return process, port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--dir", type=Path, default=None, help="where the store file goes (default: a temporary directory)"
    )
    parser.add_argument("--format", choices=("composio", "otlp"), default="composio")
    args = parser.parse_args()
    if args.format == "composio":
        bodies, path, content_type = (
            composio_bodies(args.events, args.batch),
            "/v1/metrics/invocations",
            "application/json",
        )
    else:
        bodies, path, content_type = otlp_bodies(args.events, args.batch), "/v1/traces", "application/x-protobuf"
    directory = Path(tempfile.mkdtemp(prefix="sdk-telemetry-ingest-", dir=args.dir))
    store = directory / "telemetry.sqlite3"
    process, port = start_server(store)
    work: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    for body in bodies:
        work.put(body)
    for _ in range(args.connections):
        work.put(None)
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    headers = {"Content-Type": content_type, "X-API-Key": API_KEY}

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.connect()
        # http.client sends headers and body in two writes: without this, Nagle's algorithm and
        # delayed ACKs add 40 ms to every request.
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while (body := work.get()) is not None:
            while True:
                connection.request("POST", path, body, headers)
                response = connection.getresponse()
                response.read()
                with lock:
                    statuses[response.status] = statuses.get(response.status, 0) + 1
                if response.status == 200:
                    break
                time.sleep(float(response.getheader("Retry-After", "0.1")))
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(args.connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    process.terminate()
    process.wait(30)
    server_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = resource.getrusage(resource.RUSAGE_SELF)
    (stored,) = sqlite3.connect(store).execute("SELECT COUNT(*) FROM otel_traces").fetchone()
    rate = args.events / elapsed
    print(
        f"{args.format}: {args.events:,} events in {len(bodies):,} requests of {args.batch} over "
        f"{args.connections} connections: {elapsed:.2f} s, {rate:,.0f} events/s, "
        f"{len(bodies) / elapsed:,.0f} requests/s; answers {statuses}; stored {stored:,} rows"
    )
    print(
        f"CPU seconds: receiver {server_cpu.ru_utime + server_cpu.ru_stime:.1f} "
        f"(user {server_cpu.ru_utime:.1f}, system {server_cpu.ru_stime:.1f}), "
        f"this client {client_cpu.ru_utime + client_cpu.ru_stime:.1f}"
    )
    print(f"machine: {os.cpu_count()} CPUs; goal >= 50,000 events/s: {'met' if rate >= 50_000 else 'NOT met'}")
    for file in directory.iterdir():
        file.unlink()
    directory.rmdir()
    return 0 if stored == args.events else 1


if __name__ == "__main__":
    sys.exit(main())
