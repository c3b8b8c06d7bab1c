"""Shared fixtures: a clean environment and clean OpenTelemetry globals for every test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import metrics, trace
from opentelemetry.util._once import Once
from sdk_telemetry_exporters import notices

import sdk_telemetry
from exporters.tests.helpers.loopback import LoopbackServer
from sdk_telemetry import telemetry as telemetry_setup
from sdk_telemetry.config import state
from sdk_telemetry.instrument import calls
from sdk_telemetry.privacy import consent
from tests.helpers.processes import CLEARED_NAMES, CLEARED_PREFIXES


def _reset_otel_globals() -> None:
    trace._TRACER_PROVIDER_SET_ONCE = Once()  # type: ignore[attr-defined]
    trace._TRACER_PROVIDER = None  # type: ignore[attr-defined]
    metrics._internal._METER_PROVIDER_SET_ONCE = Once()  # type: ignore[attr-defined]
    metrics._internal._METER_PROVIDER = None  # type: ignore[attr-defined]
    # Proxies cache the provider they first resolved: give the instrumentation fresh ones.
    calls._tracer = trace.get_tracer(calls.attr.INVOCATION_SCOPE, sdk_telemetry.__version__)
    calls._metrics = None


def _shut_down_every_handle() -> None:
    for telemetry in [telemetry_setup.current_telemetry(), *telemetry_setup._handles]:
        if telemetry is not None:
            telemetry.shutdown(timeout=1.0)


@pytest.fixture(autouse=True)
def clean_telemetry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Every test starts unconfigured, with no telemetry variables set and its own store file."""
    for name in list(os.environ):
        if name.startswith(CLEARED_PREFIXES) or name in CLEARED_NAMES:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SDK_TELEMETRY_STORE", str(tmp_path / "telemetry.sqlite3"))
    _reset_otel_globals()
    notices.reset()  # each test sees the warnings its own setup causes
    yield
    _shut_down_every_handle()
    telemetry_setup._handles.clear()
    sdk_telemetry.uninstrument_all()
    telemetry_setup._current = None
    telemetry_setup._forwarders.clear()
    state.activate(None)
    consent.reset()
    _reset_otel_globals()


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    """A recording HTTP server on 127.0.0.1 that answers 200, and outlives every telemetry handle of the
    test (they are shut down before it closes, so that what they send at shutdown arrives at once)."""
    with LoopbackServer() as running:
        yield running
        _shut_down_every_handle()
