"""Who the client is (gateway/clients.py), from networks as settings.py parses them."""

from __future__ import annotations

import hashlib

import pytest

from gateway.clients import (
    client_address,
    client_key,
    loadtest_client_key,
    parse_ip,
    short_hash,
)
from settings import parse_networks

PROXIES = parse_networks("10.0.0.0/8, 192.168.1.1, fd00::/8")


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        # Untrusted peer: headers are never believed.
        ("203.0.113.7", "1.2.3.4", "203.0.113.7"),
        ("203.0.113.7", "garbage, ,,", "203.0.113.7"),
        ("203.0.113.7", None, "203.0.113.7"),
        # Trusted peer: the right-most address that is not a trusted proxy.
        ("10.0.0.1", "198.51.100.9", "198.51.100.9"),
        ("10.0.0.1", "6.6.6.6, 198.51.100.9", "198.51.100.9"),  # client-written left part
        ("10.0.0.1", "6.6.6.6, 198.51.100.9, 10.2.3.4, 192.168.1.1", "198.51.100.9"),
        ("10.0.0.1", "6.6.6.6,198.51.100.9,10.9.9.9", "198.51.100.9"),  # joined headers
        # Trusted peer without a header: the peer itself.
        ("10.0.0.1", None, "10.0.0.1"),
        ("10.0.0.1", "", "10.0.0.1"),
        # Every hop trusted: the left-most.
        ("10.0.0.1", "10.0.0.5, 192.168.1.1", "10.0.0.5"),
        # Garbage stops the walk at the last address walked, never what is left of it.
        ("10.0.0.1", "6.6.6.6, not-an-ip", "10.0.0.1"),
        ("10.0.0.1", "6.6.6.6, not-an-ip, 10.0.0.7", "10.0.0.7"),
        ("10.0.0.1", "6.6.6.6, , 10.0.0.7", "10.0.0.7"),
        ("10.0.0.1", "6.6.6.6, 1.2.3.4.5", "10.0.0.1"),
        ("10.0.0.1", "unknown", "10.0.0.1"),
        # Garbage to the left of the client is irrelevant.
        ("10.0.0.1", "<script>, 198.51.100.9", "198.51.100.9"),
        # Ports appended by some proxies.
        ("10.0.0.1", "198.51.100.9:4711", "198.51.100.9"),
        ("10.0.0.1", "[2001:db8::5]:443", "2001:db8::5"),
        ("10.0.0.1", "[2001:db8::5]x", "10.0.0.1"),
        # IPv6.
        ("fd00::1", "2001:db8::5", "2001:db8::5"),
        ("2001:db8::1", "198.51.100.9", "2001:db8::1"),
        ("fd00::1", "2001:db8::5, fd12::3", "2001:db8::5"),
        # IPv4-mapped IPv6 is plain IPv4, both as peer and as hop.
        ("::ffff:203.0.113.7", "1.2.3.4", "203.0.113.7"),
        ("::ffff:10.0.0.1", "198.51.100.9", "198.51.100.9"),
        ("10.0.0.1", "::ffff:198.51.100.9", "198.51.100.9"),
        ("10.0.0.1", "198.51.100.9, ::ffff:10.1.1.1", "198.51.100.9"),
    ],
)
def test_client_address(peer: str, xff: str | None, expected: str) -> None:
    assert client_address(peer, xff, PROXIES) == expected


def test_no_trusted_proxies_ignores_header() -> None:
    assert client_address("127.0.0.1", "9.9.9.9", []) == "127.0.0.1"


def test_loopback_is_not_trusted_by_default() -> None:
    # uvicorn trusts 127.0.0.1 by default; we must not unless configured.
    assert client_address("127.0.0.1", "9.9.9.9", parse_networks("")) == "127.0.0.1"
    loopback = parse_networks("127.0.0.0/8,::1")
    assert client_address("127.0.0.1", "9.9.9.9", loopback) == "9.9.9.9"
    assert client_address("::1", "9.9.9.9", loopback) == "9.9.9.9"


@pytest.mark.parametrize(
    ("peer", "expected"), [(None, "unknown"), ("", "unknown"), ("testclient", "testclient")]
)
def test_peer_that_is_not_an_address(peer: str | None, expected: str) -> None:
    assert client_address(peer, "9.9.9.9", PROXIES) == expected


def test_address_is_normalised() -> None:
    assert client_address("2001:DB8:0:0::1", None, []) == "2001:db8::1"
    assert parse_ip(" ::ffff:1.2.3.4 ") == parse_ip("1.2.3.4")


def test_parse_networks() -> None:
    nets = parse_networks(" 10.1.2.3/8 ,, 2001:db8::/32, 192.0.2.1 ")
    assert [str(n) for n in nets] == ["10.0.0.0/8", "2001:db8::/32", "192.0.2.1/32"]
    assert parse_networks("") == []


@pytest.mark.parametrize("text", ["10.0.0.0/33", "nope", "10.0.0.0/8, x", "1.2.3"])
def test_parse_networks_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError):
        parse_networks(text)


def test_client_key() -> None:
    digest = hashlib.sha256(b"s3cret").hexdigest()[:16]
    assert short_hash("s3cret") == digest
    assert client_key("s3cret", "1.2.3.4") == "key:" + digest
    assert "s3cret" not in client_key("s3cret", "1.2.3.4")
    assert client_key(None, "1.2.3.4") == "ip:1.2.3.4"
    assert client_key("", "1.2.3.4") == "ip:1.2.3.4"
    assert client_key("a", "x") != client_key("A", "x")  # keys are case-sensitive


def test_an_ipv6_client_is_its_slash_64() -> None:
    first = client_key(None, "2001:db8:1:2:aaaa::1")
    assert first == "ip:2001:db8:1:2::/64"
    assert client_key(None, "2001:db8:1:2:ffff:ffff:ffff:ffff") == first  # same subscriber
    assert client_key(None, "2001:db8:1:3::1") != first  # the next /64 is someone else
    assert client_key(None, "2001:db8:1:2::1", ipv6_prefix=128) == "ip:2001:db8:1:2::1"
    assert client_key(None, "2001:db8:1:2::1", ipv6_prefix=48) == "ip:2001:db8:1::/48"
    assert client_key(None, "1.2.3.4") == "ip:1.2.3.4"  # IPv4 stays per address
    assert client_key("k", "2001:db8::1").startswith("key:")  # a key wins over any address


def test_a_load_test_key_is_never_another_clients_key() -> None:
    """Its budgets stay apart even from the same string sent as an ordinary API key."""
    assert loadtest_client_key("k") != client_key("k", "1.2.3.4")
    assert loadtest_client_key("k") == loadtest_client_key("k") != loadtest_client_key("l")
    assert "k" not in loadtest_client_key("k").split(":", 1)[1]
