"""What every test server shares: ports, fresh client addresses, limits tests never meet."""

from __future__ import annotations

import ipaddress
import itertools
import socket
from collections.abc import Callable

import httpx

# Limits high enough that functional tests never meet them; rate-limit tests set their own.
GENEROUS_LIMITS = {
    f"RATE_LIMIT_{name}_PER_HOUR": "1000000"
    for name in ("REMOVE_BG", "PREVIEW", "BASE64", "READ_FILE", "BATCH")
}
# Each test that needs a fresh budget speaks from a loopback address no other test used.
_LOOPBACK_ADDRESSES = (str(ipaddress.IPv4Address("127.0.1.0") + n) for n in itertools.count())
Connect = Callable[..., httpx.Client]


def fresh_address() -> str:
    return next(_LOOPBACK_ADDRESSES)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def meet_base64_limit(client: httpx.Client, image_b64: str, limit: int) -> httpx.Response:
    """Spend a base64 budget of `limit` with a refused option, then meet the 429."""
    for _ in range(limit):
        refused = client.post("/remove-background-base64", json={"image": image_b64, "quality": 5})
        assert refused.status_code == 400, refused.text
    response = client.post("/remove-background-base64", json={"image": image_b64})
    assert response.status_code == 429, response.text
    return response
