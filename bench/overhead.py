"""What sdk-telemetry costs the application, against the OpenTelemetry SDK in the same run.

    python bench/overhead.py            # a few minutes on a 2-core machine
    python bench/overhead.py --quick    # fewer rounds, for a smoke run

Part 1 times one call of a trivial function, bare and instrumented in several ways, in
interleaved rounds, and prints medians. Part 2 counts the CPU time (all threads of the process)
spent per span exported to a loopback HTTP server that runs in another process. Part 3 measures
the memory held per queued invocation (bench/memory.py); part 4 adds Logfire and Sentry rows
where they are installed (bench/peers.py). The run ends with issue 7's goals, each a ratio from
this run. See bench/README.md for what each row means.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

# Opt-out and OTel variables of the shell must not turn the measured path off or reroute it.
for _name in list(os.environ):
    if _name.startswith(("OTEL_", "SDK_TELEMETRY_")) or _name in ("DO_NOT_TRACK", "TELEMETRY_DISABLED"):
        del os.environ[_name]

import memory  # noqa: E402
import peers  # noqa: E402
import wrapt  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor as SdkBatchSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult  # noqa: E402

# --- shared pieces ------------------------------------------------------------------------------


class CountingExporter(SpanExporter):
    """Counts the spans that `inner` accepted; with no `inner`, discards them (and counts them)."""

    def __init__(self, inner: SpanExporter | None = None, keep: int = 0) -> None:
        self.inner = inner
        self.exported = 0
        self.keep = keep
        self.kept: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = SpanExportResult.SUCCESS if self.inner is None else self.inner.export(spans)
        if result is SpanExportResult.SUCCESS:
            self.exported += len(spans)
        if len(self.kept) < self.keep:
            self.kept.extend(spans[: self.keep - len(self.kept)])
        return result

    def shutdown(self) -> None:
        if self.inner is not None:
            self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def configure_ours(exporter: str, **kwargs: Any) -> tuple[Any, CountingExporter]:
    """`configure_telemetry()` with its production defaults; the exporter is wrapped in a counter.

    With exporter="discard", the setup is the default one (local store) whose exporter is then
    replaced by one that discards: everything up to the exporter is the production path.
    """
    from sdk_telemetry import configure_telemetry

    store = os.path.join(tempfile.mkdtemp(prefix="sdk-telemetry-bench-"), "bench.sqlite3")
    name = "local" if exporter == "discard" else exporter
    telemetry = configure_telemetry(service_name="bench", exporter=name, store_path=store, enabled=True, **kwargs)
    if not telemetry.enabled or len(telemetry.processors) != 1:
        raise SystemExit(f"sdk-telemetry is not set up as expected: {telemetry.stats()}")
    processor = telemetry.processors[0]
    counter = CountingExporter(None if exporter == "discard" else processor.exporter)
    processor.exporter = counter
    return telemetry, counter


# --- part 1: per-call overhead ------------------------------------------------------------------


def bare() -> None:
    return None


async def bare_async() -> None:
    return None


def bare_generator() -> Any:
    yield None


def target_sync() -> None:
    return None


async def target_async() -> None:
    return None


def target_generator() -> Any:
    yield None


def time_sync(fn: Callable[[], Any], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - start


def time_generator(fn: Callable[[], Any], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        for _ in fn():
            pass
    return time.perf_counter() - start


def time_sync_unsampled(fn: Callable[[], Any], n: int) -> float:
    """`time_sync` inside a parent span that is not sampled (say, a request whose traceparent
    says so): every sampler in the parent-based default drops the call's span."""
    from opentelemetry import context, trace

    parent = trace.NonRecordingSpan(
        trace.SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, is_remote=True)
    )
    token = context.attach(trace.set_span_in_context(parent))
    try:
        return time_sync(fn, n)
    finally:
        context.detach(token)


async def _time_async(fn: Callable[[], Any], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await fn()
    return time.perf_counter() - start


class Case:
    """One row of part 1: a callable, how to time it, and the bare baseline it is compared with."""

    def __init__(self, label: str, timer: Callable[[Callable[[], Any], int], float], fn: Callable[[], Any], base: str):
        self.label, self.timer, self.fn, self.base = label, timer, fn, base
        self.n = 0
        self.samples: list[float] = []  # µs per call, one per round


def per_call_overhead(rounds: int, target_seconds: float) -> dict[str, float]:
    import sdk_telemetry

    loop = asyncio.new_event_loop()

    def time_async(fn: Callable[[], Any], n: int) -> float:
        return loop.run_until_complete(_time_async(fn, n))

    telemetry, ours_counter = configure_ours("discard")
    ours_sync = sdk_telemetry.instrument(target_sync, name="bench.sync")
    ours_async = sdk_telemetry.instrument(target_async, name="bench.async")
    ours_generator = sdk_telemetry.instrument(target_generator, name="bench.generator")
    assert sdk_telemetry.is_instrumented(ours_sync), "instrument() did not wrap the function"

    sdk_counter = CountingExporter()
    sdk_provider = TracerProvider(shutdown_on_exit=False)
    sdk_provider.add_span_processor(SdkBatchSpanProcessor(sdk_counter))  # the SDK's defaults
    sdk_tracer = sdk_provider.get_tracer("bench")

    def sdk_span() -> None:
        with sdk_tracer.start_as_current_span("bench.sync"):
            return bare()

    passthrough = wrapt.FunctionWrapper(bare, lambda wrapped, instance, args, kwargs: wrapped(*args, **kwargs))

    cases = [
        Case("bare call", time_sync, bare, "bare call"),
        Case("wrapt passthrough FunctionWrapper", time_sync, passthrough, "bare call"),
        Case("OTel SDK start_as_current_span + SDK BatchSpanProcessor", time_sync, sdk_span, "bare call"),
        Case("sdk-telemetry instrument(), sync call", time_sync, ours_sync, "bare call"),
        Case("OTel SDK span, parent not sampled (sampler drops it)", time_sync_unsampled, sdk_span, "bare call"),
        Case("sdk-telemetry sync call, parent not sampled", time_sync_unsampled, ours_sync, "bare call"),
        Case("bare async call (await)", time_async, bare_async, "bare async call (await)"),
        Case("sdk-telemetry instrument(), async call", time_async, ours_async, "bare async call (await)"),
        Case("bare generator (create + exhaust)", time_generator, bare_generator, "bare generator (create + exhaust)"),
        Case(
            "sdk-telemetry instrument(), generator", time_generator, ours_generator, "bare generator (create + exhaust)"
        ),
    ]
    calls = {"sdk": 0, "ours": 0}

    def settle() -> None:
        """Outside the timed region: drain both batch queues and collect garbage."""
        telemetry.flush(timeout=30)
        sdk_provider.force_flush()
        gc.collect()

    def measure(case: Case) -> float:
        settle()
        elapsed = case.timer(case.fn, case.n)
        if case.timer is time_sync_unsampled:
            pass  # sampled out: no span reaches either exporter
        elif case.fn is sdk_span:
            calls["sdk"] += case.n
        elif case.label.startswith("sdk-telemetry"):
            calls["ours"] += case.n
        return elapsed

    for case in cases:  # calibrate like timeit's autorange (this also warms everything up)
        case.n = 100
        while True:
            elapsed = measure(case)
            if elapsed >= target_seconds / 4:
                break
            case.n *= 2
        case.n = max(100, int(case.n * target_seconds / elapsed))

    started = time.monotonic()
    for round_index in range(rounds):
        shift = round_index % len(cases)  # rotate the order, so no case always runs after the same one
        for case in cases[shift:] + cases[:shift]:
            case.samples.append(measure(case) / case.n * 1e6)
    settle()
    duration = time.monotonic() - started

    medians = {case.label: statistics.median(case.samples) for case in cases}
    sdk_overhead = medians[cases[2].label] - medians["bare call"]
    print(f"Part 1 — per-call cost, median of {rounds} interleaved rounds ({duration:.0f} s; µs per call)")
    print()
    header = f"{'what':58} {'µs/call':>8} {'overhead':>9} {'x OTel span':>12} {'spread (min-max)':>18}"
    print(header)
    print("-" * len(header))
    for case in cases:
        median = medians[case.label]
        if case.base == case.label:
            overhead_text, ratio_text = "-", "-"
        else:
            overhead = median - medians[case.base]
            overhead_text, ratio_text = f"{overhead:9.2f}", f"{overhead / sdk_overhead:12.2f}"
        spread = f"{min(case.samples):.2f}-{max(case.samples):.2f}"
        print(f"{case.label:58} {median:8.2f} {overhead_text:>9} {ratio_text:>12} {spread:>18}")
    print()
    stats = telemetry.stats()
    print("overhead = µs/call minus the bare call of the same kind; x OTel span = overhead / the SDK span's overhead.")
    print(
        "sdk-telemetry rows: the production path of configure_telemetry() with its defaults (global TracerProvider,"
        " our forwarder,\n  sdk_telemetry.BatchSpanProcessor: batch 100, queue 10,000, interval 2 s); only the"
        " exporter at the end is\n  replaced by one that discards. No MeterProvider is installed (the default),"
        " so the invocation metrics are no-ops."
    )
    print(
        f"Spans handed to the discarding exporters: OTel SDK {sdk_counter.exported:,} of {calls['sdk']:,} spans,"
        f" sdk-telemetry {ours_counter.exported:,} of {calls['ours']:,} calls;"
        f" dropped by sdk-telemetry: {sum(stats['exporters']['local']['dropped'].values())}."
    )
    telemetry.shutdown(timeout=5)
    sdk_provider.shutdown()
    loop.close()

    def ratio(label: str) -> float:
        case = next(case for case in cases if case.label == label)
        return (medians[label] - medians[case.base]) / sdk_overhead

    return {
        "sync": ratio("sdk-telemetry instrument(), sync call"),
        "async": ratio("sdk-telemetry instrument(), async call"),
        "generator": ratio("sdk-telemetry instrument(), generator"),
        "sampled_out": ratio("sdk-telemetry sync call, parent not sampled"),
    }


# --- part 2: CPU per exported span ----------------------------------------------------------------


class _CountingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    counts: ClassVar[dict[str, int]] = {"requests": 0, "bytes": 0}
    lock: ClassVar[threading.Lock] = threading.Lock()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        with self.lock:
            self.counts["requests"] += 1
            self.counts["bytes"] += len(body)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        with self.lock:
            body = json.dumps(self.counts).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve(port_queue: Any) -> None:
    """The loopback sink, in its own process: reads each body, answers 200, counts."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _CountingHandler)
    httpd.daemon_threads = True
    port_queue.put(httpd.server_address[1])
    httpd.serve_forever()


def server_counts(url: str) -> dict[str, int]:
    with urllib.request.urlopen(url + "/stats", timeout=10) as response:
        counts: dict[str, int] = json.loads(response.read())
        return counts


VARIANTS = {
    "ours+discard": "instrument() → our BatchSpanProcessor → discard (no export)",
    "ours+composio": "instrument() → our BatchSpanProcessor → ComposioSpanExporter → HTTP",
    "ours+otlp": "instrument() → our BatchSpanProcessor → our OTLPSpanExporter (direct encoder) → HTTP",
    "ours+otlp@512": "as ours+otlp, with batch_size=512 (the SDK's batch size)",
    "sdk+discard": "SDK start_as_current_span → SDK BatchSpanProcessor → discard",
    "sdk+otlp": "SDK start_as_current_span → SDK BatchSpanProcessor → upstream OTLPSpanExporter → HTTP",
}


def burst_size(variant: str) -> int:
    """Spans per burst: a whole number of batches, so that every request carries a full batch."""
    return 1024 if variant.startswith("sdk") or variant.endswith("@512") else 1000


class Client:
    def execute(self, tool: str) -> str:
        return tool


def export_run(variant: str, url: str, chunks: int, result_queue: Any) -> None:
    """In a fresh process: make `chunks` bursts of spans, export them all, report the CPU it took."""
    if variant.startswith("ours"):
        import sdk_telemetry

        exporter, _, batch = variant.split("+")[1].partition("@")
        os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = url + "/v1/traces"
        kwargs: dict[str, Any] = {"endpoint": url} if exporter == "composio" else {}
        if batch:
            kwargs["batch_size"] = int(batch)
        telemetry, counter = configure_ours(exporter, **kwargs)
        sdk_telemetry.instrument(Client)
        client = Client()
        chunk = burst_size(variant)

        def burst() -> None:
            for _ in range(chunk):
                client.execute("search")

        def flush() -> None:
            telemetry.flush(timeout=60)

        def dropped() -> int:
            return int(telemetry.stats()["dropped"])

    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        inner = OTLPSpanExporter(endpoint=url + "/v1/traces") if variant == "sdk+otlp" else None
        counter = CountingExporter(inner)
        provider = TracerProvider(shutdown_on_exit=False)
        provider.add_span_processor(SdkBatchSpanProcessor(counter))  # the SDK's defaults: batch 512, queue 2048
        tracer = provider.get_tracer("bench")
        chunk = burst_size(variant)  # two SDK batches; fits the SDK's queue of 2048 so nothing is dropped

        def burst() -> None:
            for _ in range(chunk):
                with tracer.start_as_current_span(
                    "Client.execute", attributes={"code.function.name": "__main__.Client.execute"}
                ):
                    Client.execute(None, "search")  # type: ignore[arg-type]

        def flush() -> None:
            provider.force_flush()

        def dropped() -> int:
            return 0

    burst()  # warm-up: imports, connection, caches
    flush()
    gc.collect()
    before_exported = counter.exported
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(chunks):
        burst()
        flush()  # keeps the queue from overflowing; batches stay full (see chunk)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    result_queue.put(
        {
            "spans": chunks * chunk,
            "exported": counter.exported - before_exported,
            "dropped": dropped(),
            "cpu": cpu,
            "wall": wall,
        }
    )


EXPORTERS_ALONE = (
    ("ComposioSpanExporter", 100),
    ("OTLPSpanExporter", 100),
    ("OTLPSpanExporter", 512),
    ("sdk-telemetry OTLPSpanExporter", 100),
    ("sdk-telemetry OTLPSpanExporter", 512),
)


def exporter_alone_run(url: str, spans: int, repeats: int, result_queue: Any) -> None:
    """In a fresh process: export the same finished spans again and again, one exporter at a time.

    Only mapping, serialisation and the HTTP request are measured: no span creation, no batching
    thread running at the same time.
    """
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from sdk_telemetry_exporters.composio import ComposioSpanExporter
    from sdk_telemetry_exporters.otlp import OTLPSpanExporter as DirectOTLPSpanExporter

    import sdk_telemetry

    telemetry, _ = configure_ours("discard")
    counter = CountingExporter(keep=512)
    telemetry.processors[0].exporter = counter
    sdk_telemetry.instrument(Client)
    client = Client()
    for _ in range(512):
        client.execute("search")
    telemetry.flush(timeout=30)
    finished = counter.kept
    assert len(finished) == 512, len(finished)
    exporters: dict[str, SpanExporter] = {
        "ComposioSpanExporter": ComposioSpanExporter(endpoint=url),
        "OTLPSpanExporter": OTLPSpanExporter(endpoint=url + "/v1/traces"),
        "sdk-telemetry OTLPSpanExporter": DirectOTLPSpanExporter(endpoint=url + "/v1/traces"),
    }
    samples: dict[str, list[float]] = {}
    for name, batch in EXPORTERS_ALONE:  # warm-up
        assert exporters[name].export(finished[:batch]) is SpanExportResult.SUCCESS, name
    for _ in range(repeats):
        for name, batch in EXPORTERS_ALONE:
            exporter, requests = exporters[name], max(1, spans // batch)
            gc.collect()
            cpu0 = time.process_time()
            for _ in range(requests):
                exporter.export(finished[:batch])
            cpu = time.process_time() - cpu0
            samples.setdefault(f"{name}, {batch} spans a batch", []).append(cpu / (requests * batch) * 1e6)
    result_queue.put({key: statistics.median(values) for key, values in samples.items()})


def cpu_per_span(spans: int, repeats: int) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    port_queue = context.Queue()
    server = context.Process(target=serve, args=(port_queue,), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{port_queue.get(timeout=30)}"
    results: dict[str, list[dict[str, float]]] = {variant: [] for variant in VARIANTS}
    started = time.monotonic()
    try:
        alone_queue = context.Queue()
        child = context.Process(target=exporter_alone_run, args=(url, spans, repeats * 2, alone_queue))
        child.start()
        alone: dict[str, float] = alone_queue.get(timeout=300)
        child.join(60)
        for _ in range(repeats):
            for variant in VARIANTS:
                chunks = max(1, round(spans / burst_size(variant)))
                before = server_counts(url)
                result_queue = context.Queue()
                child = context.Process(target=export_run, args=(variant, url, chunks, result_queue))
                child.start()
                result = result_queue.get(timeout=300)
                child.join(60)
                after = server_counts(url)
                # The counts include the warm-up burst: per span, over everything the child sent.
                sent = result["exported"] + burst_size(variant)
                result["requests_per_1000"] = (after["requests"] - before["requests"]) / sent * 1000
                result["bytes_per_span"] = (after["bytes"] - before["bytes"]) / sent
                results[variant].append(result)
    finally:
        server.terminate()
        server.join(10)
    duration = time.monotonic() - started

    def median(variant: str, key: str) -> float:
        return statistics.median(r[key] / (r["spans"] if key in ("cpu", "wall") else 1) for r in results[variant])

    cpu = {variant: median(variant, "cpu") * 1e6 for variant in VARIANTS}
    print(
        f"Part 2 — CPU per exported span (process CPU time, all threads; median of {repeats} runs of"
        f" ~{spans:,} spans each, {duration:.0f} s)"
    )
    print()
    header = (
        f"{'variant':15} {'CPU µs/span':>11} {'export µs/span':>14} {'wall µs/span':>12} {'req/1000':>9}"
        f" {'bytes/span':>10} {'exported/dropped':>17}  pipeline"
    )
    print(header)
    print("-" * len(header))
    for variant, description in VARIANTS.items():
        baseline = "ours+discard" if variant.startswith("ours") else "sdk+discard"
        export_cost = "-" if variant == baseline else f"{cpu[variant] - cpu[baseline]:14.1f}"
        last = results[variant][-1]
        counts = f"{int(last['exported']):,}/{int(last['dropped'])}"
        print(
            f"{variant:15} {cpu[variant]:11.1f} {export_cost:>14} {median(variant, 'wall') * 1e6:12.1f}"
            f" {median(variant, 'requests_per_1000'):9.1f} {median(variant, 'bytes_per_span'):10.0f}"
            f" {counts:>17}  {description}"
        )
    print()
    print(
        f"Composio vs OTLP/HTTP, same span creation and batching (ours+composio / ours+otlp):"
        f" {cpu['ours+composio'] / cpu['ours+otlp']:.2f}x the CPU per span in total,"
        f" {(cpu['ours+composio'] - cpu['ours+discard']) / (cpu['ours+otlp'] - cpu['ours+discard']):.2f}x"
        f" for the export step alone."
    )
    print(
        f"sdk-telemetry with Composio vs the plain upstream pipeline (ours+composio / sdk+otlp):"
        f" {cpu['ours+composio'] / cpu['sdk+otlp']:.2f}x."
    )
    print(
        "export µs/span = CPU µs/span minus the discard row of the same pipeline (mapping, serialisation, HTTP)."
        " The server runs in\n  another process and its CPU is not counted; every run is a fresh process"
        " that warms up (imports, connection) before timing."
    )
    print()
    print("The exporters alone: the same 512 finished spans of an instrument()ed method exported again and again")
    print(f"(CPU µs per span, median of {repeats * 2} runs of ~{spans:,} spans; no span creation, no other thread)")
    print()
    for key, value in alone.items():
        print(f"  {key:48} {value:6.1f}")
    composio_alone = alone["ComposioSpanExporter, 100 spans a batch"]
    otlp_alone = alone["OTLPSpanExporter, 100 spans a batch"]
    print(f"  Composio / OTLP at 100 spans a batch: {composio_alone / otlp_alone:.2f}x")
    direct_ratio = (
        alone["sdk-telemetry OTLPSpanExporter, 512 spans a batch"] / alone["OTLPSpanExporter, 512 spans a batch"]
    )
    print(f"  sdk-telemetry OTLP / upstream OTLP at 512 spans a batch: {direct_ratio:.2f}x")
    for variant in VARIANTS:
        for result in results[variant]:
            if result["exported"] != result["spans"] or result["dropped"]:
                print(f"WARNING: {variant}: {result['exported']:,} of {result['spans']:,} spans exported")
    return {
        "total": cpu["ours+composio"] / cpu["sdk+otlp"],
        "otlp_export": direct_ratio,
        "otlp_pipeline": (cpu["ours+otlp@512"] - cpu["ours+discard"]) / (cpu["sdk+otlp"] - cpu["sdk+discard"]),
    }


def disabled_patches_nothing() -> bool:
    """Goal 4: with telemetry off, `instrument()` hands back the function itself and starts no thread."""
    code = (
        "import threading, sdk_telemetry\n"
        "sdk_telemetry.configure_telemetry(enabled=False)\n"
        "def f(): return None\n"
        "print(sdk_telemetry.instrument(f) is f and threading.active_count() == 1)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SDK_TELEMETRY_"))}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    return done.stdout.strip() == "True"


def print_goals(goals: dict[str, float], disabled_ok: bool | None) -> None:
    """Issue 7's goals: each ratio of this run against its bound."""
    bounds = [
        ("1. hot path, sync call (x raw SDK span)", "sync", 0.1),
        ("1. hot path, async call", "async", 0.1),
        ("1. hot path, generator", "generator", 0.1),
        ("2. total CPU per exported invocation, Composio vs SDK + OTLP/HTTP", "total", 0.3),
        ("3. bytes per queued invocation (x SDK span in its queue)", "memory", 0.25),
        ("4. sampled-out call (x raw SDK span)", "sampled_out", 0.05),
        ("5. OTLP exporter alone, ours vs upstream, 512 a batch (stretch)", "otlp_export", 0.5),
        ("5. OTLP export step in the pipeline, ours@512 vs SDK + upstream", "otlp_pipeline", 0.5),
    ]
    print("Goals (issue 7), from this run")
    print()
    for label, key, bound in bounds:
        if key in goals:
            verdict = "met" if goals[key] <= bound else "not met"
            print(f"  {label:66} {goals[key]:6.3f}x  (goal <= {bound}x: {verdict})")
    if disabled_ok is not None:
        label = "4. telemetry disabled: instrument() returns the function, no thread"
        print(f"  {label:66} {'yes' if disabled_ok else 'NO'}")


def main() -> None:
    parser = argparse.ArgumentParser(description="sdk-telemetry overhead benchmark")
    parser.add_argument("--quick", action="store_true", help="fewer rounds and spans (a smoke run)")
    parser.add_argument("--rounds", type=int, default=None, help="part 1 rounds (default 15)")
    parser.add_argument("--spans", type=int, default=None, help="part 2 spans per run (default 20,000)")
    parser.add_argument("--repeats", type=int, default=None, help="part 2 runs per variant (default 5)")
    parser.add_argument("--part", choices=("1", "2", "3", "4", "all"), default="all")
    args = parser.parse_args()
    rounds = args.rounds or (5 if args.quick else 15)
    spans = args.spans or (4000 if args.quick else 20_000)
    repeats = args.repeats or (1 if args.quick else 5)
    target = 0.02 if args.quick else 0.05

    import opentelemetry.sdk

    import sdk_telemetry

    print(
        f"sdk-telemetry {sdk_telemetry.__version__}, opentelemetry-sdk {opentelemetry.sdk.version.__version__},"
        f" wrapt {wrapt.__version__}, Python {sys.version.split()[0]}, {os.cpu_count()} CPU(s)"
    )
    print()
    goals: dict[str, float] = {}
    if args.part in ("1", "all"):
        goals.update(per_call_overhead(rounds, target))
        print()
    if args.part in ("2", "all"):
        goals.update(cpu_per_span(spans, repeats))
        print()
    if args.part in ("3", "all"):
        calls = 2_000 if args.quick else 10_000
        goals["memory"] = memory.report(memory.bytes_per_queued(calls), calls)
        print()
    if args.part in ("4", "all"):
        peers.report(peers.peer_rows(3 if args.quick else 9))
        print()
    print_goals(goals, disabled_patches_nothing() if args.part == "all" else None)


if __name__ == "__main__":
    main()
