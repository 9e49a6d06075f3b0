"""The address of the person making a request, behind zero or more trusted proxies.

Behind a reverse proxy every request's REMOTE_ADDR is the proxy's, so per-IP rate limits
become one site-wide limit and consent proof records the proxy. Proxies append the address
they received from to X-Forwarded-For; anything to the left of that may be written by the
client and is never believed. The client is the right-most hop that is not one of ours:

- TRUSTED_PROXIES (addresses or networks): walk from REMOTE_ADDR leftwards through
  X-Forwarded-For while the hop is a trusted proxy; the first other hop is the client.
- TRUSTED_PROXY_COUNT = n: exactly n proxies append to the header, so the client is
  the n-th entry from the right (REMOTE_ADDR being the last proxy).

With neither set (the default), X-Forwarded-For is ignored: REMOTE_ADDR is the client.
docs/security.md, "Rate limits and proxies", explains how to choose.
"""

import ipaddress
from functools import lru_cache

from django.conf import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_ip(request) -> str | None:
    """The requesting client's IP address as text, or None when there is no valid one."""
    remote = _valid(request.META.get("REMOTE_ADDR", ""))
    if remote is None:
        return None
    forwarded = [
        hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop
    ]
    networks = _trusted_networks(tuple(settings.TRUSTED_PROXIES))
    if networks:
        return _right_most_untrusted([*forwarded, remote], networks)
    count = settings.TRUSTED_PROXY_COUNT
    if count <= 0:
        return remote
    hops = [*forwarded, remote]
    # Fewer hops than proxies: the request bypassed a proxy; trust only what we saw.
    chosen = hops[-(count + 1)] if len(hops) > count else remote
    return _valid(chosen) or remote


def client_ip_for_axes(request) -> str:
    """django-axes' AXES_CLIENT_IP_CALLABLE: the same address rate limits use."""
    return client_ip(request) or ""


def rate_limit_key(ip: str | None) -> str:
    """What a per-IP limit counts under: the address, or its /64 for IPv6.

    One IPv6 host usually holds a whole /64, so counting single addresses would let
    it pick a fresh one for every request.
    """
    if not ip:
        return "unknown"
    address = ipaddress.ip_address(ip)
    if address.version == 4:
        return str(address)
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.ip_network(f"{address}/64", strict=False))


def _right_most_untrusted(hops: list[str], networks: tuple[Network, ...]) -> str | None:
    for hop in reversed(hops):
        address = _valid(hop)
        if address is None:
            # A malformed hop where a proxy's entry should be: stop at the last good one.
            break
        if not any(ipaddress.ip_address(address) in network for network in networks):
            return address
    # Everything was a trusted proxy (or unreadable): the proxy itself is the client.
    return _valid(hops[-1])


def _valid(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


@lru_cache(maxsize=8)
def _trusted_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)
