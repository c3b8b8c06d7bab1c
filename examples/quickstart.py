"""Quick start: instrument a demo SDK client on the embedded default, then print the stats.

    .venv/bin/python examples/quickstart.py

Telemetry goes to the local store (`SDK_TELEMETRY_STORE`, or your user data directory);
nothing is sent to any host. The stats table at the end is `sdk-telemetry stats`.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from acme_sdk import AcmeError, Tools

from sdk_telemetry import configure_telemetry, instrument


async def use_async(tools: Tools) -> None:
    await asyncio.gather(*(tools.execute_async("search") for _ in range(20)))
    async for _ in tools.stream(5):
        pass


def main() -> None:
    telemetry = configure_telemetry(service_name="acme-sdk", service_version="1.0.0")
    instrument(Tools)

    tools = Tools()
    for _ in range(50):
        tools.execute("search")
    for _ in range(5):
        with contextlib.suppress(AcmeError):
            tools.execute("broken")
    print("listed:", list(tools.list(3)))
    asyncio.run(use_async(tools))

    telemetry.shutdown()
    print(f"recorded {telemetry.stats()['exported']} calls to {telemetry.settings.store_path}\n")
    subprocess.run(
        [sys.executable, "-m", "sdk_telemetry", "stats", "--store", str(telemetry.settings.store_path)],
        check=True,
    )


if __name__ == "__main__":
    main()
