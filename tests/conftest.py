"""Shared fixtures: a clean environment and clean OpenTelemetry globals for every test."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import metrics, trace
from opentelemetry.util._once import Once

import sdk_telemetry
from sdk_telemetry import _calls, _consent, _processing, _setup, _state
from tests.loopback import LoopbackServer

ROOT = Path(__file__).resolve().parent.parent
_CLEARED_PREFIXES = ("SDK_TELEMETRY_", "OTEL_")
_CLEARED_NAMES = ("TELEMETRY_DISABLED", "DO_NOT_TRACK", "TINKER_TELEMETRY")


def _reset_otel_globals() -> None:
    trace._TRACER_PROVIDER_SET_ONCE = Once()  # type: ignore[attr-defined]
    trace._TRACER_PROVIDER = None  # type: ignore[attr-defined]
    metrics._internal._METER_PROVIDER_SET_ONCE = Once()  # type: ignore[attr-defined]
    metrics._internal._METER_PROVIDER = None  # type: ignore[attr-defined]
    # Proxies cache the provider they first resolved: give the instrumentation fresh ones.
    _calls._tracer = trace.get_tracer(_calls.attr.INVOCATION_SCOPE, sdk_telemetry.__version__)
    _calls._metrics = None


@pytest.fixture(autouse=True)
def clean_telemetry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Every test starts unconfigured, with no telemetry variables set and its own store file."""
    for name in list(os.environ):
        if name.startswith(_CLEARED_PREFIXES) or name in _CLEARED_NAMES:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SDK_TELEMETRY_STORE", str(tmp_path / "telemetry.sqlite3"))
    _reset_otel_globals()
    yield
    for telemetry in [_setup.current_telemetry(), *_setup._handles]:
        if telemetry is not None:
            telemetry.shutdown(timeout=1.0)
    _setup._handles.clear()
    sdk_telemetry.uninstrument_all()
    _setup._current = None
    _setup._forwarders.clear()
    _state.set_active(None)
    _processing.activate(None)
    _consent.reset()
    _reset_otel_globals()


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    """A recording HTTP server on 127.0.0.1 that answers 200."""
    with LoopbackServer() as running:
        yield running


def child_env(**overrides: str) -> dict[str, str]:
    """The environment for a child Python: the test's (already cleaned) plus `overrides`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_CLEARED_PREFIXES) and k not in _CLEARED_NAMES}
    env["SDK_TELEMETRY_STORE"] = os.environ["SDK_TELEMETRY_STORE"]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "examples"), env.get("PYTHONPATH")]))
    env.update(overrides)
    return env


def run_python(
    code: str, env: dict[str, str] | None = None, timeout: float = 60, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `code` in a new interpreter (this venv's) and capture its output."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env if env is not None else child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )
