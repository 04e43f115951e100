"""Who is the client? The socket peer, unless that peer is one of our own reverse proxies.

``X-Forwarded-For`` is a list that every proxy appends the address it saw to; anyone can send it with
made-up entries, so only the entries added by proxies we run can be believed. Walking the list from
the right and skipping our own proxies, the first address left is the client (MDN "X-Forwarded-For",
"Selecting an IP address"; the same rule as uvicorn's ``ProxyHeadersMiddleware``). A peer that is not
a trusted proxy is the client itself, whatever headers it sends.

The app does this itself (see ``webshop.observability.middleware``), so the rule and its setting
(``WEBSHOP_TRUSTED_PROXIES``) are the same under uvicorn, another server or the test client; uvicorn
runs without its own proxy-header rewriting.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _host_of(entry: str) -> str:
    """The address part of one ``X-Forwarded-For`` entry: ``1.2.3.4``, ``1.2.3.4:5678``, ``[::1]:5678``, ``::1``."""
    entry = entry.strip().strip('"')
    if entry.startswith("["):
        return entry[1 : entry.find("]")] if "]" in entry else entry
    if entry.count(":") == 1:
        return entry.partition(":")[0]
    return entry


class TrustedProxies:
    """The set of reverse proxies whose forwarding headers are believed.

    Args:
        networks: IP addresses or CIDR networks (``10.0.0.0/8``, ``::1``); an empty list trusts nobody.
    """

    def __init__(self, networks: Iterable[str]) -> None:
        self.networks: tuple[IPNetwork, ...] = tuple(ipaddress.ip_network(n, strict=False) for n in networks)
        self.is_trusted = lru_cache(maxsize=4096)(self._is_trusted)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def _is_trusted(self, host: str | None) -> bool:
        """True when ``host`` (a socket address) is one of the trusted proxies."""
        if not host or not self.networks:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def client_address(self, peer: str | None, forwarded_for: list[str]) -> str | None:
        """The client's address for a connection from ``peer`` carrying ``X-Forwarded-For`` values.

        Args:
            peer: The socket peer's address (``scope["client"][0]``), or ``None`` (a Unix socket).
            forwarded_for: Every ``X-Forwarded-For`` header value, in the order received.

        Returns:
            ``peer`` unless it is a trusted proxy; otherwise the right-most forwarded address that is
            not a trusted proxy (or the left-most one when all are), or ``peer`` when the header is
            missing or holds no valid IP address.
        """
        if not self.is_trusted(peer) or not forwarded_for:
            return peer
        hops = [_host_of(item) for value in forwarded_for for item in value.split(",") if item.strip()]
        for hop in reversed(hops):
            if not self.is_trusted(hop):
                return hop if _is_ip(hop) else peer
        return hops[0] if hops and _is_ip(hops[0]) else peer


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
