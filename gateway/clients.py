"""Who the client is: the address a request is accounted to, and the client key that budgets,
the cache scope and the logs know it by.

Only `X-Forwarded-For` is ever consulted, and only when the TCP peer is a trusted proxy.
`Forwarded` and `X-Real-IP` are deliberately not parameters: a header a client can set freely
must never choose whose budget a request spends.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

from settings import IPNetwork

IPAddress = IPv4Address | IPv6Address

# Returned when the server has no peer address at all (e.g. a Unix socket); such
# requests share one budget rather than being unlimited.
UNKNOWN_PEER = "unknown"
# Client keys of load-test identities (LOADTEST_KEYS): budgets apart from every other client's.
LOADTEST_CLIENT = "loadtest:"


def parse_ip(text: str | None) -> IPAddress | None:
    """Parse one address as found in a peer or an XFF hop; None when it is not one.

    Accepts `1.2.3.4:port`, `[v6]` and `[v6]:port` because some proxies append
    the port. IPv4-mapped IPv6 (`::ffff:1.2.3.4`) becomes plain IPv4 so that a
    dual-stack socket and an IPv4 socket give one client one identity.
    """
    if not text:
        return None
    text = _strip_port(text.strip())
    try:
        address = ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _strip_port(text: str) -> str:
    if text.startswith("["):
        # "[v6]" or "[v6]:port"; anything after "]" other than ":port" is garbage
        # and is left in place so that parsing fails.
        host, _, rest = text[1:].partition("]")
        if rest == "" or (rest.startswith(":") and rest[1:].isdigit()):
            return host
        return text
    if text.count(":") == 1:  # IPv4 with a port; bare IPv6 has two or more colons
        return text.partition(":")[0]
    return text


def is_trusted(address: IPAddress, trusted_proxies: Sequence[IPNetwork]) -> bool:
    # An IPv4 address is simply never "in" an IPv6 network (no exception).
    return any(address in network for network in trusted_proxies)


def client_address(
    peer: str | None,
    forwarded_for: str | None,
    trusted_proxies: Sequence[IPNetwork],
) -> str:
    """The address a request is accounted to.

    - The peer, unless the peer is in `trusted_proxies`.
    - Behind a trusted peer: walk `X-Forwarded-For` (several header values may be
      joined with ","), right to left, and return the first hop that is not trusted.
    - Every hop trusted: the left-most hop.
    - A hop that is not an address (garbage, empty) stops the walk and the last
      address already walked is returned: the peer or a trusted proxy, never the
      garbage nor anything left of it, which only the client could have written.
      So a client behind a trusted proxy can at worst get the proxy's address,
      which it shares with others; it can never pick an arbitrary identity.

    A peer that is not an IP address (a Unix socket, a test client name) is returned
    as given, or `"unknown"` when missing.
    """
    peer_ip = parse_ip(peer)
    if peer_ip is None:
        return peer.strip() if peer and peer.strip() else UNKNOWN_PEER
    if not forwarded_for or not is_trusted(peer_ip, trusted_proxies):
        return str(peer_ip)
    return str(_walk_forwarded_for(peer_ip, forwarded_for, trusted_proxies))


def _walk_forwarded_for(
    peer_ip: IPAddress, forwarded_for: str, trusted_proxies: Sequence[IPNetwork]
) -> IPAddress:
    last = peer_ip
    for hop in reversed(forwarded_for.split(",")):
        hop_ip = parse_ip(hop)
        if hop_ip is None:
            break
        if not is_trusted(hop_ip, trusted_proxies):
            return hop_ip
        last = hop_ip
    return last


def short_hash(secret: str) -> str:
    """First 16 hex digits of SHA-256: identifies a key in logs and storage without
    revealing it (64 bits: collisions between a service's few keys are negligible)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()[:16]


def loadtest_client_key(api_key: str) -> str:
    """A load-test identity's client key: never equal to any other client's."""
    return LOADTEST_CLIENT + short_hash(api_key)


def client_key(api_key: str | None, address: str, ipv6_prefix: int = 64) -> str:
    """Rate-limit identity: the API key (hashed) when one is given, else the address.

    An IPv6 client counts as its whole `/ipv6_prefix` network: one subscriber usually gets a
    /64 (or more) and can pick any address in it, so a budget per address would be a fresh
    budget per request."""
    if api_key:
        return "key:" + short_hash(api_key)
    parsed = parse_ip(address)
    if isinstance(parsed, IPv6Address) and ipv6_prefix < 128:
        return "ip:" + str(ip_network(f"{parsed}/{ipv6_prefix}", strict=False))
    return "ip:" + address
