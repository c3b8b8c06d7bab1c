"""The Composio-style invocation wire format, as an OpenTelemetry span exporter.

Successful invocations go as JSON arrays (at most 100 per request) to
`POST {base}/metrics/invocations`; each failed invocation goes alone to `POST {base}/errors`.
An absent field is omitted, never `null`.

An error re-raised through several instrumented layers is reported to `/errors` once, by the
innermost layer (the first to record it); the outer layers' invocations go in the batches with
the same `error.errorId`, and a receiver counts an error once per `errorId`.

Extensions of ours, in `metadata` (a server that does not know them strips them): `eventId`
(the span's ids), `serviceName` (`service.name`, unless the SDK's default), `sessionId`
(`session.id`) and `userId` (`enduser.id`), from the span's attributes or else its resource.
`source.host` is the product (e.g. `mcp`), never the machine's name: it is sent only when set,
as the `sdk_telemetry.source.host` resource attribute or the exporter's `source_host`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode

from sdk_telemetry_exporters import attributes as attr
from sdk_telemetry_exporters._delivery import DeliveringExporter, delivery_for, span_event_id
from sdk_telemetry_exporters.config import ExporterSettings
from sdk_telemetry_exporters.fallback import OtlpFallback
from sdk_telemetry_exporters.spool import WireBatch

_logger = logging.getLogger(__name__)

MAX_BATCH = 100
INVOCATIONS_PATH = "/metrics/invocations"
ERRORS_PATH = "/errors"
SOURCE_SERVICES = frozenset({"sdk", "apollo", "hermes", "thermos"})
SOURCE_LANGUAGES = frozenset({"python", "typescript", "go", "rust"})
SOURCE_ENVIRONMENTS = frozenset({"development", "production", "ci", "staging", "test"})
#: The usual spellings of `ENVIRONMENT` / `NODE_ENV` values, onto the schema's enum.
ENVIRONMENT_ALIASES = {
    "dev": "development",
    "develop": "development",
    "local": "development",
    "prod": "production",
    "prd": "production",
    "live": "production",
    "stage": "staging",
    "stg": "staging",
    "preprod": "staging",
    "testing": "test",
    "tests": "test",
}
#: The resource attribute that sets `source.host` (the product, as the real clients send it).
SOURCE_HOST = "sdk_telemetry.source.host"
ENDUSER_ID = "enduser.id"
_DEFAULT_SERVICE_PREFIX = "unknown_service"
_LANGUAGE_ALIASES = {"ts": "typescript", "py": "python", "golang": "go", "rs": "rust"}


def _normalized(value: object, allowed: frozenset[str], aliases: Mapping[str, str]) -> str | None:
    text = str(value).strip().lower()
    text = aliases.get(text, text)
    return text if text in allowed else None


def normalize_environment(value: object) -> str | None:
    """`source.environment` for a raw environment name (`prod` is `production`), or None when it is none of them."""
    return _normalized(value, SOURCE_ENVIRONMENTS, ENVIRONMENT_ALIASES)


def normalize_service(value: object) -> str | None:
    """`source.service` for `value` (any case), or None when it is not one of the schema's."""
    return _normalized(value, SOURCE_SERVICES, {})


def normalize_language(value: object) -> str | None:
    """`source.language` for `value` (`ts` is `typescript`), or None when it is not one of the schema's."""
    return _normalized(value, SOURCE_LANGUAGES, _LANGUAGE_ALIASES)


def source_from_resource(resource: Resource, host: str | None = None) -> dict[str, str]:
    """The payload's `source` object: enum fields hold one of their values or are left out;
    `host` (else the `sdk_telemetry.source.host` attribute) only when given, never `host.name`."""
    attrs = resource.attributes
    source: dict[str, str] = {"language": "python"}
    service = normalize_service(attrs.get(attr.SOURCE_SERVICE, "sdk"))
    if service is not None:
        source["service"] = service
    environment = normalize_environment(attrs.get(attr.DEPLOYMENT_ENVIRONMENT, ""))
    if environment is not None:
        source["environment"] = environment
    for key, value in (("version", attrs.get(attr.SERVICE_VERSION)), ("host", host or attrs.get(SOURCE_HOST))):
        if value is not None and str(value):
            source[key] = str(value)
    os_type = attrs.get(attr.OS_TYPE)  # absent in minimal mode: then no platform is sent
    if os_type:
        source["platform"] = str(os_type)
    return source


def metadata_from_resource(
    resource: Resource, project_id: str | None = None, provider: str | None = None
) -> dict[str, str]:
    """The payload's `metadata` object: `projectId`, `provider` and the extensions `serviceName`,
    `sessionId`, `userId` when known (empty when none is)."""
    attrs = resource.attributes
    metadata: dict[str, str] = {}
    service = str(attrs.get(attr.SERVICE_NAME) or "")
    for key, value in (
        ("projectId", project_id or attrs.get(attr.PROJECT_ID)),
        ("provider", provider or attrs.get(attr.PROVIDER)),
        ("serviceName", "" if service.startswith(_DEFAULT_SERVICE_PREFIX) else service),
        ("sessionId", attrs.get(attr.SESSION_ID)),
        ("userId", attrs.get(ENDUSER_ID)),
    ):
        if value:
            metadata[key] = str(value)
    return metadata


def is_invocation(span: ReadableSpan) -> bool:
    """True for spans made by `sdk_telemetry.instrument`."""
    scope = span.instrumentation_scope
    return scope is not None and scope.name == attr.INVOCATION_SCOPE


def is_error_report(span: ReadableSpan) -> bool:
    """True for a failed invocation that is the first to record its exception (sent to /errors)."""
    return span.status.status_code is StatusCode.ERROR and not (span.attributes or {}).get(attr.ERROR_PROPAGATED)


def error_object(span: ReadableSpan) -> dict[str, str] | None:
    """The payload's `error` object for a failed span, or None."""
    if span.status.status_code is not StatusCode.ERROR:
        return None
    attrs = span.attributes or {}
    exception: Mapping[str, Any] = {}
    for event in span.events:
        if event.name == "exception":
            exception = event.attributes or {}
            break
    error_type = str(attrs.get(attr.ERROR_TYPE) or exception.get(attr.EXCEPTION_TYPE) or "Error")
    error: dict[str, str] = {"name": error_type.rsplit(".", 1)[-1]}
    for key, value in (
        ("code", attrs.get(attr.ERROR_CODE)),
        ("errorId", attrs.get(attr.ERROR_ID)),
        ("stack", exception.get(attr.EXCEPTION_STACKTRACE)),
    ):
        if value is not None and value != "":
            error[key] = str(value)
    # The exception's own message, even empty (as the real clients send it), never its type's name.
    if attr.EXCEPTION_MESSAGE in exception:
        error["message"] = str(exception[attr.EXCEPTION_MESSAGE])
    elif span.status.description:
        error["message"] = span.status.description
    return error


def _without_nulls(value: Any) -> Any:
    """`value` with every `None` left out of objects and arrays (the schema rejects `null`)."""
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value if item is not None]
    return value


def invocation_payload(span: ReadableSpan, source: Mapping[str, str], metadata: Mapping[str, str]) -> dict[str, Any]:
    """Map one finished invocation span onto the wire payload.

    `source` is put in as it is (the same object in every payload of a batch: nothing changes a
    payload once it is built); `metadata` is copied, as each payload adds its own `eventId`.
    """
    payload: dict[str, Any] = {"functionName": span.name}
    start, end = span.start_time, span.end_time
    if start is not None:
        payload["timestamp"] = start / 1e9
        if end is not None:
            payload["durationMs"] = (end - start) / 1e6
    attributes = span.attributes
    props = attributes.get(attr.PROPS) if attributes else None
    if props:
        try:
            payload["props"] = _without_nulls(orjson.loads(str(props)))
        except orjson.JSONDecodeError:
            payload["props"] = {"value": str(props)}
    if source:
        payload["source"] = source
    payload["metadata"] = {**metadata, "eventId": span_event_id(span)}
    if attributes:  # a session or user set on the span wins over the resource's
        for key, attribute in (("sessionId", attr.SESSION_ID), ("userId", ENDUSER_ID)):
            value = attributes.get(attribute)
            if value:
                payload["metadata"][key] = str(value)
    if span.status.status_code is StatusCode.ERROR:
        error = error_object(span)
        if error is not None:
            payload["error"] = error
    return payload


def payload_event_id(payload: Any) -> str:
    """The `metadata.eventId` of a payload (empty when it has none)."""
    metadata = payload.get("metadata") if isinstance(payload, dict) else None
    return str(metadata.get("eventId", "")) if isinstance(metadata, dict) else ""


class ComposioSpanExporter(DeliveringExporter, SpanExporter):
    """Exports invocation spans in the Composio-style format; falls back to OTLP when configured.

    Built with no arguments it reads `SDK_TELEMETRY_*` from the environment. With no endpoint it
    sends nothing to any host (and uses the OTLP fallback, if one is configured). What could not
    be delivered goes to the disk spool and is resent when the endpoint answers again.
    """

    name = "composio"

    def __init__(
        self,
        endpoint: str | None = None,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        project_id: str | None = None,
        provider: str | None = None,
        fallback: OtlpFallback | None = None,
        settings: ExporterSettings | None = None,
        source_host: str | None = None,
    ) -> None:
        """`source_host` is sent as `source.host`: the product (such as `mcp`), not a machine name."""
        self.non_invocation_spans = 0
        self._source_host = source_host
        self.items_unmapped = 0
        self._project_id = project_id
        self._provider = provider
        self._sources: dict[int, tuple[Resource, dict[str, str], dict[str, str]]] = {}
        self._delivery = delivery_for(
            self.name,
            payload_event_id,
            settings,
            endpoint=endpoint,
            api_key=api_key,
            headers=headers,
            timeout=timeout,
            fallback=fallback,
            otlp_fallback=True,
        )

    @property
    def endpoint(self) -> str | None:
        """The base URL, without a trailing slash, or None when unset."""
        return self._delivery.base

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Send errors first (one request each), then successes in arrays of at most 100; then resend the spool."""
        deadline = time.monotonic() + self._delivery.transport.timeout * 2
        delivery = self._delivery
        delivery.begin_export()
        all_ok = True
        for batch, counter, members in self._batches(spans):
            all_ok &= delivery.deliver(batch, members, deadline, counter)
        delivery.resend(deadline)  # when the endpoint answers again (probes back off while it does not)
        return SpanExportResult.SUCCESS if all_ok else SpanExportResult.FAILURE

    def spool(self, spans: Sequence[ReadableSpan]) -> int:
        """Write spans that will not be exported in time to the spool, in wire form; how many are accounted for.

        Called by the batching stage when the exit bound is reached, with the spans still queued
        and those inside an export; spans of that export already delivered or spooled count as
        accounted for and are not written twice.
        """
        try:
            batches = [batch for batch, _, _ in self._batches(spans)]
            return self._delivery.spool_batches(batches) + (len(spans) - sum(len(b.items) for b in batches))
        except Exception:
            _logger.exception("sdk-telemetry: spooling at exit failed")
            return 0

    def stats(self) -> dict[str, Any]:
        """Counters: sent, retried, rejected, failed, diverted to the fallback, spooled, resent, dropped by reason."""
        result = self._delivery.stats()
        for key in ("invocations_sent", "errors_sent", "requests_failed", "items_failed", "items_rejected"):
            result.setdefault(key, 0)
        result.setdefault("items_to_fallback", 0)
        result["exported"] = result["invocations_sent"] + result["errors_sent"] + result.get("fallback_sent", 0)
        result["non_invocation_spans"] = self.non_invocation_spans
        result["items_failed"] += self.items_unmapped
        return result

    def _batches(self, spans: Sequence[ReadableSpan]) -> list[tuple[WireBatch, str, list[ReadableSpan]]]:
        """Errors one per batch, then successes in batches of at most 100; each with its counter and spans."""
        errors: list[tuple[WireBatch, str, list[ReadableSpan]]] = []
        invocations: list[dict[str, Any]] = []
        members: list[ReadableSpan] = []
        scope_seen: Any = None  # the last scope found to be ours, and the last resource mapped
        resource_seen: Any = None
        source: dict[str, str] = {}
        metadata: dict[str, str] = {}
        for span in spans:
            scope = span.instrumentation_scope
            if scope is not scope_seen:
                if not is_invocation(span):
                    self.non_invocation_spans += 1
                    continue
                scope_seen = scope
            resource = span.resource
            if resource is not resource_seen:
                source, metadata = self._source_and_metadata(resource)
                resource_seen = resource
            try:
                payload = invocation_payload(span, source, metadata)
            except Exception:
                _logger.exception("sdk-telemetry: could not map span %r", span.name)
                self.items_unmapped += 1
                continue
            if "error" in payload and is_error_report(span):
                errors.append((WireBatch(ERRORS_PATH, (payload,), single=True), "errors_sent", [span]))
            else:
                invocations.append(payload)
                members.append(span)
        batches = errors
        for start in range(0, len(invocations), MAX_BATCH):
            chunk = tuple(invocations[start : start + MAX_BATCH])
            batches.append((WireBatch(INVOCATIONS_PATH, chunk), "invocations_sent", members[start : start + MAX_BATCH]))
        return batches

    def _source_and_metadata(self, resource: Resource) -> tuple[dict[str, str], dict[str, str]]:
        cached = self._sources.get(id(resource))
        if cached is None or cached[0] is not resource:
            cached = (
                resource,
                source_from_resource(resource, self._source_host),
                metadata_from_resource(resource, self._project_id, self._provider),
            )
            self._sources[id(resource)] = cached
        return cached[1], cached[2]
