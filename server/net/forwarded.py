"""The client's address, when a reverse proxy we trust forwards its requests.

Behind a proxy every connection comes from the proxy, so the TCP peer says
nothing about who the client is. A proxy names the client in
``X-Forwarded-For``: each hop appends the address it received the request
from, so the header reads ``client, proxy1, proxy2`` and the TCP peer is
the last hop. Only the entries appended by proxies we trust are worth
anything: a client can send the header itself, with any addresses in it,
and a proxy keeps those in front of its own entry.

The rule (``client_address``). The header is read only when the TCP peer is
in ``--trusted-proxy``. Then the entries are walked from the right: while
the address reached so far is a trusted proxy, the entry to its left, which
that proxy wrote, is taken as the next address. The walk stops at the first
address that is not a trusted proxy, and that is the client. An entry that
is not a bare IPv4 or IPv6 address (empty, with a port, ``unknown``, a
name) also stops it, and the client is then the trusted proxy that wrote
the entry: every client behind that proxy shares its address, which is safe,
whereas reading further left would trust what a client may have written.
If every entry is a trusted proxy, the leftmost is the client.

Addresses are kept in the ``ipaddress`` module's canonical text, and an
IPv4-mapped IPv6 address as the IPv4 one, so that one client always gives
one key.

Limits count an IPv6 client by its /64 network (``limit_key``): one
subscriber is usually given a whole /64, and could otherwise take a fresh
address, and a fresh allowance, for every request. IPv4 addresses count
one by one. The price is that hosts sharing a /64 share the limits.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """Networks from values that are each one or more comma-separated
    addresses or CIDR networks; ValueError names the first bad one."""
    networks = []
    for value in values:
        for part in value.split(","):
            if part.strip():
                networks.append(ipaddress.ip_network(part.strip(), strict=False))
    return tuple(networks)


def _parse(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def limit_key(address: str) -> str:
    """The key per-address limits count ``address`` under: itself, or for
    IPv6 its /64 network (written like ``2001:db8:1:2::/64``)."""
    parsed = _parse(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return address if parsed is None else str(parsed)


def _trusted(address: Address, proxies: tuple[Network, ...]) -> bool:
    return any(address in network for network in proxies)


def client_address(
    proxies: tuple[Network, ...], peer: str, forwarded_for: str | None
) -> str:
    """The client's address for a request from TCP peer ``peer``.

    ``forwarded_for`` is the request's X-Forwarded-For (repeated header
    lines joined with commas), or None. See the module's docstring.
    """
    if not proxies or forwarded_for is None:
        return peer
    current = _parse(peer)
    if current is None or not _trusted(current, proxies):
        return peer
    for entry in reversed(forwarded_for.split(",")):
        found = _parse(entry)
        if found is None:
            break  # the trusted hop's own address stands for its client
        current = found
        if not _trusted(current, proxies):
            break
    return str(current)
