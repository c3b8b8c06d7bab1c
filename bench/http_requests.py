"""What sdk-telemetry costs a host's own HTTP request sent outside any instrumented call.

    python bench/http_requests.py            # about a minute
    python bench/http_requests.py --quick

Times `requests` (a `Session`) and `httpx2` (a `Client`) GETs to a loopback server in another
process, keep-alive, in interleaved rounds: plain (nothing configured, the libraries untouched)
and with `configure_telemetry()` (its transports wrapped; outside a call a wrapper only looks up
the current span). Also times that look-up alone. Prints medians in µs per request.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

for _name in list(os.environ):
    if _name.startswith(("OTEL_", "SDK_TELEMETRY_")) or _name in ("DO_NOT_TRACK", "TELEMETRY_DISABLED"):
        del os.environ[_name]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


def _serve(port: Any) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    port.value = server.server_address[1]
    server.serve_forever()


def _per_request(send: Callable[[], object], count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        send()
    return (time.perf_counter() - start) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds, count = (5, 200) if args.quick else (15, 500)

    port = multiprocessing.Value("i", 0)
    server = multiprocessing.Process(target=_serve, args=(port,), daemon=True)
    server.start()
    while not port.value:
        time.sleep(0.01)
    url = f"http://127.0.0.1:{port.value}/"

    import httpx2
    import requests

    from sdk_telemetry import configure_telemetry
    from sdk_telemetry.http import spans

    session, client = requests.Session(), httpx2.Client()
    senders = {"requests": lambda: session.get(url), "httpx2": lambda: client.get(url)}
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for mode in ("plain", "configured"):
            telemetry = configure_telemetry(exporter="none") if mode == "configured" else None
            for name, send in senders.items():
                send()  # warm the connection
                results.setdefault((name, mode), []).append(_per_request(send, count))
            if telemetry is not None:
                telemetry.shutdown()
    telemetry = configure_telemetry(exporter="none")
    look_up = [_per_request(spans.calling_context, 100_000) for _ in range(rounds)]
    telemetry.shutdown()
    server.terminate()

    print(f"median of {rounds} interleaved rounds of {count} keep-alive GETs to a loopback server (µs per request)")
    print(f"{'library':<10} {'plain':>10} {'configured':>12} {'difference':>12}")
    for name in senders:
        plain = statistics.median(results[(name, "plain")])
        configured = statistics.median(results[(name, "configured")])
        print(f"{name:<10} {plain:>10.1f} {configured:>12.1f} {configured - plain:>+12.1f}")
    print(f"the wrapper's check alone (spans.calling_context, no span current): {statistics.median(look_up):.3f} µs")


if __name__ == "__main__":
    main()
