"""Fetching a client-named image URL without becoming a proxy into the private network.

Off unless ALLOW_IMAGE_URL is set. Only http(s) on the allowed ports (80 and 443 by default;
an explicit port, 0 included, is never replaced by the default); the host is resolved once,
every address it resolves to must be public (IPv4 addresses inside IPv6 ones are unwrapped and
checked too, and the special-purpose ranges this Python's `is_global` predates are listed
here), and the connection goes to that checked address (pinned, so a DNS answer cannot change
between check and use); no redirects; no compressed bodies (a small gzip can inflate to
gigabytes), so the byte cap counts what is transferred; one deadline for the whole fetch. A
URL that does not parse is a 400, whatever part of it is malformed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Collection
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx

from contract.errors import DOWNLOAD, InvalidImage, InvalidParameter, PayloadTooLarge, ServiceError
from settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]
DEFAULT_PORTS = {"http": 80, "https": 443}
IDENTITY_ENCODINGS = frozenset({"", "identity"})
# IPv6 ranges that carry an IPv4 address in their last 32 bits (RFC 4291 IPv4-compatible,
# RFC 6052 NAT64 well-known and local-use prefixes, RFC 6145 SIIT IPv4-translated).
EMBEDDING_LAST_32_BITS = (
    ipaddress.ip_network("::/96"),
    ipaddress.ip_network("64:ff9b::/96"),
    ipaddress.ip_network("64:ff9b:1::/48"),
    ipaddress.ip_network("::ffff:0:0:0/96"),
)
# IANA special-purpose ranges that are not globally reachable but that `is_global` of some
# Python versions (3.11.7 among them) calls global.
NOT_GLOBAL = (
    ipaddress.ip_network("192.0.0.0/24"),  # IETF protocol assignments (192.0.0.8: dummy)
    ipaddress.ip_network("fec0::/10"),  # deprecated site-local
    ipaddress.ip_network("3fff::/20"),  # documentation (RFC 9637)
    ipaddress.ip_network("5f00::/16"),  # segment routing SIDs (RFC 9602)
)
# Spaces and control characters have no place in a URL; some parsers silently drop them.
UNSAFE_IN_URL = re.compile(r"[\x00-\x20\x7f]")


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
    if any(address in network for network in NOT_GLOBAL if network.version == address.version):
        return False
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
    name: str = "image_url",
) -> bytes:
    """The body of `url`, under the rules above; errors speak of the parameter `name`."""
    if UNSAFE_IN_URL.search(url):
        raise InvalidParameter(f"{name} must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        explicit_port = parts.port
    except ValueError:
        raise InvalidParameter(f"{name} is not a valid URL") from None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise InvalidParameter(f"{name} must be an http or https URL")
    if parts.username or parts.password:
        raise InvalidParameter(f"{name} must not carry credentials")
    host = parts.hostname
    port = DEFAULT_PORTS[parts.scheme] if explicit_port is None else explicit_port
    if port not in ports:
        raise InvalidParameter(f"{name} may only use port {', '.join(map(str, ports))}")
    try:
        addresses = await asyncio.wait_for(resolver(host, port), timeout)
    except ValueError:  # the name cannot be encoded (an empty label: `a..b`)
        raise InvalidParameter(f"{name} has an invalid host name") from None
    except (OSError, TimeoutError):
        raise InvalidImage(f"{name} host '{host}' could not be resolved") from None
    if not addresses or not all(allowed(address) for address in addresses):
        raise InvalidParameter(f"{name} must point to a public address")
    pinned = _with_address(parts, addresses[0], port)
    try:  # one deadline for the whole body: httpx's timeouts are per read
        return await asyncio.wait_for(
            _download(pinned, host, parts.netloc, max_bytes, timeout, name), timeout
        )
    except TimeoutError:
        raise InvalidImage(f"{name} did not answer within {timeout:g} s") from None


def _with_address(parts: SplitResult, address: IPAddress, port: int) -> str:
    literal = f"[{address}]" if address.version == 6 else str(address)
    return urlunsplit((parts.scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))


async def _download(
    url: str, host: str, host_header: str, max_bytes: int, timeout: float, name: str
) -> bytes:
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
                raise InvalidImage(f"{name} answered HTTP {response.status_code}")
            encoding = response.headers.get("content-encoding", "").strip().lower()
            if encoding not in IDENTITY_ENCODINGS:
                raise InvalidImage(
                    f"{name} answered with Content-Encoding '{encoding[:40]}';"
                    " only uncompressed bodies are accepted"
                )
            async for chunk in response.aiter_raw():
                received += len(chunk)
                if received > max_bytes:
                    raise PayloadTooLarge(f"{name} is larger than {max_bytes} bytes")
                chunks.append(chunk)
    except httpx.InvalidURL:
        raise InvalidParameter(f"{name} is not a valid URL") from None
    except httpx.HTTPError as exc:
        raise InvalidImage(f"{name} could not be fetched: {type(exc).__name__}") from None
    return b"".join(chunks)


class ImageUrls:
    """The server's policy on client-named URLs (`image_url`, `bg_image_url`): off unless
    ALLOW_IMAGE_URL; a bad URL is 400 naming its parameter, a failed download names it too
    (problem `download`)."""

    def __init__(self, allowed: bool, max_bytes: int, timeout: float, ports: Collection[int]):
        self.allowed, self.max_bytes, self.timeout, self.ports = allowed, max_bytes, timeout, ports

    @classmethod
    def from_settings(cls, settings: Settings) -> ImageUrls:
        return cls(
            settings.allow_image_url,
            settings.max_content_length,
            settings.image_url_timeout_s,
            settings.image_url_ports,
        )

    async def fetch(self, url: object, parameter: str) -> bytes:
        if not self.allowed:
            raise InvalidParameter(
                f"{parameter} is disabled on this server (ALLOW_IMAGE_URL)", parameter=parameter
            )
        if not isinstance(url, str):
            raise InvalidParameter(f"{parameter} must be a string", parameter=parameter)
        try:
            return await fetch_image_url(
                url,
                max_bytes=self.max_bytes,
                timeout=self.timeout,
                ports=self.ports,
                name=parameter,
            )
        except ServiceError as error:
            error.parameter = parameter
            if not isinstance(error, InvalidParameter):
                error.problem = DOWNLOAD
            raise
