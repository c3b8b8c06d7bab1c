"""Delivery of wire batches, shared by the HTTP exporters: send, fall back, spool, resend, count.

`delivery_for` builds an exporter's delivery from its arguments and settings, and
`DeliveringExporter` gives both exporters the methods that only delegate to it.

A batch goes to the primary endpoint through the transport (retries, `Retry-After`, 413
splitting). What the endpoint refuses for good is dropped and counted. What it could not take
now goes to the OTLP fallback when there is one, else to the disk spool. Spooled batches are
resent, oldest first, whenever the endpoint answers again, by this process or the next.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from sdk_telemetry_exporters._transport import HttpTransport, SendResult
from sdk_telemetry_exporters.config import ENDPOINT, ExporterSettings, endpoint_problem, otlp_endpoint_configured
from sdk_telemetry_exporters.fallback import CircuitBreaker, OtlpFallback
from sdk_telemetry_exporters.fork import reinit_after_fork
from sdk_telemetry_exporters.notices import warn
from sdk_telemetry_exporters.spool import Spool, WireBatch, spool_name

_logger = logging.getLogger(__name__)

#: Longest pause between two attempts to resend the spool while the endpoint stays down.
RESEND_BACKOFF_CAP = 30.0


class Delivery:
    """Sends `WireBatch`es to `base + batch.path`; thread-safe; never raises."""

    def __init__(
        self,
        base: str | None,
        transport: HttpTransport,
        item_id: Callable[[Any], str],
        spool: Spool | None = None,
        fallback: OtlpFallback | None = None,
        breaker: CircuitBreaker | None = None,
        resend_backoff: float = 0.25,
    ) -> None:
        self.base = base
        self.transport = transport
        self.spool = spool
        self.fallback = fallback
        self.breaker = breaker or CircuitBreaker()
        self._item_id = item_id
        self._lock = threading.Lock()
        self._resend_lock = threading.Lock()
        self.counts: collections.Counter[str] = collections.Counter()
        self.last_error: str | None = None
        self.last_error_time: float | None = None
        self.last_success_time: float | None = None
        #: When the current run of failures began (None while delivering); with no endpoint, since creation.
        self.failing_since: float | None = None
        #: What keeps this delivery from sending at all (no endpoint), or None.
        self.problem: str | None = None
        if base is None and fallback is None:
            self.problem = "no endpoint (SDK_TELEMETRY_ENDPOINT is not set): nothing is sent"
            self.failing_since = time.time()
        self._taken: set[str] = set()  # ids of the current export already delivered or spooled
        self._resume_at = 0.0  # no resend before this `time.monotonic()`
        self._resend_failures = 0
        self._resend_backoff = resend_backoff
        reinit_after_fork(self, Delivery._after_fork)

    def _after_fork(self) -> None:
        """The child has fresh locks, and nothing of the parent's current export."""
        self._lock = threading.Lock()
        self._resend_lock = threading.Lock()
        self._taken = set()
        self.counts = collections.Counter()

    # --- sending ---------------------------------------------------------------------------

    def begin_export(self) -> None:
        """A new export starts: forget which items of the previous one were taken care of."""
        with self._lock:
            self._taken.clear()

    def deliver(
        self, batch: WireBatch, spans: Sequence[ReadableSpan] | None, deadline: float, sent_counter: str
    ) -> bool:
        """Send one batch; True when every item reached the endpoint (or the fallback)."""
        # The breaker only matters when there is a fallback to turn to; without one, every batch tries.
        skip = self.fallback is not None and self.breaker.is_open
        if self.base is None or skip or self.transport.closed:
            return self._divert([(batch, None)], spans, deadline)
        parts = self.transport.send(self.base + batch.path, batch, deadline)
        delivered = sum(len(part.items) for part, result in parts if result.ok)
        self._count("retried_items", sum(max(0, result.attempts - 1) * len(part.items) for part, result in parts))
        # A refusal of the data is an answer: only an endpoint that does not answer trips the breaker.
        self.breaker.record(delivered > 0 or all(result.ok or result.permanent for _, result in parts))
        if delivered:
            self._succeeded()
            self._count(sent_counter, delivered)
            self._mark(item for part, result in parts if result.ok for item in part.items)
            self._resend_failures = 0
            self._resume_at = 0.0
        failed = [(part, result) for part, result in parts if not result.ok]
        for part, result in failed:
            self._record_failure(batch.path, result, len(part.items))
        rejected = [(part, result) for part, result in failed if result.permanent and result.status != 404]
        for part, _ in rejected:
            self._count("items_rejected", len(part.items))
            self._mark(part.items)
        if any(result.retry_after for _, result in failed):
            wait = max(result.retry_after or 0.0 for _, result in failed)
            self._resume_at = max(self._resume_at, time.monotonic() + wait)
        rest = [(part, result) for part, result in failed if not (result.permanent and result.status != 404)]
        return not rejected and self._divert(rest, spans, deadline)

    def _divert(
        self,
        parts: Sequence[tuple[WireBatch, SendResult | None]],
        spans: Sequence[ReadableSpan] | None,
        deadline: float,
    ) -> bool:
        """Parts the endpoint did not take: to the fallback, else to the spool (a 404 is not spooled)."""
        if not parts:
            return True
        if self.fallback is not None and spans is not None and not self.transport.closed:
            ids = {self._item_id(item) for part, _ in parts for item in part.items}
            chosen = [span for span in spans if span_event_id(span) in ids]
            self._count("items_to_fallback", len(chosen))
            if self.fallback.export(chosen):
                self._mark(item for part, _ in parts for item in part.items)
                return True
        for part, result in parts:
            fresh = self._claim_items(part.items)
            gone = result is not None and result.status == 404
            if gone or self.base is None or self.spool is None:
                self._count("items_failed", len(fresh))
            elif fresh:
                self.spool.put(replace(part, items=tuple(fresh)))  # a batch that does not fit is counted there
        return False

    # --- spooling --------------------------------------------------------------------------

    def spool_batches(self, batches: Iterable[WireBatch]) -> int:
        """Spool what is not yet taken care of; the number of items accounted for (spooled now or before, or sent)."""
        accounted = 0
        for batch in batches:
            fresh = self._claim_items(batch.items)
            accounted += len(batch.items) - len(fresh)
            if fresh and self.spool is not None and self.spool.put(replace(batch, items=tuple(fresh))):
                accounted += len(fresh)
        return accounted

    def _claim_items(self, items: Sequence[Any]) -> list[Any]:
        with self._lock:
            fresh = [item for item in items if self._item_id(item) not in self._taken]
            self._taken.update(self._item_id(item) for item in fresh)
        return fresh

    def _mark(self, items: Iterable[Any]) -> None:
        with self._lock:
            self._taken.update(self._item_id(item) for item in items)

    # --- resending -------------------------------------------------------------------------

    def resend(self, deadline: float, max_batches: int = 1000) -> int:
        """Resend spooled batches, oldest first, until one fails or `deadline`; the number of items delivered."""
        if self.spool is None or self.base is None or self.transport.closed:
            return 0
        if time.monotonic() < self._resume_at or not self._resend_lock.acquire(blocking=False):
            return 0
        delivered = 0
        try:
            for _ in range(max_batches):
                if deadline - time.monotonic() <= 0.05 or self.transport.closed:
                    break
                claim = self.spool.claim()
                if claim is None:
                    break
                parts = self.transport.send(self.base + claim.batch.path, claim.batch, deadline, max_attempts=1)
                sent = sum(len(part.items) for part, result in parts if result.ok)
                delivered += sent
                self.breaker.record(bool(sent) or all(result.ok or result.permanent for _, result in parts))
                if sent:
                    self._succeeded()
                rejected = [part for part, result in parts if result.permanent]
                retry = [(part, result) for part, result in parts if not result.ok and not result.permanent]
                for part, result in retry + [(part, result) for part, result in parts if result.permanent]:
                    self._record_failure(claim.batch.path + " (resend)", result, len(part.items))
                for part in rejected:
                    self.spool.count("dropped_rejected", len(part.items))
                if not retry:
                    self.spool.done(claim, sent)
                elif not sent and not rejected:
                    self.spool.release(claim)
                else:
                    self.spool.replace_with(claim, [part for part, _ in retry], delivered=sent)
                if retry:
                    self._back_off([result for _, result in retry])
                    break
                self._resend_failures = 0
        except Exception:  # never into the worker thread
            _logger.exception("sdk-telemetry: resending the spool failed")
        finally:
            self._resend_lock.release()
        return delivered

    def _back_off(self, results: Sequence[SendResult]) -> None:
        self._resend_failures += 1
        wait = min(RESEND_BACKOFF_CAP, self._resend_backoff * 2.0**self._resend_failures)
        asked = max((result.retry_after or 0.0) for result in results)
        self._resume_at = time.monotonic() + max(wait, asked)

    # --- accounting ------------------------------------------------------------------------

    def _record_failure(self, path: str, result: SendResult, items: int) -> None:
        with self._lock:
            self.counts["requests_failed"] += 1
            self.last_error = f"POST {path}: {result.error} after {result.attempts} attempt(s), {items} item(s)"
            self.last_error_time = time.time()
            if self.failing_since is None:
                self.failing_since = self.last_error_time
            error = self.last_error
        _logger.debug("sdk-telemetry: %s", error)
        warn(f"delivery:{id(self)}", "%s failed; what it could not send is spooled or counted as lost", error)

    def _succeeded(self) -> None:
        with self._lock:
            self.last_success_time = time.time()
            if self.problem is None:
                self.failing_since = None

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counts[key] += n

    def stats(self) -> dict[str, Any]:
        """Counters of this delivery, the transport's requests and retries, and the spool's."""
        with self._lock:
            result: dict[str, Any] = dict(self.counts)
            last_error, last_error_time = self.last_error, self.last_error_time
        spool = self.spool.stats() if self.spool is not None else {}
        if (
            self.spool is not None
            and self.spool.last_error_time
            and (last_error_time or 0) < self.spool.last_error_time
        ):
            last_error, last_error_time = self.spool.last_error, self.spool.last_error_time
        result["requests"] = self.transport.requests
        result["retried"] = result["retries"] = self.transport.retries
        result.setdefault("retried_items", 0)
        result["splits"] = self.transport.splits
        result["spooled"] = spool.get("spooled", 0)
        result["resent"] = spool.get("resent", 0)
        result["spool_pending"] = spool.get("pending_batches", 0)
        result["spool_corrupt"] = spool.get("corrupt", 0)
        dropped = {key[len("dropped_") :]: value for key, value in spool.items() if key.startswith("dropped_")}
        if result.get("items_rejected"):
            dropped["rejected"] = dropped.get("rejected", 0) + result["items_rejected"]
        if result.get("items_failed"):
            dropped["undeliverable"] = result["items_failed"]
        result["dropped"] = dropped
        if self.fallback is not None:
            result["fallback_sent"] = self.fallback.sent
            result["fallback_failed"] = self.fallback.failed
        result["last_error"] = last_error
        result["last_error_time"] = last_error_time
        result["last_success_time"] = self.last_success_time
        result["failing_since"] = self.failing_since
        if self.problem is not None:
            result["problem"] = self.problem
        return result


def delivery_for(
    name: str,
    item_id: Callable[[Any], str],
    settings: ExporterSettings | None = None,
    *,
    endpoint: str | None = None,
    api_key: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
    fallback: OtlpFallback | None = None,
    otlp_fallback: bool = False,
) -> Delivery:
    """The delivery of exporter `name`: the arguments first, then `settings` (by default from the environment).

    JSON bodies with the API key in `X-API-Key`; the transport's retries and backoff from the
    settings; a spool in the exporter's own sub-directory (per endpoint and headers) when
    spooling is on. `otlp_fallback`: when no `fallback` is given, use the OTLP one if the settings
    allow it and an OTLP endpoint is configured. Never raises: a misconfiguration is logged and
    gives a delivery that sends nothing.
    """
    try:
        env = settings or ExporterSettings.from_env()
        base = (endpoint or env.endpoint or "").rstrip("/") or None
        invalid = endpoint_problem(base)
        if invalid is not None:
            source = "endpoint" if endpoint else ENDPOINT
            invalid = f"{source}={base!r} {invalid}: nothing is sent"
            warn(f"endpoint:{name}:{base}", "%s exporter: %s and everything it is given is dropped", name, invalid)
            base = None
        request_headers = {"Content-Type": "application/json", **dict(env.headers), **dict(headers or {})}
        key = api_key or env.api_key
        if key:
            request_headers["X-API-Key"] = key
        spool = None
        if env.spool_dir is not None and base is not None:
            directory = env.spool_dir / spool_name(name, base, request_headers)
            spool = Spool(directory, env.spool_max_bytes, env.spool_max_age)
        transport = HttpTransport(
            request_headers,
            timeout=timeout or env.timeout,
            max_attempts=env.max_attempts,
            backoff_base=env.retry_base,
            backoff_cap=env.retry_cap,
            retry_after_max=env.retry_after_max,
            # With a spool, a long Retry-After sends the batch to disk instead of holding the worker.
            max_wait=env.retry_cap if spool is not None else None,
        )
        if otlp_fallback and fallback is None and env.otlp_fallback and otlp_endpoint_configured():
            fallback = OtlpFallback.from_env()
        delivery = Delivery(base, transport, item_id, spool, fallback, resend_backoff=env.retry_base)
        if invalid is not None and delivery.fallback is None:
            delivery.problem = invalid
    except Exception:  # a constructor must never raise into the host program
        _logger.exception("sdk-telemetry: %s exporter misconfigured; it will send nothing", name)
        delivery = Delivery(None, HttpTransport(timeout=5.0), item_id)
    if delivery.base is None and delivery.fallback is None and (delivery.problem or "").startswith("no endpoint"):
        warn(
            f"no-endpoint:{name}",
            "%s exporter has no endpoint (set SDK_TELEMETRY_ENDPOINT); everything it is given is dropped",
            name,
        )
    return delivery


class DeliveringExporter:
    """What the HTTP exporters do the same way, through their `Delivery`."""

    _delivery: Delivery

    @property
    def spool_directory(self) -> str | None:
        """Where undelivered batches are kept, or None when spooling is off."""
        spool = self._delivery.spool
        return None if spool is None else str(spool.directory)

    def resend_spooled(self, timeout: float | None = None) -> int:
        """Resend spooled batches now (bounded by `timeout` seconds, else the transport's); the items delivered."""
        transport_timeout = self._delivery.transport.timeout
        return self._delivery.resend(time.monotonic() + (transport_timeout if timeout is None else timeout))

    def shutdown(self) -> None:
        """Interrupt any retry wait and release connections (and the OTLP fallback's)."""
        self._delivery.transport.close()
        if self._delivery.fallback is not None:
            self._delivery.fallback.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is held here between exports."""
        return True


def span_event_id(span: ReadableSpan) -> str:
    """The client-generated id of a span's event (48 hex digits: trace id, then span id), stable on every resend."""
    context = span.context
    if context is None:
        return "0" * 48
    return f"{context.trace_id:032x}{context.span_id:016x}"
