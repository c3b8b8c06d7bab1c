"""Fixtures of the instrumentation tests: spans recorded in memory, nested calls kept as children,
and the loopback LLM API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sdk_telemetry_exporters import attributes as attr

from sdk_telemetry import configure_telemetry
from tests.helpers.llm_api import FakeLLMAPI


@pytest.fixture
def nested_children(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nested instrumented calls of one SDK kept as child spans (`SDK_TELEMETRY_NESTED_CALLS=children`),
    for the tests of how spans nest. Request it before the fixture that configures telemetry."""
    monkeypatch.setenv("SDK_TELEMETRY_NESTED_CALLS", "children")


@pytest.fixture
def recorded() -> InMemorySpanExporter:
    """Telemetry configured with no exporter; every finished span, captured synchronously."""
    configure_telemetry(exporter="none")
    exporter = InMemorySpanExporter()
    trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(exporter))  # type: ignore[attr-defined]
    return exporter


@pytest.fixture
def llm_api() -> Iterator[FakeLLMAPI]:
    with FakeLLMAPI() as api:
        yield api


def ours(exporter: InMemorySpanExporter) -> list[str]:
    """The names of the finished spans sdk-telemetry made (not an SDK's own tracing)."""
    return [
        span.name
        for span in exporter.get_finished_spans()
        if span.instrumentation_scope is not None and span.instrumentation_scope.name == attr.INVOCATION_SCOPE
    ]
