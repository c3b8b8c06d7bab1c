"""The one HTTP transport every sdk-telemetry exporter sends through.

Connection reuse, a timeout on every attempt, a total deadline per send, capped exponential
backoff with jitter on transient failures, and waits that `close()` interrupts.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

import requests

_logger = logging.getLogger(__name__)
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")

#: Statuses worth another attempt; every other non-2xx status is final.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class SendResult:
    """What became of one send: delivered, or why not."""

    ok: bool
    status: int | None = None
    error: str | None = None
    attempts: int = 1

    @property
    def permanent(self) -> bool:
        """True when the server refused the data itself (a non-retryable 4xx)."""
        return self.status is not None and 400 <= self.status < 500 and self.status not in RETRYABLE_STATUSES


class HttpTransport:
    """POSTs bodies to URLs with retries; thread-safe, never raises from `post`."""

    def __init__(
        self,
        headers: Mapping[str, str] | None = None,
        timeout: float = 5.0,
        max_attempts: int = 3,
        backoff_base: float = 0.25,
        backoff_cap: float = 4.0,
    ) -> None:
        self._headers = sendable_headers(headers or {})
        self._timeout = timeout
        self._max_attempts = max(1, max_attempts)
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._closed = threading.Event()
        self._session = requests.Session()
        self._lock = threading.Lock()
        self.requests = 0
        self.retries = 0

    def post(self, url: str, body: bytes, deadline: float | None = None) -> SendResult:
        """Send `body` to `url`; give up at `deadline` (a `time.monotonic()` value) or on close."""
        result = SendResult(ok=False, error="transport closed", attempts=0)
        for attempt in range(1, self._max_attempts + 1):
            if self._closed.is_set():
                return result
            timeout = self._attempt_timeout(deadline)
            if timeout is None:
                return SendResult(ok=False, status=result.status, error="deadline reached", attempts=attempt - 1)
            result, retry_after = self._attempt(url, body, timeout, attempt)
            if result.ok or result.permanent or attempt == self._max_attempts:
                return result
            if not self._wait(self._backoff(attempt, retry_after), deadline):
                return result
            with self._lock:
                self.retries += 1
        return result

    def close(self) -> None:
        """Interrupt waits and refuse further sends."""
        self._closed.set()
        self._session.close()

    def _attempt(self, url: str, body: bytes, timeout: float, attempt: int) -> tuple[SendResult, float | None]:
        with self._lock:
            self.requests += 1
        try:
            response = self._session.post(url, data=body, headers=self._headers, timeout=timeout, allow_redirects=False)
        except Exception as exc:  # RequestException, and ValueError/UnicodeError raised by http.client
            return SendResult(ok=False, error=f"{type(exc).__name__}: {exc}", attempts=attempt), None
        status = response.status_code
        response.close()
        if 200 <= status < 300:
            return SendResult(ok=True, status=status, attempts=attempt), None
        return (
            SendResult(ok=False, status=status, error=f"HTTP {status}", attempts=attempt),
            _retry_after_seconds(response.headers.get("Retry-After")),
        )

    def _attempt_timeout(self, deadline: float | None) -> float | None:
        if deadline is None:
            return self._timeout
        remaining = deadline - time.monotonic()
        if remaining <= 0.01:
            return None
        return min(self._timeout, remaining)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self._backoff_cap)
        delay: float = min(self._backoff_cap, self._backoff_base * 2.0 ** (attempt - 1))
        return delay * random.uniform(0.8, 1.2)

    def _wait(self, seconds: float, deadline: float | None) -> bool:
        """Sleep unless closed or past the deadline; True when a retry may follow."""
        if deadline is not None and time.monotonic() + seconds >= deadline:
            return False
        return not self._closed.wait(seconds)


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


def _retry_after_seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, seconds)
