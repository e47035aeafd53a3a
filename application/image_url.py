"""Fetching a client-named image URL without becoming a proxy into the private network.

Off unless ALLOW_IMAGE_URL is set. Only http(s) on the allowed ports (80 and 443 by default);
the host is resolved once, every address it resolves to must be public (IPv4 addresses inside
IPv6 ones are unwrapped and checked too), and the connection goes to that checked address
(pinned, so a DNS answer cannot change between check and use); no redirects; no compressed
bodies (a small gzip can inflate to gigabytes), so the byte cap counts what is transferred;
one deadline for the whole fetch.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Collection
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx

from contract.errors import InvalidImage, InvalidParameter, PayloadTooLarge

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]
DEFAULT_PORTS = {"http": 80, "https": 443}
IDENTITY_ENCODINGS = frozenset({"", "identity"})
# IPv6 ranges that carry an IPv4 address in their last 32 bits (RFC 4291 IPv4-compatible,
# RFC 6052 NAT64 well-known and local-use prefixes).
EMBEDDING_LAST_32_BITS = (
    ipaddress.ip_network("::/96"),
    ipaddress.ip_network("64:ff9b::/96"),
    ipaddress.ip_network("64:ff9b:1::/48"),
)


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """Every IPv4 address an IPv6 address stands for: mapped, compatible, NAT64, 6to4 and
    Teredo (server and client)."""
    found = [address.ipv4_mapped, address.sixtofour]
    if address.teredo is not None:
        found.extend(address.teredo)
    if (
        any(address in network for network in EMBEDDING_LAST_32_BITS)
        and int(address) & 0xFFFFFFFF > 1
    ):  # `::` and `::1` are not IPv4 forms
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [ipv4 for ipv4 in found if ipv4 is not None]


def is_public(address: IPAddress) -> bool:
    """Globally routable unicast only: no private, loopback, link-local, shared or reserved,
    also when hidden inside an IPv6 address."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner:
            return all(is_public(ipv4) for ipv4 in inner)
    return address.is_global and not address.is_multicast


async def resolve(host: str, port: int) -> list[IPAddress]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(info[4][0]) for info in infos]


async def fetch_image_url(
    url: str,
    *,
    max_bytes: int,
    timeout: float,
    ports: Collection[int] = (80, 443),
    resolver: Resolver = resolve,
    allowed: Callable[[IPAddress], bool] = is_public,
) -> bytes:
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise InvalidParameter("image_url must be an http or https URL")
    if parts.username or parts.password:
        raise InvalidParameter("image_url must not carry credentials")
    try:
        host, port = parts.hostname, parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise InvalidParameter("image_url has an invalid port") from None
    if port not in ports:
        raise InvalidParameter(f"image_url may only use port {', '.join(map(str, ports))}")
    try:
        addresses = await asyncio.wait_for(resolver(host, port), timeout)
    except (OSError, TimeoutError):
        raise InvalidImage(f"image_url host '{host}' could not be resolved") from None
    if not addresses or not all(allowed(address) for address in addresses):
        raise InvalidParameter("image_url must point to a public address")
    pinned = _with_address(parts, addresses[0], port)
    try:  # one deadline for the whole body: httpx's timeouts are per read
        return await asyncio.wait_for(
            _download(pinned, host, parts.netloc, max_bytes, timeout), timeout
        )
    except TimeoutError:
        raise InvalidImage(f"image_url did not answer within {timeout:g} s") from None


def _with_address(parts: SplitResult, address: IPAddress, port: int) -> str:
    literal = f"[{address}]" if address.version == 6 else str(address)
    return urlunsplit((parts.scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))


async def _download(url: str, host: str, host_header: str, max_bytes: int, timeout: float) -> bytes:
    chunks, received = [], 0
    try:
        # The TLS name stays the host's: certificates are checked against it, not the IP.
        async with (
            httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as client,
            client.stream(
                "GET",
                url,
                headers={"Host": host_header, "Accept-Encoding": "identity"},
                extensions={"sni_hostname": host},
            ) as response,
        ):
            if response.status_code != 200:
                raise InvalidImage(f"image_url answered HTTP {response.status_code}")
            encoding = response.headers.get("content-encoding", "").strip().lower()
            if encoding not in IDENTITY_ENCODINGS:
                raise InvalidImage(
                    f"image_url answered with Content-Encoding '{encoding[:40]}';"
                    " only uncompressed bodies are accepted"
                )
            async for chunk in response.aiter_raw():
                received += len(chunk)
                if received > max_bytes:
                    raise PayloadTooLarge(f"image_url is larger than {max_bytes} bytes")
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise InvalidImage(f"image_url could not be fetched: {type(exc).__name__}") from None
    return b"".join(chunks)
