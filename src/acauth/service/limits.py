"""Per-client limits on logins: a token bucket per client address.

Held in memory, per process: with ``--workers N`` or several instances each
keeps its own buckets, so an address gets up to N times the rate in all.
"""

from __future__ import annotations

import ipaddress
import math

from acauth.clock import Clock
from acauth.errors import RateLimited


def bucket_key(address: str) -> str:
    """The bucket of an address: IPv6 by its /64 (one host usually holds a whole /64)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class RateLimiter:
    """``burst`` attempts at once per client address, then ``rate_per_s`` a second.

    A ``rate_per_s`` of 0 turns the limit off. At most ``max_clients`` buckets
    are kept: full ones (idle clients) are forgotten first.
    """

    def __init__(
        self, rate_per_s: float, burst: int, clock: Clock, *, max_clients: int = 100_000
    ) -> None:
        self.rate_per_ms = rate_per_s / 1000
        self.burst = float(burst)
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, int]] = {}  # key -> (tokens, at_ms)

    def __len__(self) -> int:
        """How many addresses it remembers."""
        return len(self._buckets)

    def take(self, address: str) -> None:
        """Spend one attempt of ``address``; :class:`RateLimited` if it has none left."""
        if self.rate_per_ms <= 0:
            return
        now = self.clock.now_ms()
        key = bucket_key(address)
        tokens = self._tokens(key, now)
        if tokens < 1:
            wait_s = (1 - tokens) / self.rate_per_ms / 1000
            raise RateLimited(retry_after_s=max(1, math.ceil(wait_s)))
        self._buckets[key] = (tokens - 1, now)
        if len(self._buckets) > self.max_clients:
            self._forget(now)

    def _tokens(self, key: str, now: int) -> float:
        found = self._buckets.get(key)
        if found is None:
            return self.burst
        tokens, at = found
        return min(self.burst, tokens + max(0, now - at) * self.rate_per_ms)

    def _forget(self, now: int) -> None:
        full = [k for k in self._buckets if self._tokens(k, now) >= self.burst]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) > self.max_clients:  # all busy: the oldest quarter goes
            for key in list(self._buckets)[: len(self._buckets) // 4]:
                del self._buckets[key]
