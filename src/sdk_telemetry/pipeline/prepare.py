"""What happens to a finished span before any exporter sees it: consent, sampling, minimisation
and scrubbing, in that order.

`prepare` runs once per span, on the thread that ended it, for every exporter of the setup.
It never raises: a span it cannot make safe is dropped (and counted).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Link, Status
from sdk_telemetry_exporters import attributes as attr

from sdk_telemetry.config import Settings
from sdk_telemetry.instrument import UNSET_STATUS, CallSpan
from sdk_telemetry.privacy import (
    STRUCTURAL_ATTRIBUTES,
    Scrubber,
    consent_granted,
    consent_stats,
    count_withheld,
    decide,
    sampling_stats,
    scrub_stats,
)

_logger = logging.getLogger(__name__)
_lock = threading.Lock()
_failed = 0
#: Resource attributes kept in minimal mode: which SDK, which version.
_MINIMAL_RESOURCE_KEYS = (attr.SERVICE_NAME, attr.SERVICE_VERSION)
_minimal_resources: dict[int, tuple[Resource, Resource]] = {}
# id of a function's shared start attributes -> (those attributes, the scrubber, its result).
_shared_results: dict[int, tuple[Any, Scrubber, dict[str, Any] | None]] = {}


def prepare(span: ReadableSpan, settings: Settings) -> ReadableSpan | None:
    """The span to export (possibly a scrubbed copy), or None to drop it.

    A step added here must also end `prepare_many`'s pass-through (its `plain` test), which skips
    these steps for spans they would leave unchanged.
    """
    try:
        privacy = settings.privacy
        if privacy.consent_required and not consent_granted():
            count_withheld()
            return None
        invocation = _is_invocation(span)
        rate = decide(span, privacy.sampling) if invocation else 1.0
        if rate is None:
            return None
        if privacy.minimal:
            return _minimal(span, rate) if invocation else None
        return _scrubbed(span, privacy.scrubber, rate)
    except Exception:
        global _failed
        with _lock:
            _failed += 1
        _logger.debug("sdk-telemetry: could not prepare span %r; dropped", getattr(span, "name", "?"), exc_info=True)
        return None


def prepare_many(spans: list[ReadableSpan], settings: Settings) -> list[ReadableSpan]:
    """`prepare` for each span, keeping those to export; an instrumented call's span that has nothing
    to scrub, sample or cut down (the common success) is passed through without the general steps."""
    privacy = settings.privacy
    plain = not (privacy.minimal or privacy.sampling.active or privacy.consent_required)
    scrubber = privacy.scrubber
    ready: list[ReadableSpan] = []
    seen: Any = None  # the last shared attributes looked at (a batch is mostly one function's calls)
    seen_clean = False
    for span in spans:
        try:
            unchanged = (
                plain
                and type(span) is CallSpan
                and not span._owned
                and span._status is UNSET_STATUS
                and not span._events
                and not span._links
            )
            if unchanged and span._attributes is not seen:
                seen, seen_clean = span._attributes, _shared_attributes(span._attributes, scrubber) is None
            unchanged = unchanged and seen_clean
        except Exception:  # `prepare` below decides, and counts a failure
            unchanged = False
        if unchanged:
            ready.append(span)
            continue
        prepared = prepare(span, settings)
        if prepared is not None:
            ready.append(prepared)
    return ready


def stats() -> dict[str, Any]:
    """What privacy processing did in this process: values scrubbed, spans sampled out or withheld."""
    return {**scrub_stats(), **sampling_stats(), **consent_stats(), "prepare_failed": _failed}


def _is_invocation(span: ReadableSpan) -> bool:
    scope = span.instrumentation_scope
    return scope is not None and scope.name == attr.INVOCATION_SCOPE


def _copy(
    span: ReadableSpan,
    attributes: Any,
    events: Any,
    links: Any,
    status: Status,
    resource: Resource | None,
) -> ReadableSpan:
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=resource,
        attributes=attributes,
        events=events,
        links=links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _scrubbed(span: ReadableSpan, scrubber: Scrubber, rate: float) -> ReadableSpan:
    """`span` itself when nothing needs to change, else a copy with its data made safe."""
    original = span.attributes or {}
    if type(span) is CallSpan and not span._owned:  # the function's shared start attributes
        attributes = _shared_attributes(original, scrubber)
    else:
        attributes = scrubber.attributes(original)
    if rate < 1.0:
        attributes = {**(attributes if attributes is not None else original), attr.SAMPLE_RATE: rate}
    events = _events(span.events, scrubber) if span._events else None
    links = _links(span.links, scrubber) if span._links else None
    status = span.status
    description = status.description
    if description:
        allowed = scrubber.is_allowed("exception.message") and not scrubber.is_excluded("exception.message")
        safe = scrubber.text(description, ("status.description",)) if allowed else None
        if safe != description:
            status = Status(status.status_code, safe)
    if attributes is None and events is None and links is None and status is span.status:
        return span
    return _copy(
        span,
        attributes if attributes is not None else original,
        events if events is not None else span.events,
        links if links is not None else span.links,
        status,
        span.resource,
    )


def _shared_attributes(attributes: Any, scrubber: Scrubber) -> dict[str, Any] | None:
    """`scrubber.attributes(attributes)` for attributes that every call of a function shares (and
    nothing changes): worked out once per function and set of rules."""
    cached = _shared_results.get(id(attributes))
    if cached is not None and cached[0] is attributes and cached[1] is scrubber:
        return cached[2]
    result = scrubber.attributes(attributes)
    if len(_shared_results) > 4096:
        _shared_results.clear()
    _shared_results[id(attributes)] = (attributes, scrubber, result)
    return result


def _events(events: Any, scrubber: Scrubber) -> list[Event] | None:
    result: list[Event] = []
    changed = False
    for event in events:
        attributes = scrubber.attributes(event.attributes or {})
        if attributes is None:
            result.append(event)
        else:
            changed = True
            result.append(Event(event.name, attributes, event.timestamp))
    return result if changed else None


def _links(links: Any, scrubber: Scrubber) -> list[Link] | None:
    result: list[Link] = []
    changed = False
    for link in links:
        attributes = scrubber.attributes(link.attributes or {}) if link.attributes else None
        if attributes is None:
            result.append(link)
        else:
            changed = True
            result.append(Link(link.context, attributes))
    return result if changed else None


def _minimal(span: ReadableSpan, rate: float) -> ReadableSpan:
    """Only the function name, duration, outcome and error type (plus ids and the sample rate)."""
    original = span.attributes or {}
    attributes = {key: value for key, value in original.items() if key in STRUCTURAL_ATTRIBUTES}
    if rate < 1.0:
        attributes[attr.SAMPLE_RATE] = rate
    return _copy(span, attributes, (), (), Status(span.status.status_code), _minimal_resource(span.resource))


def _minimal_resource(resource: Resource | None) -> Resource:
    """The resource cut down to the service name and version (one copy per original resource)."""
    if resource is None:
        return Resource.get_empty()
    cached = _minimal_resources.get(id(resource))
    if cached is not None and cached[0] is resource:
        return cached[1]
    kept = {key: resource.attributes[key] for key in _MINIMAL_RESOURCE_KEYS if key in resource.attributes}
    minimal = Resource(kept)
    if len(_minimal_resources) > 64:
        _minimal_resources.clear()
    _minimal_resources[id(resource)] = (resource, minimal)
    return minimal
