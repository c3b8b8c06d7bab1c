"""Queue telemetry: observable metrics of every export queue (spans and events) of every live
telemetry handle: its length, and what it took, exported, failed to send and dropped.

Read from the queues' `stats()` when a metric reader collects, so nothing is recorded per item.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

from sdk_telemetry._version import __version__

_logger = logging.getLogger(__name__)

EXPORTER = "sdk_telemetry.exporter"
SIGNAL = "sdk_telemetry.signal"
SESSION = "session.id"
REASON = "reason"

#: One queue: its attributes (exporter, signal, session) and a function returning its `stats()`.
QueueSource = Callable[[], Iterable[tuple[dict[str, str], Callable[[], dict[str, Any]]]]]

_registered: weakref.WeakSet[Any] = weakref.WeakSet()


def register(source: QueueSource) -> None:
    """Create the queue instruments on the global MeterProvider (once per provider)."""
    provider = metrics.get_meter_provider()
    if provider in _registered:
        return
    _registered.add(provider)
    meter = metrics.get_meter("sdk_telemetry.queue", __version__)

    def observe(key: str) -> Callable[[CallbackOptions], Iterator[Observation]]:
        def callback(options: CallbackOptions) -> Iterator[Observation]:
            for attributes, stats in _read(source):
                yield Observation(int(stats.get(key, 0)), attributes)

        return callback

    def dropped(options: CallbackOptions) -> Iterator[Observation]:
        for attributes, stats in _read(source):
            for reason, count in (stats.get("dropped") or {}).items():
                yield Observation(int(count), {**attributes, REASON: reason})

    meter.create_observable_gauge(
        "sdk_telemetry.queue.size", [observe("queue")], unit="{item}", description="Items waiting to be exported"
    )
    meter.create_observable_counter(
        "sdk_telemetry.queue.queued", [observe("queued")], unit="{item}", description="Items taken into the queue"
    )
    meter.create_observable_counter(
        "sdk_telemetry.queue.exported", [observe("exported")], unit="{item}", description="Items exported"
    )
    meter.create_observable_counter(
        "sdk_telemetry.queue.failed",
        [observe("failed")],
        unit="{item}",
        description="Items not delivered",
    )
    meter.create_observable_counter(
        "sdk_telemetry.queue.dropped", [dropped], unit="{item}", description="Items dropped, by reason"
    )


def _read(source: QueueSource) -> list[tuple[dict[str, str], dict[str, Any]]]:
    result = []
    try:
        for attributes, stats in source():
            result.append((attributes, stats()))
    except Exception:
        _logger.debug("sdk-telemetry: could not read the queue statistics", exc_info=True)
    return result
