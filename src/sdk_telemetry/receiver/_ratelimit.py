"""A per-client rate limit (token buckets by client address) for the routes open without a key."""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict


def client_key(address: str) -> str:
    """Whom a request is counted for: its IPv4 address, or its IPv6 /64 network (one host's share)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False).network_address)
    return str(ip)


class RateLimiter:
    """`rate` requests per second per client, in bursts of up to `burst`; at most `max_clients`
    buckets are kept (the least recently seen is forgotten first, which only ever lets it start
    again with a full bucket). Used from the event loop only: no lock."""

    def __init__(self, rate: float, burst: float, max_clients: int = 65_536) -> None:
        self.rate, self.burst, self.max_clients = rate, burst, max_clients
        self.limited = 0
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def retry_after(self, client: str, now: float | None = None) -> float:
        """0 when `client` may send now (its request is counted), else the seconds until it may."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
            self.limited += 1
        self._buckets[client] = (tokens, now)
        if len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait
