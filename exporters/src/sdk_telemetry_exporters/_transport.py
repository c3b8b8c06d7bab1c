"""The one HTTP transport every sdk-telemetry exporter sends through.

Connection reuse, a timeout on every attempt, a total deadline per send, capped exponential
backoff with jitter on transient failures, `Retry-After` (seconds or an HTTP date, clamped),
an idempotency key on every request, 413 answered by splitting the batch, and waits that
`close()` interrupts.
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
import random
import re
import threading
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import urllib3

from sdk_telemetry_exporters.fork import reinit_after_fork

if TYPE_CHECKING:
    from sdk_telemetry_exporters.spool import WireBatch

_logger = logging.getLogger(__name__)
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")

#: Statuses worth another attempt; every other non-2xx status is final.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
PAYLOAD_TOO_LARGE = 413
IDEMPOTENCY_HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class SendResult:
    """What became of one send: delivered, or why not."""

    ok: bool
    status: int | None = None
    error: str | None = None
    attempts: int = 1
    #: Seconds the server asked us to wait (`Retry-After`, clamped), when it did.
    retry_after: float | None = None

    @property
    def permanent(self) -> bool:
        """True when the server answered with a final refusal: a 3xx, or a 4xx/5xx that is not transient."""
        return not self.ok and self.status is not None and self.status not in RETRYABLE_STATUSES


def idempotency_key(body: bytes) -> str:
    """A key that is the same for the same batch (its body), whichever attempt or process sends it."""
    return hashlib.sha256(body).hexdigest()[:32]


class HttpTransport:
    """POSTs bodies to URLs with retries; thread-safe and fork-safe, never raises from `post` or `send`."""

    def __init__(
        self,
        headers: Mapping[str, str] | None = None,
        timeout: float = 5.0,
        max_attempts: int = 3,
        backoff_base: float = 0.25,
        backoff_cap: float = 4.0,
        retry_after_max: float = 30.0,
        max_wait: float | None = None,
    ) -> None:
        self._headers = sendable_headers(headers or {})
        self._timeout = timeout
        self._max_attempts = max(1, max_attempts)
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._retry_after_max = retry_after_max
        #: A server-requested wait longer than this is not waited for here: the send gives up (to the spool).
        self._max_wait = max_wait
        self._closed = threading.Event()
        self._lock = threading.Lock()
        # The proxy variables (HTTP_PROXY, HTTPS_PROXY, NO_PROXY) as they are when the exporter is made.
        self._proxies = urllib.request.getproxies()
        self._pools: dict[tuple[str, str, int | None], urllib3.PoolManager] = {}
        self._routes: dict[str, tuple[Any, str]] = {}
        self.requests = 0
        self.retries = 0
        self.splits = 0
        reinit_after_fork(self, HttpTransport._after_fork)

    def _after_fork(self) -> None:
        """A forked child gets its own connections and locks; the parent's sockets are never reused."""
        self._lock = threading.Lock()
        self._pools = {}
        self._routes = {}
        self.requests = self.retries = self.splits = 0

    def _route(self, url: str) -> tuple[Any, str]:
        """What sends a request to `url` and the target it is given: the origin's connection pool and
        the path, or a proxy manager and the whole URL when the environment names a proxy for it."""
        route = self._routes.get(url)
        if route is not None:
            return route
        parsed = urllib3.util.parse_url(url)
        key = (parsed.scheme or "http", parsed.host or "", parsed.port)
        with self._lock:
            manager = self._pools.get(key)
            if manager is None:
                proxy = self._proxies.get(key[0])
                if proxy and not urllib.request.proxy_bypass(key[1]):
                    manager = urllib3.ProxyManager(proxy, maxsize=4)
                else:
                    manager = urllib3.PoolManager(maxsize=4)
                self._pools[key] = manager
            if isinstance(manager, urllib3.ProxyManager):
                route = (manager, url)
            else:  # the origin's own pool: no URL parsing and pool lookup on every request
                route = (manager.connection_from_url(url), parsed.request_uri)
            if len(self._routes) > 64:
                self._routes.clear()
            self._routes[url] = route
        return route

    @property
    def timeout(self) -> float:
        """The timeout of one attempt, in seconds."""
        return self._timeout

    @property
    def closed(self) -> bool:
        """True once `close()` was called."""
        return self._closed.is_set()

    def post(
        self,
        url: str,
        body: bytes,
        deadline: float | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        max_attempts: int | None = None,
    ) -> SendResult:
        """Send `body` to `url`; give up at `deadline` (a `time.monotonic()` value) or on close.

        Every attempt carries the same `Idempotency-Key` (a hash of the body) unless `headers` name one.
        """
        request_headers = {**self._headers, IDEMPOTENCY_HEADER: idempotency_key(body), **dict(headers or {})}
        limit = self._max_attempts if max_attempts is None else max(1, max_attempts)
        result = SendResult(ok=False, error="transport closed", attempts=0)
        for attempt in range(1, limit + 1):
            if self._closed.is_set():
                return SendResult(ok=False, status=result.status, error="transport closed", attempts=attempt - 1)
            timeout = self._attempt_timeout(deadline)
            if timeout is None:
                return SendResult(ok=False, status=result.status, error="deadline reached", attempts=attempt - 1)
            result = self._attempt(url, body, request_headers, timeout, attempt)
            if result.ok or not _worth_retrying(result) or attempt == limit:
                return result
            delay = self._backoff(attempt, result.retry_after)
            if self._max_wait is not None and delay > self._max_wait:
                return result
            if not self._wait(delay, deadline):
                return result
            with self._lock:
                self.retries += 1
        return result

    def send(
        self, url: str, batch: WireBatch, deadline: float | None = None, *, max_attempts: int | None = None
    ) -> list[tuple[WireBatch, SendResult]]:
        """Send a batch of items; on 413 split it in halves and send each. One result per part sent."""
        result = self.post(url, batch.body(), deadline, max_attempts=max_attempts)
        if result.status == PAYLOAD_TOO_LARGE and len(batch.items) > 1:
            with self._lock:
                self.splits += 1
            first, second = batch.split()
            return self.send(url, first, deadline, max_attempts=max_attempts) + self.send(
                url, second, deadline, max_attempts=max_attempts
            )
        return [(batch, result)]

    def close(self) -> None:
        """Interrupt waits and refuse further sends."""
        self._closed.set()
        for pool in list(self._pools.values()):
            pool.clear()

    def _attempt(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float, attempt: int) -> SendResult:
        with self._lock:
            self.requests += 1
        try:
            opener, target = self._route(url)
            response = opener.urlopen(
                "POST",
                target,
                body=body,
                headers=headers,
                timeout=urllib3.Timeout(connect=timeout, read=timeout),
                retries=False,  # retries are ours, with backoff and Retry-After
                redirect=False,
            )
        except Exception as exc:  # urllib3's HTTPError family, and ValueError/UnicodeError raised by http.client
            return SendResult(ok=False, error=f"{type(exc).__name__}: {exc}", attempts=attempt)
        status = response.status
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if 200 <= status < 300:
            return SendResult(ok=True, status=status, attempts=attempt)
        if retry_after is not None:
            retry_after = min(retry_after, self._retry_after_max)
        return SendResult(ok=False, status=status, error=f"HTTP {status}", attempts=attempt, retry_after=retry_after)

    def _attempt_timeout(self, deadline: float | None) -> float | None:
        if deadline is None:
            return self._timeout
        remaining = deadline - time.monotonic()
        if remaining <= 0.01:
            return None
        return min(self._timeout, remaining)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        delay: float = min(self._backoff_cap, self._backoff_base * 2.0 ** (attempt - 1))
        return delay * random.uniform(0.5, 1.0)

    def _wait(self, seconds: float, deadline: float | None) -> bool:
        """Sleep unless closed or past the deadline; True when a retry may follow."""
        if deadline is not None and time.monotonic() + seconds >= deadline:
            return False
        return not self._closed.wait(seconds)


def _worth_retrying(result: SendResult) -> bool:
    """Connection errors and the transient statuses; never a 3xx, a 413 or a refusal."""
    return result.status is None or result.status in RETRYABLE_STATUSES


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` value: delta-seconds or an HTTP date; None when absent or invalid."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def sendable_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """`headers` without those HTTP cannot carry (bad name, CR/LF/NUL, non-Latin-1), each dropped with a warning."""
    result: dict[str, str] = {}
    for name, value in headers.items():
        text = str(value)
        try:
            text.encode("latin-1")
            valid = bool(_TOKEN.fullmatch(str(name))) and not any(c in text for c in "\r\n\0")
        except UnicodeEncodeError:
            valid = False
        if valid:
            result[str(name)] = text
        else:
            _logger.warning("sdk-telemetry: ignoring header %r: not a valid HTTP header", name)
    return result
