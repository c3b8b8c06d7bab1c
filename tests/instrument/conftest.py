"""Fixtures of the instrumentation tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def nested_children(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nested instrumented calls of one SDK kept as child spans (`SDK_TELEMETRY_NESTED_CALLS=children`),
    for the tests of how spans nest. Request it before the fixture that configures telemetry."""
    monkeypatch.setenv("SDK_TELEMETRY_NESTED_CALLS", "children")
