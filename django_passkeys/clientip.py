"""The client's IP address: ``REMOTE_ADDR``, or ``X-Forwarded-For`` through trusted proxies only.

One function answers "who is the peer" for the audit trail and the rate limits alike, so the two
never disagree. ``X-Forwarded-For`` is attacker-controlled unless the hop that sent it is one of
``PASSKEYS_TRUSTED_PROXIES``; it is read right to left and the first address that is not a
trusted proxy is the client (an attacker can prepend anything, but cannot remove what the
trusted proxies appended).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

from django.http import HttpRequest

from django_passkeys.conf import conf

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: IPv6 clients are grouped by their /64: one subscriber usually gets a whole /64, so keying on
#: the full address would let a single host rotate through 2**64 rate-limit buckets.
IPV6_PREFIX = 64


@functools.lru_cache(maxsize=4096)
def parse_ip(value: str) -> IPAddress | None:
    """``value`` as an address (IPv4-mapped IPv6 unwrapped to IPv4), or ``None`` if invalid.

    Memoized: a request asks for its peer several times (rate limits, audit, session index),
    and the answer for a string never changes (addresses are immutable values).
    """
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def trusted_networks() -> list[IPNetwork]:
    """``PASSKEYS_TRUSTED_PROXIES`` as networks (a bare address is a /32 or /128)."""
    return [ipaddress.ip_network(entry, strict=False) for entry in conf.PASSKEYS_TRUSTED_PROXIES]


def _is_trusted(address: IPAddress, networks: Iterable[IPNetwork]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def client_address(request: HttpRequest) -> IPAddress | None:
    """The client's address, or ``None`` when ``REMOTE_ADDR`` is missing or invalid."""
    peer = parse_ip(str(request.META.get("REMOTE_ADDR") or ""))
    if peer is None:
        return None
    networks = trusted_networks()
    if not networks or not _is_trusted(peer, networks):
        return peer
    forwarded = str(request.META.get("HTTP_X_FORWARDED_FOR") or "")
    client = peer
    for hop in reversed([part for part in forwarded.split(",") if part.strip()]):
        address = parse_ip(hop)
        if address is None:
            # A trusted proxy never writes garbage, so this entry came from the client: stop at
            # the last address a trusted hop vouched for rather than trusting anything further.
            return client
        client = address
        if not _is_trusted(address, networks):
            return address
    return client


def client_ip(request: HttpRequest) -> str | None:
    """The client's address as text (for the audit trail), or ``None``."""
    address = client_address(request)
    return str(address) if address is not None else None


def ratelimit_ip_key(request: HttpRequest) -> str | None:
    """The rate-limit bucket of the client: its IPv4 address, its IPv6 /64, or ``None``.

    ``None`` when there is no usable address (``REMOTE_ADDR`` empty, as behind a proxy on a Unix
    socket, or invalid): never one shared "unknown" bucket, which a single client could use up
    for everyone. :func:`django_passkeys.ratelimits.enforce` decides what to count instead.
    """
    address = client_address(request)
    if address is None:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        network = ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False)
        return f"{network.network_address}/{IPV6_PREFIX}"
    return str(address)
