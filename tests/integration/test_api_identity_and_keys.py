"""Who the client is, through the whole HTTP API in process: spoofed forwarding headers,
trusted proxies, who is refused `/metrics`, and API keys.

Every test speaks from its own loopback address (127.0.0.N) unless it is about 127.0.0.1,
the only address `TRUSTED_PROXIES=127.0.0.1/32` trusts. `/metrics` itself is BentoML's route:
here only the refusals are checked, which the middleware answers before any routing; that an
allowed peer is served is checked on a real `bentoml serve` (tests/e2e/test_identity_and_keys.py).
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import images
from tests.answers import assert_error, assert_limited
from tests.integration.api_server import InProcessServer
from tests.serving import Connect, fresh_address

pytestmark = pytest.mark.slow

PHOTO = images.photo("chelsea", "JPEG")
PHOTO_B64 = base64.b64encode(PHOTO).decode()
PROXY = "127.0.0.1"
KEYS = ("key-one", "key-two", "key-three")  # the last: for the 401 tests
READ_LIMIT = 3  # /read-file budget on every server here: cheap requests, no model call
KEYED_LIMIT = 2  # every budget on the keyed server


def start_server(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> InProcessServer:
    workdir = tmp_path_factory.mktemp("identity")
    server = InProcessServer(workdir, env=env).start()
    (Path(server.env["UPLOAD_DIR"]) / "cat.jpg").write_bytes(PHOTO)
    return server


@pytest.fixture(scope="class")
def direct(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    """No TRUSTED_PROXIES: every peer is the client, 127.0.0.1 included."""
    server = start_server(
        tmp_path_factory,
        {
            "RATE_LIMIT_READ_FILE_PER_HOUR": str(READ_LIMIT),
            "METRICS_ALLOW": "127.0.0.1/32",
        },
    )
    yield server
    server.stop()


@pytest.fixture(scope="class")
def behind_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    server = start_server(
        tmp_path_factory,
        {
            "RATE_LIMIT_READ_FILE_PER_HOUR": str(READ_LIMIT),
            "METRICS_ALLOW": "127.0.0.1/32",
            "TRUSTED_PROXIES": "127.0.0.1/32",
        },
    )
    yield server
    server.stop()


@pytest.fixture(scope="class")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    limits = {
        name: str(KEYED_LIMIT)
        for name in (
            "RATE_LIMIT_REMOVE_BG_PER_HOUR",
            "RATE_LIMIT_PREVIEW_PER_HOUR",
            "RATE_LIMIT_BASE64_PER_HOUR",
            "RATE_LIMIT_READ_FILE_PER_HOUR",
            "RATE_LIMIT_BATCH_PER_HOUR",
        )
    }
    server = start_server(
        tmp_path_factory,
        {
            **limits,
            "API_KEYS": ",".join(KEYS),
            "METRICS_ALLOW": "127.0.0.1/32",
        },
    )
    yield server
    server.stop()


def read(client: httpx.Client, headers: dict[str, str] | None = None) -> httpx.Response:
    return client.post("/read-file", json={"path": "cat.jpg"}, headers=headers or {})


def assert_spent(response: httpx.Response, remaining: int, limit: int = READ_LIMIT) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["x-ratelimit-limit"] == str(limit)
    assert response.headers["x-ratelimit-remaining"] == str(remaining)


def spoofed(n: int) -> list[dict[str, str]]:
    """Forwarding headers claiming a new client on every request (n picks fresh values)."""
    return [
        {"X-Forwarded-For": f"1.2.3.{n}"},
        {"Forwarded": f"for=1.2.3.{n + 1}"},
        {"X-Real-IP": f"1.2.3.{n + 2}"},
        {
            "X-Forwarded-For": f"1.2.3.{n + 3}, 5.6.7.8",
            "Forwarded": f"for=1.2.3.{n + 3}",
            "X-Real-IP": f"1.2.3.{n + 3}",
        },
    ]


# --- without trusted proxies ---------------------------------------------------------------


class TestSpoofing:
    @pytest.mark.parametrize("peer", [PROXY, "127.0.0.5"])
    def test_forwarding_headers_buy_no_fresh_budget(
        self, direct: InProcessServer, connect: Connect, peer: str
    ) -> None:
        # 127.0.0.1 matters most: uvicorn trusts proxy headers from it unless told otherwise
        # (how `bentoml serve` is told: tests/e2e/test_serving.py).
        client = connect(direct, peer)
        first, second, third, fourth = spoofed(10 if peer == PROXY else 20)
        assert_spent(read(client, first), 2)
        assert_spent(read(client, second), 1)
        assert_spent(read(client, third), 0)
        assert_limited(read(client, fourth))
        assert_limited(read(client))

    def test_metrics_refused_to_an_outside_peer_claiming_loopback(
        self, direct: InProcessServer, connect: Connect
    ) -> None:
        outsider = connect(direct, "127.0.0.5")
        for headers in (
            {"X-Forwarded-For": PROXY},
            {"Forwarded": f"for={PROXY}"},
            {"X-Real-IP": PROXY},
        ):
            assert_error(outsider.get("/metrics", headers=headers), 403, "forbidden")
        assert_error(outsider.get("/metrics"), 403, "forbidden")


# --- behind a trusted proxy ------------------------------------------------------------------


class TestTrustedProxy:
    def test_each_forwarded_client_has_its_own_budget(
        self, behind_proxy: InProcessServer, connect: Connect
    ) -> None:
        proxy = connect(behind_proxy, PROXY)
        one, two = {"X-Forwarded-For": "203.0.113.1"}, {"X-Forwarded-For": "203.0.113.2"}
        for remaining in range(READ_LIMIT - 1, -1, -1):
            assert_spent(read(proxy, one), remaining)
            assert_spent(read(proxy, two), remaining)
        assert_limited(read(proxy, one))
        assert_limited(read(proxy, two))

    def test_right_most_untrusted_hop_is_the_client(
        self, behind_proxy: InProcessServer, connect: Connect
    ) -> None:
        proxy = connect(behind_proxy, PROXY)
        # Whatever the client wrote on the left, the hop our proxy saw is 203.0.113.3.
        assert_spent(read(proxy, {"X-Forwarded-For": "198.51.100.1, 203.0.113.3"}), 2)
        assert_spent(read(proxy, {"X-Forwarded-For": "198.51.100.2, 203.0.113.3, 127.0.0.1"}), 1)
        assert_spent(read(proxy, {"X-Forwarded-For": "203.0.113.3"}), 0)
        assert_limited(read(proxy, {"X-Forwarded-For": "198.51.100.3, 203.0.113.3"}))

    def test_untrusted_peer_is_counted_as_itself(
        self, behind_proxy: InProcessServer, connect: Connect
    ) -> None:
        client = connect(behind_proxy, "127.0.0.5")
        for remaining, n in zip(range(READ_LIMIT - 1, -1, -1), itertools.count(1), strict=False):
            assert_spent(read(client, {"X-Forwarded-For": f"203.0.113.{100 + n}"}), remaining)
        assert_limited(read(client, {"X-Forwarded-For": "203.0.113.200"}))

    def test_forwarded_and_x_real_ip_ignored_even_from_the_proxy(
        self, behind_proxy: InProcessServer, connect: Connect
    ) -> None:
        proxy = connect(behind_proxy, PROXY)
        assert_spent(read(proxy, {"Forwarded": "for=198.51.100.50"}), 2)
        assert_spent(read(proxy, {"X-Real-IP": "198.51.100.51"}), 1)
        assert_spent(
            read(proxy, {"Forwarded": "for=198.51.100.52", "X-Real-IP": "198.51.100.52"}), 0
        )
        assert_limited(read(proxy, {"X-Real-IP": "198.51.100.53"}))

    def test_metrics_refused_to_an_untrusted_peer_claiming_loopback(
        self, behind_proxy: InProcessServer, connect: Connect
    ) -> None:
        outsider = connect(behind_proxy, "127.0.0.5")
        assert_error(outsider.get("/metrics", headers={"X-Forwarded-For": PROXY}), 403, "forbidden")


# --- API keys ---------------------------------------------------------------------------------


GUARDED = {
    "/remove-background": lambda c, h: c.post(
        "/remove-background", files={"file": ("cat.jpg", PHOTO)}, headers=h
    ),
    "/remove-background-preview": lambda c, h: c.post(
        "/remove-background-preview", files={"file": ("cat.jpg", PHOTO)}, headers=h
    ),
    "/remove-background-base64": lambda c, h: c.post(
        "/remove-background-base64", json={"image": PHOTO_B64}, headers=h
    ),
    "/remove-background-batch": lambda c, h: c.post(
        "/remove-background-batch", files=[("files", ("cat.jpg", PHOTO))], headers=h
    ),
    "/read-file": lambda c, h: c.post("/read-file", json={"path": "cat.jpg"}, headers=h),
    "/presets": lambda c, h: c.get("/presets", headers=h),
}
BAD_KEYS = {
    "missing": {},
    "empty": {"X-API-Key": ""},
    "wrong": {"X-API-Key": "key-four"},
    "upper case": {"X-API-Key": "KEY-ONE"},
    "prefix": {"X-API-Key": "key-on"},
}


class TestApiKeys:
    @pytest.mark.parametrize("path", GUARDED)
    def test_missing_or_wrong_key_is_401_and_spends_nothing(
        self, keyed: InProcessServer, connect: Connect, path: str
    ) -> None:
        client = connect(keyed)
        send = GUARDED[path]
        for _ in range(KEYED_LIMIT):  # more 401s than the budget: still never a 429
            for headers in BAD_KEYS.values():
                response = send(client, headers)
                assert_error(response, 401, "unauthorized")
                assert "x-ratelimit-remaining" not in response.headers
        response = send(client, {"X-API-Key": KEYS[2]})  # its budgets: used here only
        assert response.status_code == 200, response.text
        if path != "/presets":
            assert response.headers["x-ratelimit-remaining"] == str(KEYED_LIMIT - 1)

    # /livez, /readyz and /docs.json are BentoML's: tests/e2e/test_identity_and_keys.py
    @pytest.mark.parametrize("path", ["/health"])
    def test_open_routes_need_no_key(
        self, keyed: InProcessServer, connect: Connect, path: str
    ) -> None:
        assert connect(keyed).get(path).status_code == 200

    def test_budgets_are_per_key(self, keyed: InProcessServer, connect: Connect) -> None:
        address = fresh_address()
        client = connect(keyed, address)
        one, two = {"X-API-Key": KEYS[0]}, {"X-API-Key": KEYS[1]}
        assert_spent(read(client, one), 1, KEYED_LIMIT)
        assert_spent(read(client, one), 0, KEYED_LIMIT)
        assert_limited(read(client, one))
        assert_spent(read(client, two), 1, KEYED_LIMIT)  # same peer, other key
        assert_limited(read(connect(keyed), one))  # other peer, same key
