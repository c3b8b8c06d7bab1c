"""The Composio-style invocation wire format, as an OpenTelemetry span exporter.

Successful invocations go as JSON arrays (at most 100 per request) to
`POST {base}/metrics/invocations`; each failed invocation goes alone to `POST {base}/errors`.
An absent field is omitted, never `null`.
"""

from __future__ import annotations

import logging
import platform
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode

from sdk_telemetry_exporters import attributes as attr
from sdk_telemetry_exporters._env import ExporterSettings, otlp_endpoint_configured
from sdk_telemetry_exporters._transport import HttpTransport, SendResult
from sdk_telemetry_exporters.fallback import CircuitBreaker, OtlpFallback

_logger = logging.getLogger(__name__)

MAX_BATCH = 100
SOURCE_SERVICES = frozenset({"sdk", "apollo", "hermes", "thermos"})
SOURCE_ENVIRONMENTS = frozenset({"development", "production", "ci", "staging", "test"})
_ENVIRONMENT_ALIASES = {"dev": "development", "prod": "production", "stage": "staging", "testing": "test"}


def source_from_resource(resource: Resource) -> dict[str, str]:
    """The payload's `source` object: enum fields hold one of their values or are left out."""
    attrs = resource.attributes
    source: dict[str, str] = {"language": "python"}
    service = str(attrs.get(attr.SOURCE_SERVICE, "sdk"))
    if service in SOURCE_SERVICES:
        source["service"] = service
    environment = str(attrs.get(attr.DEPLOYMENT_ENVIRONMENT, "")).strip().lower()
    environment = _ENVIRONMENT_ALIASES.get(environment, environment)
    if environment in SOURCE_ENVIRONMENTS:
        source["environment"] = environment
    for key, resource_key in (("version", attr.SERVICE_VERSION), ("host", attr.HOST_NAME)):
        value = attrs.get(resource_key)
        if value is not None and str(value):
            source[key] = str(value)
    source["platform"] = str(attrs.get(attr.OS_TYPE) or platform.system().lower())
    return source


def metadata_from_resource(
    resource: Resource, project_id: str | None = None, provider: str | None = None
) -> dict[str, str]:
    """The payload's `metadata` object (`projectId`, `provider`), empty when neither is known."""
    metadata: dict[str, str] = {}
    project = project_id or resource.attributes.get(attr.PROJECT_ID)
    provider_name = provider or resource.attributes.get(attr.PROVIDER)
    if project:
        metadata["projectId"] = str(project)
    if provider_name:
        metadata["provider"] = str(provider_name)
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
    error_type = str(attrs.get(attr.ERROR_TYPE) or exception.get("exception.type") or "Error")
    error: dict[str, str] = {"name": error_type.rsplit(".", 1)[-1]}
    for key, value in (
        ("code", attrs.get(attr.ERROR_CODE)),
        ("errorId", attrs.get(attr.ERROR_ID)),
        ("message", exception.get("exception.message") or span.status.description),
        ("stack", exception.get("exception.stacktrace")),
    ):
        if value is not None and value != "":
            error[key] = str(value)
    return error


def _without_nulls(value: Any) -> Any:
    """`value` with every `None` left out of objects and arrays (the schema rejects `null`)."""
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value if item is not None]
    return value


def invocation_payload(span: ReadableSpan, source: Mapping[str, str], metadata: Mapping[str, str]) -> dict[str, Any]:
    """Map one finished invocation span onto the wire payload."""
    payload: dict[str, Any] = {"functionName": span.name}
    if span.start_time is not None:
        payload["timestamp"] = span.start_time / 1e9
        if span.end_time is not None:
            payload["durationMs"] = (span.end_time - span.start_time) / 1e6
    props = (span.attributes or {}).get(attr.PROPS)
    if props:
        try:
            payload["props"] = _without_nulls(orjson.loads(str(props)))
        except orjson.JSONDecodeError:
            payload["props"] = {"value": str(props)}
    if source:
        payload["source"] = dict(source)
    if metadata:
        payload["metadata"] = dict(metadata)
    error = error_object(span)
    if error is not None:
        payload["error"] = error
    return payload


class ComposioSpanExporter(SpanExporter):
    """Exports invocation spans in the Composio-style format; falls back to OTLP when configured.

    Built with no arguments it reads `SDK_TELEMETRY_*` from the environment. With no endpoint it
    sends nothing to any host (and uses the OTLP fallback, if one is configured).
    """

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
    ) -> None:
        self.stats_lock = threading.Lock()
        self.counts: dict[str, int] = {
            "invocations_sent": 0,
            "errors_sent": 0,
            "requests_failed": 0,
            "items_failed": 0,
            "items_rejected": 0,
            "items_to_fallback": 0,
            "non_invocation_spans": 0,
        }
        self.last_error: str | None = None
        self.last_error_time: float | None = None
        try:
            env = settings or ExporterSettings.from_env()
            base = (endpoint or env.endpoint or "").rstrip("/")
            self._base = base or None
            request_headers = {"Content-Type": "application/json", **dict(env.headers), **dict(headers or {})}
            key = api_key or env.api_key
            if key:
                request_headers["X-API-Key"] = key
            self._timeout = timeout or env.timeout
            self._transport = HttpTransport(request_headers, timeout=self._timeout)
            self._project_id = project_id
            self._provider = provider
            if fallback is None and env.otlp_fallback and otlp_endpoint_configured():
                fallback = OtlpFallback.from_env()
            self._fallback = fallback
        except Exception:  # a constructor must never raise into the host program
            _logger.exception("sdk-telemetry: composio exporter misconfigured; it will send nothing")
            self._base = None
            self._timeout = 5.0
            self._transport = HttpTransport(timeout=self._timeout)
            self._fallback = None
        self._breaker = CircuitBreaker()
        self._sources: dict[int, tuple[Resource, dict[str, str], dict[str, str]]] = {}
        if self._base is None and self._fallback is None:
            _logger.warning("sdk-telemetry: composio exporter has no endpoint (set SDK_TELEMETRY_ENDPOINT)")

    @property
    def endpoint(self) -> str | None:
        """The base URL, without a trailing slash, or None when unset."""
        return self._base

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Send errors first (one request each), then successes in arrays of at most 100."""
        deadline = time.monotonic() + self._timeout * 2
        errors: list[tuple[ReadableSpan, dict[str, Any]]] = []
        invocations: list[tuple[ReadableSpan, dict[str, Any]]] = []
        for span in spans:
            if not is_invocation(span):
                self._count("non_invocation_spans")
                continue
            try:
                payload = invocation_payload(span, *self._source_and_metadata(span.resource))
            except Exception:
                _logger.exception("sdk-telemetry: could not map span %r", span.name)
                self._count("items_failed")
                continue
            (errors if is_error_report(span) else invocations).append((span, payload))
        all_ok = True
        for span, payload in errors:
            all_ok &= self._deliver("/errors", [span], orjson.dumps(payload), "errors_sent", deadline)
        for start in range(0, len(invocations), MAX_BATCH):
            chunk = invocations[start : start + MAX_BATCH]
            body = orjson.dumps([payload for _, payload in chunk])
            all_ok &= self._deliver(
                "/metrics/invocations", [span for span, _ in chunk], body, "invocations_sent", deadline
            )
        return SpanExportResult.SUCCESS if all_ok else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        """Interrupt any retry wait and release connections."""
        self._transport.close()
        if self._fallback is not None:
            self._fallback.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is held here between exports."""
        return True

    def stats(self) -> dict[str, Any]:
        """Counters of what was sent, failed, rejected and diverted to the fallback."""
        with self.stats_lock:
            result: dict[str, Any] = dict(self.counts)
            result["last_error"] = self.last_error
            result["last_error_time"] = self.last_error_time
        result["requests"] = self._transport.requests
        result["retries"] = self._transport.retries
        if self._fallback is not None:
            result["fallback_sent"] = self._fallback.sent
            result["fallback_failed"] = self._fallback.failed
        return result

    def _deliver(self, path: str, spans: list[ReadableSpan], body: bytes, counter: str, deadline: float) -> bool:
        if self._base is not None and not self._breaker.is_open:
            result = self._transport.post(self._base + path, body, deadline)
            self._breaker.record(result.ok)
            if result.ok:
                self._count(counter, len(spans))
                return True
            self._record_failure(path, result, len(spans))
            if result.permanent and result.status != 404:
                self._count("items_rejected", len(spans))
                return False
        if self._fallback is not None:
            self._count("items_to_fallback", len(spans))
            return self._fallback.export(spans)
        self._count("items_failed", len(spans))
        return False

    def _record_failure(self, path: str, result: SendResult, items: int) -> None:
        with self.stats_lock:
            self.counts["requests_failed"] += 1
            self.last_error = f"POST {path}: {result.error} after {result.attempts} attempt(s), {items} item(s)"
            self.last_error_time = time.time()
        _logger.debug("sdk-telemetry: %s", self.last_error)

    def _count(self, key: str, n: int = 1) -> None:
        with self.stats_lock:
            self.counts[key] += n

    def _source_and_metadata(self, resource: Resource) -> tuple[dict[str, str], dict[str, str]]:
        cached = self._sources.get(id(resource))
        if cached is None or cached[0] is not resource:
            cached = (
                resource,
                source_from_resource(resource),
                metadata_from_resource(resource, self._project_id, self._provider),
            )
            self._sources[id(resource)] = cached
        return cached[1], cached[2]
