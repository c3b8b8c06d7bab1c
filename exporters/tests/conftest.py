"""The exporters' tests: they need `sdk_telemetry_exporters` (and pytest) only, never `sdk_telemetry`.

Every test starts without telemetry variables and with its data directory (so a default spool)
under its own temporary directory; `server` is a recording loopback server that answers 200.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# `helpers` (the loopback servers) is imported from this directory, whichever import mode runs the tests.
HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from helpers.loopback import LoopbackServer  # noqa: E402
from sdk_telemetry_exporters import notices  # noqa: E402

#: Variables every test starts without.
CLEARED_PREFIXES = ("SDK_TELEMETRY_", "OTEL_")
CLEARED_NAMES = ("TELEMETRY_DISABLED", "DO_NOT_TRACK", "TINKER_TELEMETRY")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No telemetry variables; a default spool (beside the store) under `tmp_path`."""
    for name in list(os.environ):
        if name.startswith(CLEARED_PREFIXES) or name in CLEARED_NAMES:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SDK_TELEMETRY_STORE", str(tmp_path / "telemetry.sqlite3"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    notices.reset()  # each test sees the warnings its own setup causes


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    """A recording HTTP server on 127.0.0.1 that answers 200."""
    with LoopbackServer() as running:
        yield running
