"""Who is asking: the client address of a request, behind trusted proxies or not.

``X-Forwarded-For`` is believed only when the peer is one of the configured
proxies (``ACAUTH_TRUSTED_PROXIES``); anyone else could write any address there.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import Scope

from acauth.errors import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(spec: str) -> list[Network]:
    """``10.0.0.1, 10.1.0.0/16, ::1``: addresses or networks, comma-separated."""
    networks: list[Network] = []
    for part in spec.split(","):
        item = part.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(
                f"ACAUTH_TRUSTED_PROXIES: not an address or network: {item}"
            ) from None
    return networks


class ClientAddresses:
    """The client address of an ASGI request."""

    def __init__(self, trusted: Iterable[Network] = ()) -> None:
        self.trusted = list(trusted)

    def _trusted(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in net for net in self.trusted)

    def of(self, scope: Scope) -> str:
        """The peer's address; behind a trusted proxy, the nearest untrusted hop it forwarded.

        ``X-Forwarded-For`` is read from the right (the hop the proxy itself
        added) leftwards past trusted proxies; an entry that is not an address
        stops the walk at the last trusted hop.
        """
        peer = scope.get("client")
        host = str(peer[0]) if peer else ""
        if not self.trusted or not self._trusted(host):
            return host
        hops: list[str] = []
        for key, value in scope["headers"]:
            if key == b"x-forwarded-for":
                hops.extend(h.strip() for h in value.decode("latin-1").split(","))
        for hop in reversed([h for h in hops if h]):
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                return host
            host = hop
            if not self._trusted(hop):
                return hop
        return host
