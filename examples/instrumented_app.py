"""An application that uses the demo SDK with no telemetry code at all: `opentelemetry-instrument` adds it.

Run it from the root of the clone, after the quick start:

    SDK_TELEMETRY_INSTRUMENT="acme_sdk:Tools,acme_sdk:fetch_status" \\
        .venv/bin/opentelemetry-instrument .venv/bin/python examples/instrumented_app.py
    .venv/bin/sdk-telemetry stats

`opentelemetry-instrument` loads the `sdk_telemetry` distro, whose configurator runs
`configure_telemetry()` from the environment and whose instrumentor wraps every target named in
`SDK_TELEMETRY_INSTRUMENT` when its module is imported. Spans go to the local store
(`SDK_TELEMETRY_STORE`, or your user data directory) unless `OTEL_TRACES_EXPORTER` names another
exporter (`composio`, `otlp`, `console`, `none`). With `DO_NOT_TRACK=1` nothing is recorded and
nothing is patched.

Arguments: `--calls N` (default 20) sets how many successful `execute` calls are made.
"""

from __future__ import annotations

import argparse
import asyncio

import acme_sdk


async def use_async(tools: acme_sdk.Tools, calls: int) -> list[str]:
    results = await asyncio.gather(*(tools.execute_async("search") for _ in range(calls)))
    events = [event async for event in tools.stream(3)]
    return [result["status"] for result in results] + events


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20, help="successful execute() calls to make")
    calls = parser.parse_args(argv).calls

    tools = acme_sdk.Tools()
    for _ in range(calls):
        tools.execute("search")
    failures = 0
    for _ in range(2):
        try:
            tools.execute("broken")
        except acme_sdk.AcmeError:
            failures += 1
    listed = list(tools.list(3))
    async_results = asyncio.run(use_async(tools, 5))
    status = acme_sdk.fetch_status()

    print(f"executed: {calls} ok, {failures} failed")
    print(f"listed: {listed}")
    print(f"async: {len(async_results)} results")
    print(f"status: {status}")
    # Shows whether the SDK was patched in this process, without importing sdk_telemetry.
    print(f"instrumented: {type(acme_sdk.Tools.__dict__['execute']).__name__ != 'function'}")


if __name__ == "__main__":
    main()
