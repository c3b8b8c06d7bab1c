"""Optional rows: what Logfire's and Sentry's own instrumentation cost per call, next to an SDK span.

    python bench/peers.py [--rounds 9]

Each peer runs in a fresh process (each installs global tracing of its own), when it can be
imported (`pip install logfire sentry-sdk`; neither is a dependency of sdk-telemetry). In that
process a bare call, the raw OTel SDK span (start_as_current_span + the SDK's BatchSpanProcessor,
discarding exporter) and the peer's instrumented call are timed in interleaved rounds; the row
gives the peer's overhead and its ratio to the SDK span's overhead measured beside it. Nothing
is sent anywhere: Logfire is configured with send_to_logfire=False and a discarding processor,
Sentry with a transport that drops every envelope.
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing
import statistics
import time
from collections.abc import Callable
from typing import Any

PEERS = {"logfire": "Logfire @logfire.instrument", "sentry_sdk": "Sentry @sentry_sdk.trace in a transaction"}


def bare() -> None:
    return None


def _time(fn: Callable[[], Any], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def _sdk_span() -> Callable[[], None]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Discard(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=1_000_000))
    tracer = provider.get_tracer("bench")

    def sdk_span() -> None:
        with tracer.start_as_current_span("bench.sync"):
            return bare()

    return sdk_span


def _logfire() -> Callable[[], None]:
    import logfire
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Discard(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    logfire.configure(
        send_to_logfire=False,
        console=False,
        additional_span_processors=[BatchSpanProcessor(Discard(), max_queue_size=1_000_000)],
        inspect_arguments=False,
    )
    return logfire.instrument("bench.sync")(bare)  # type: ignore[no-any-return]


def _sentry() -> Callable[[], None]:
    import sentry_sdk
    from sentry_sdk.transport import Transport

    class Drop(Transport):
        def capture_envelope(self, envelope: Any) -> None:
            pass

    sentry_sdk.init(dsn="http://key@127.0.0.1:9/1", traces_sample_rate=1.0, transport=Drop)
    traced = sentry_sdk.trace(bare)
    state: dict[str, Any] = {"transaction": None, "spans": 0}

    def call() -> None:
        # A transaction per 500 calls (Sentry keeps at most 1,000 spans in one): its cost is shared out.
        if state["spans"] % 500 == 0:
            if state["transaction"] is not None:
                state["transaction"].__exit__(None, None, None)
            state["transaction"] = sentry_sdk.start_transaction(name="bench", op="bench")
            state["transaction"].__enter__()
        state["spans"] += 1
        traced()

    return call


def run_peer(peer: str, rounds: int, results: Any) -> None:
    """In a fresh process: bare, SDK span and the peer, interleaved; medians in µs per call."""
    try:
        peer_call = _logfire() if peer == "logfire" else _sentry()
        cases = {"bare": bare, "sdk": _sdk_span(), "peer": peer_call}
        n = 20_000
        for fn in cases.values():
            _time(fn, 2_000)  # warm-up
        samples: dict[str, list[float]] = {name: [] for name in cases}
        for round_index in range(rounds):
            names = list(cases)
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name].append(_time(cases[name], n))
        results.put({name: statistics.median(values) for name, values in samples.items()})
    except Exception as exc:
        results.put({"error": f"{type(exc).__name__}: {exc}"})


def peer_rows(rounds: int) -> dict[str, dict[str, Any]]:
    """{peer: {"bare", "sdk", "peer"} µs per call, or {"error"}}; a peer that is not installed is left out."""
    context = multiprocessing.get_context("spawn")
    found: dict[str, dict[str, Any]] = {}
    for peer in PEERS:
        if importlib.util.find_spec(peer) is None:
            continue
        results = context.Queue()
        process = context.Process(target=run_peer, args=(peer, rounds, results))
        process.start()
        found[peer] = results.get(timeout=600)
        process.join(60)
    return found


def report(found: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Print the part; each peer's ratio to the SDK span."""
    print("Part 4 — peers' own instrumentation (optional rows; each in its own process, beside an SDK span)")
    print()
    ratios: dict[str, float] = {}
    if not found:
        print("  neither logfire nor sentry-sdk is installed: `pip install logfire sentry-sdk` adds these rows")
    for peer, row in found.items():
        if "error" in row:
            print(f"  {PEERS[peer]:48} could not run: {row['error']}")
            continue
        overhead = row["peer"] - row["bare"]
        sdk = row["sdk"] - row["bare"]
        ratios[peer] = overhead / sdk
        print(
            f"  {PEERS[peer]:48} {overhead:7.2f} µs/call added   x OTel span {ratios[peer]:5.2f}"
            f"   (SDK span beside it: {sdk:.2f} µs)"
        )
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    report(peer_rows(args.rounds))


if __name__ == "__main__":
    main()
