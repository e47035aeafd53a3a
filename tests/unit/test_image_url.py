"""gateway/image_url.py: only public addresses, pinned, no redirects, capped, timed out."""

from __future__ import annotations

import asyncio
import gzip
import http.server
import ipaddress
import threading
import time
from collections.abc import Iterator
from typing import ClassVar

import pytest

from application.image_url import fetch_image_url, is_public
from contract.errors import InvalidImage, InvalidParameter, PayloadTooLarge

BODY = b"\x89PNG fake image bytes" * 100


class Handler(http.server.BaseHTTPRequestHandler):
    seen_hosts: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        Handler.seen_hosts.append(self.headers["Host"])
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1/secret")
            self.end_headers()
        elif self.path.startswith("/gzip"):
            # 1 MiB of zeros in 1 KiB on the wire; twice gzipped it would be a bomb.
            layers = self.path.count("gzip")
            body = b"\0" * (1 << 20)
            for _ in range(layers):
                body = gzip.compress(body)
            self.send_response(200)
            self.send_header("Content-Encoding", ", ".join(["gzip"] * layers))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/slow":
            self.send_response(200)
            self.end_headers()
            for _ in range(50):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.1)
        else:
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def local_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


async def resolve_to_loopback(host: str, port: int) -> list:
    return [ipaddress.ip_address("127.0.0.1")]


def fetch(url: str, *, max_bytes: int = 10_000, timeout: float = 2.0, **kw: object) -> bytes:
    return asyncio.run(fetch_image_url(url, max_bytes=max_bytes, timeout=timeout, **kw))


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "224.0.0.1",
    ],
)
def test_non_public_addresses(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


def test_public_address() -> None:
    assert is_public(ipaddress.ip_address("93.184.216.34"))


@pytest.mark.parametrize(
    "address",
    [
        "::ffff:0:10.0.0.1",  # SIIT IPv4-translated
        "::ffff:0:127.0.0.1",
        "fec0::1",  # deprecated site-local
        "192.0.0.8",  # IPv4 dummy address
        "192.0.0.170",
        "3fff::1",  # documentation
    ],
)
def test_special_purpose_addresses_this_python_calls_global(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("port", ["0", "00"])
def test_an_explicit_port_0_is_not_the_default_port(port: str) -> None:
    """`http://h:0/` used to be fetched on port 80 (0 is falsy)."""

    async def public(host: str, port: int) -> list:
        return [ipaddress.ip_address("93.184.216.34")]

    with pytest.raises(InvalidParameter, match="port"):
        fetch(f"http://example.com:{port}/a.png", resolver=public)


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1",
        "http://[1.2.3.4]/a.png",
        "http://a..b/a.png",
        "http://a\x01b/a.png",
        "http://exa mple.com/a.png",
        "http://example.com/a\n.png",
        "http://example.com:99999/a.png",
    ],
)
def test_malformed_urls_are_invalid_parameters(url: str) -> None:
    with pytest.raises(InvalidParameter):
        fetch(url)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/a.png",
        "file:///etc/passwd",
        "http://user:pw@example.com/a.png",
        "not a url",
    ],
)
def test_only_plain_http_urls(url: str) -> None:
    with pytest.raises(InvalidParameter):
        fetch(url)


def test_loopback_is_refused_after_resolution(local_server: int) -> None:
    with pytest.raises(InvalidParameter, match="public"):
        fetch(f"http://localhost:{local_server}/a.png", ports=[local_server])


def test_any_private_answer_refuses(local_server: int) -> None:
    async def mixed(host: str, port: int) -> list:
        return [ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("10.0.0.1")]

    with pytest.raises(InvalidParameter):
        fetch("http://example.com/a.png", resolver=mixed)


def test_connects_to_the_checked_address_with_the_original_host(local_server: int) -> None:
    """With the policy opened for the test, the bytes come from the pinned address."""
    Handler.seen_hosts.clear()
    data = fetch(
        f"http://images.example:{local_server}/a.png",
        ports=[local_server],
        resolver=resolve_to_loopback,
        allowed=lambda address: True,
    )
    assert data == BODY
    assert Handler.seen_hosts == [f"images.example:{local_server}"]


def test_redirects_are_not_followed(local_server: int) -> None:
    with pytest.raises(InvalidImage, match="302"):
        fetch(
            f"http://images.example:{local_server}/redirect",
            ports=[local_server],
            resolver=resolve_to_loopback,
            allowed=lambda address: True,
        )


def test_byte_cap(local_server: int) -> None:
    with pytest.raises(PayloadTooLarge):
        fetch(
            f"http://images.example:{local_server}/a.png",
            max_bytes=100,
            ports=[local_server],
            resolver=resolve_to_loopback,
            allowed=lambda address: True,
        )


def test_whole_body_deadline(local_server: int) -> None:
    started = time.monotonic()
    with pytest.raises(InvalidImage, match="within"):
        fetch(
            f"http://images.example:{local_server}/slow",
            timeout=0.5,
            ports=[local_server],
            resolver=resolve_to_loopback,
            allowed=lambda address: True,
        )
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("::127.0.0.1", False),
        ("::10.0.0.1", False),  # IPv4-compatible
        ("64:ff9b::a00:1", False),
        ("64:ff9b:1::a9fe:a9fe", False),  # NAT64 of private ones
        ("2002:7f00:1::", False),
        ("2002:a9fe:a9fe::1", False),  # 6to4 of loopback, link-local
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo with a documentation client
        ("64:ff9b::808:808", True),
        ("2002:808:808::1", True),
        ("2001:4860:4860::8888", True),
    ],
)
def test_ipv4_inside_ipv6_is_unwrapped_and_checked(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


def test_only_the_allowed_ports() -> None:
    with pytest.raises(InvalidParameter, match="port"):
        fetch("http://example.com:8080/a.png")
    with pytest.raises(InvalidParameter, match="port"):
        fetch("https://example.com:22/a.png")


async def resolve_to_private(host: str, port: int) -> list:
    return [ipaddress.ip_address("10.0.0.1")]


def test_a_port_the_setting_allows_goes_on_to_the_address_check() -> None:
    with pytest.raises(InvalidParameter, match="public"):
        fetch("http://example.com:8080/a.png", ports=[8080], resolver=resolve_to_private)


@pytest.mark.parametrize("path", ["/gzip", "/gzip-gzip"])
def test_compressed_bodies_are_refused_before_inflating(local_server: int, path: str) -> None:
    with pytest.raises(InvalidImage, match="Content-Encoding"):
        fetch(
            f"http://images.example:{local_server}{path}",
            max_bytes=10_000_000,
            ports=[local_server],
            resolver=resolve_to_loopback,
            allowed=lambda address: True,
        )
