"""Capturing the telemetry of instrumented calls in an SDK's own tests.

    from sdk_telemetry.testing import capture_telemetry

    with capture_telemetry() as captured:
        client.create(name="x")
    span = captured.assert_recorded("Client.create")
    assert span.attributes["code.function.name"].endswith("Client.create")

As a pytest plugin (in the SDK's `conftest.py`: `pytest_plugins = ["sdk_telemetry.testing"]`) it
gives the `captured_telemetry` fixture, and `instrument()` wraps even where telemetry is off for
the test run (`SDK_TELEMETRY_ENVIRONMENT=test`, an opt-out variable): nothing is exported, the
calls of the test are captured in memory. While a capture is on, instrumented calls' spans go to
it instead of the configured exporters, and every event a handle records (`telemetry.log`,
`log_exception`, whether telemetry is on or off) is captured too, scrubbed as it would be sent.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import StatusCode
from sdk_telemetry_exporters import attributes as attr

from sdk_telemetry._version import __version__
from sdk_telemetry.config import allow_instrumentation_for_tests
from sdk_telemetry.instrument import PrivateIdGenerator, use_tracer
from sdk_telemetry.session import EventRecord, add_listener, remove_listener

__all__ = ["CapturedTelemetry", "EventRecord", "capture_telemetry", "captured_telemetry"]


class CapturedTelemetry:
    """The spans and events recorded while a capture is on, and assertions over them."""

    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self._exporter = exporter
        self.events: list[EventRecord] = []

    @property
    def spans(self) -> list[ReadableSpan]:
        """The finished spans, in the order they ended."""
        return list(self._exporter.get_finished_spans())

    def names(self) -> list[str]:
        return [span.name for span in self.spans]

    def spans_named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.spans if span.name == name]

    def span(self, name: str) -> ReadableSpan:
        """The one span named `name`; `AssertionError` listing what was recorded otherwise."""
        found = self.spans_named(name)
        if len(found) != 1:
            raise AssertionError(f"expected one span named {name!r}, found {len(found)}; recorded: {self.names()}")
        return found[0]

    def errors(self) -> list[ReadableSpan]:
        """The spans of calls that raised."""
        return [span for span in self.spans if span.status.status_code is StatusCode.ERROR]

    def children(self, parent: ReadableSpan) -> list[ReadableSpan]:
        """The captured spans whose parent is `parent`: instrumented calls of another SDK inside it, or
        nested calls of the same one with `nested_calls="children"`. (HTTP child spans go to the
        configured tracer provider, not to a capture.)"""
        parent_id = parent.context.span_id if parent.context else None
        return [span for span in self.spans if span.parent is not None and span.parent.span_id == parent_id]

    def event(self, name: str) -> EventRecord:
        """The one event named `name`; `AssertionError` listing what was recorded otherwise."""
        found = [event for event in self.events if event.name == name]
        if len(found) != 1:
            names = [event.name for event in self.events]
            raise AssertionError(f"expected one event named {name!r}, found {len(found)}; recorded: {names}")
        return found[0]

    def assert_recorded(
        self,
        name: str,
        *,
        error: type[BaseException] | str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> ReadableSpan:
        """The one span named `name`, checked: it failed with `error` (a type or its name) or succeeded
        when `error` is None, and carries `attributes` (a subset). `AssertionError` says what differs."""
        span = self.span(name)
        failed = span.status.status_code is StatusCode.ERROR
        recorded_type = str((span.attributes or {}).get(attr.ERROR_TYPE, ""))
        if error is None and failed:
            raise AssertionError(f"{name} failed: {span.status.description}")
        if error is not None:
            wanted = error if isinstance(error, str) else error.__name__
            if not failed or recorded_type.rsplit(".", 1)[-1] != wanted.rsplit(".", 1)[-1]:
                raise AssertionError(f"{name}: expected error {wanted}, recorded {recorded_type or 'success'}")
        for key, value in (attributes or {}).items():
            actual = (span.attributes or {}).get(key)
            if actual != value:
                raise AssertionError(f"{name}: attribute {key!r} is {actual!r}, expected {value!r}")
        return span

    def clear(self) -> None:
        """Forget what was captured so far."""
        self._exporter.clear()
        self.events.clear()


@contextmanager
def capture_telemetry() -> Iterator[CapturedTelemetry]:
    """Capture the spans of instrumented calls and the recorded events until the block ends."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_ON, shutdown_on_exit=False, id_generator=PrivateIdGenerator())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    captured = CapturedTelemetry(exporter)
    previous = use_tracer(provider.get_tracer(attr.INVOCATION_SCOPE, __version__))
    was_testing = allow_instrumentation_for_tests(True)
    listener = captured.events.append
    add_listener(listener)
    try:
        yield captured
    finally:
        remove_listener(listener)
        allow_instrumentation_for_tests(was_testing)
        use_tracer(previous)
        provider.shutdown()


# --- the pytest plugin ----------------------------------------------------------------------------

try:
    import pytest
except ImportError:  # used without pytest: the context manager alone
    pass
else:

    def pytest_configure(config: pytest.Config) -> None:
        """Instrumentation wraps for the whole test run, even where telemetry is off."""
        allow_instrumentation_for_tests(True)

    @pytest.fixture
    def captured_telemetry() -> Iterator[CapturedTelemetry]:
        """The spans and events of the instrumented calls made during the test."""
        with capture_telemetry() as captured:
            yield captured
