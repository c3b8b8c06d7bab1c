"""Bytes held per queued invocation: sdk-telemetry against an SDK span in the SDK's BatchSpanProcessor.

    python bench/memory.py [--calls 10000]

Each side runs in a fresh process: N calls are made while the batching stage cannot export
(batch size and interval larger than the run), so every span is held in memory; tracemalloc's
traced bytes after the calls minus before, divided by N, is the cost of one waiting span
(everything it holds that is its own: the span object, its ids, its attributes, its context).
Goal 3 of issue 7: sdk-telemetry at most 0.25x the SDK span.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import sys
import tempfile
import tracemalloc
from typing import Any

HELD = 1_000_000  # batch size, queue size and interval large enough that nothing leaves the queue


class Client:
    def execute(self, tool: str) -> str:
        return tool


def _measure(make_calls: Any, calls: int) -> float:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    make_calls(calls)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / calls


def ours(calls: int, results: Any) -> None:
    """In a fresh process: sdk-telemetry's production path with a discarding exporter that never gets to run."""
    for name in list(os.environ):
        if name.startswith(("OTEL_", "SDK_TELEMETRY_")):
            del os.environ[name]
    import sdk_telemetry

    store = os.path.join(tempfile.mkdtemp(prefix="sdk-telemetry-bench-"), "bench.sqlite3")
    telemetry = sdk_telemetry.configure_telemetry(
        service_name="bench", store_path=store, batch_size=HELD, queue_size=HELD, batch_interval=3600
    )
    sdk_telemetry.instrument(Client)
    client = Client()
    client.execute("warm-up")  # starts the worker, resolves the tracer: not per-call memory

    def make_calls(n: int) -> None:
        for _ in range(n):
            client.execute("search")

    per_call = _measure(make_calls, calls)
    stats = telemetry.stats()["exporters"]["local"]
    held = stats["queue"]
    telemetry.shutdown(timeout=30)
    results.put({"bytes": per_call, "held": held})


def sdk(calls: int, results: Any) -> None:
    """In a fresh process: SDK start_as_current_span into the SDK's BatchSpanProcessor, not exporting."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Discard(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider(shutdown_on_exit=False)
    processor = BatchSpanProcessor(
        Discard(), max_queue_size=HELD, max_export_batch_size=HELD, schedule_delay_millis=3_600_000
    )
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("bench")
    client = Client()

    def make_calls(n: int) -> None:
        for _ in range(n):
            with tracer.start_as_current_span(
                "Client.execute", attributes={"code.function.name": "__main__.Client.execute"}
            ):
                client.execute("search")

    make_calls(1)
    per_call = _measure(make_calls, calls)
    queue = getattr(getattr(processor, "_batch_processor", None), "_queue", None)
    results.put({"bytes": per_call, "held": len(queue) - 1 if queue is not None else calls})


def bytes_per_queued(calls: int) -> dict[str, dict[str, float]]:
    """{"ours": {...}, "sdk": {...}}: bytes per held span and how many spans were held at the end."""
    context = multiprocessing.get_context("spawn")
    found: dict[str, dict[str, float]] = {}
    for name, target in (("ours", ours), ("sdk", sdk)):
        results = context.Queue()
        process = context.Process(target=target, args=(calls, results))
        process.start()
        found[name] = results.get(timeout=300)
        process.join(60)
    return found


def report(found: dict[str, dict[str, float]], calls: int) -> float:
    """Print the part; the ratio ours / SDK."""
    ratio = found["ours"]["bytes"] / found["sdk"]["bytes"]
    print(f"Part 3 — memory held per queued invocation ({calls:,} calls held, tracemalloc, fresh process each)")
    print()
    print(f"  {'OTel SDK span in the SDK BatchSpanProcessor':58} {found['sdk']['bytes']:8.0f} bytes")
    print(f"  {'sdk-telemetry invocation (CallSpan, staged or queued)':58} {found['ours']['bytes']:8.0f} bytes")
    print(
        f"  ratio: {ratio:.2f}x   (held at the end: SDK {found['sdk']['held']:,.0f}, ours {found['ours']['held']:,.0f})"
    )
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    args = parser.parse_args()
    report(bytes_per_queued(args.calls), args.calls)


if __name__ == "__main__":
    sys.exit(main())
