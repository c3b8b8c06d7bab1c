"""A known dataset of finished invocation spans (seven sessions of five users over three days),
and a factory and writer for spans with chosen times, resources and outcomes."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from sdk_telemetry.store.exporter import LocalSpanExporter

NS = 1_000_000_000
MS = 1_000_000
DAY = 86_400 * NS
HOUR = 3_600 * NS
#: Monday 2026-11-02 00:00 UTC.
BASE = int(datetime(2026, 11, 2, tzinfo=timezone.utc).timestamp()) * NS
LOGIN, LIST, EXECUTE, SEARCH, HTTP = "Client.login", "Client.list", "Tools.execute", "Tools.search", "Http.get"

# session -> (user, start, [(offset s, function, duration ms, error, sample rate)])
SESSIONS: dict[str, tuple[str, int, list[tuple[float, str, float, str | None, float]]]] = {
    "s1": ("u1", 0 * DAY + 1 * HOUR, [(0, LOGIN, 10, None, 1), (10, LIST, 20, None, 1),
                                      (20, EXECUTE, 100, None, 1), (30, EXECUTE, 200, None, 1)]),
    "s2": ("u2", 0 * DAY + 2 * HOUR, [(0, LOGIN, 10, None, 1), (10, LIST, 20, None, 1)]),
    "s3": ("u3", 0 * DAY + 3 * HOUR, [(0, LOGIN, 10, None, 1), (20, EXECUTE, 300, "ValueError: bad input", 1)]),
    "s4": ("u1", 1 * DAY + 1 * HOUR, [(0, LOGIN, 10, None, 1), (10, LIST, 20, None, 1),
                                      (5000, EXECUTE, 400, None, 1)]),
    "s5": ("u4", 1 * DAY + 2 * HOUR, [(0, LIST, 20, None, 1), (10, SEARCH, 30, None, 0.5)]),
    "s6": ("u2", 2 * DAY + 1 * HOUR, [(0, LOGIN, 10, None, 1), (10, LIST, 20, None, 1),
                                      (30, EXECUTE, 1000, None, 1), (40, SEARCH, 30, None, 1)]),
    "s7": ("u5", 2 * DAY + 2 * HOUR, [(0, LOGIN, 10, None, 1), (10, SEARCH, 30, None, 1)]),
}  # fmt: skip


class SpanFactory:
    """Finished SDK spans with chosen times, resources and outcomes, as the instrumentation makes them."""

    def __init__(self, first_id: int = 1) -> None:
        self.next_id = first_id

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    def call(
        self,
        name: str,
        start: int,
        duration_ms: float,
        resource: dict[str, Any],
        error: str | None = None,
        sample_rate: float = 1.0,
        parent: SpanContext | None = None,
    ) -> ReadableSpan:
        context = SpanContext(
            parent.trace_id if parent else self._id(), self._id(), False, TraceFlags(TraceFlags.SAMPLED)
        )
        attributes: dict[str, Any] = {"code.function.name": name}
        if sample_rate != 1.0:
            attributes["sdk_telemetry.sample_rate"] = sample_rate
        if error:
            attributes["error.type"] = error.split(":")[0]
        return ReadableSpan(
            name=name,
            context=context,
            parent=parent,
            resource=Resource.create(resource),
            attributes=attributes,
            kind=SpanKind.INTERNAL,
            status=Status(StatusCode.ERROR, error) if error else Status(StatusCode.OK),
            start_time=start,
            end_time=start + int(duration_ms * MS),
            instrumentation_scope=InstrumentationScope("sdk_telemetry", "0.1.0"),
        )


def write_spans(path: Path, spans: list[ReadableSpan]) -> None:
    """Store spans through the `local` exporter, as a running SDK would."""
    exporter = LocalSpanExporter(path)
    try:
        assert exporter.export(spans).name == "SUCCESS", exporter.last_error
    finally:
        exporter.shutdown()


def known_spans(base: int = BASE) -> list[ReadableSpan]:
    """The dataset of the tests: seven sessions of five users over three days."""
    factory = SpanFactory()
    spans = []
    for session, (user, start, calls) in SESSIONS.items():
        resource = {"service.name": "acme-sdk", "session.id": session, "enduser.id": user}
        for offset, name, duration, error, rate in calls:
            span = factory.call(name, base + start + int(offset * NS), duration, resource, error, rate)
            spans.append(span)
            if session == "s1" and name == EXECUTE and offset == 20:  # one nested call: not a journey step
                spans.append(factory.call(HTTP, span.start_time + 5 * MS, 50, resource, parent=span.context))
    return spans
