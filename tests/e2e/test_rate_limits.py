"""Rate limits across real `bentoml serve` processes: two replicas sharing one Redis, and that
Redis killed, restarted and frozen under them. Budgets on one server run in process
(tests/integration/test_api_rate_limits.py).

Each test speaks from its own loopback address (127.0.0.N), so each starts on a fresh budget
while the replicas are started once.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait

import httpx
import pytest
import redis

from tests import images
from tests.answers import assert_budget, assert_limited, assert_ok
from tests.e2e.server import BentoServer
from tests.redis_server import RedisServer, running_redis
from tests.serving import Connect, fresh_address

pytestmark = pytest.mark.slow

PHOTO = images.photo("chelsea", "JPEG")
HOUR = 3600

REDIS_ENV = {"REDIS_SOCKET_TIMEOUT": "0.25", "REDIS_RETRY_INTERVAL": "1"}
RETRY_INTERVAL_S = 1.0
OUTAGE_REQUEST_MAX_S = 5.0
OUTAGE_WARNING = "Redis for limits unreachable ("  # redisroles/breaker.py, once per outage
RECOVERY_TIMEOUT_S = 10.0


# --- servers ------------------------------------------------------------------------------


@pytest.fixture(scope="class")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="class")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, private_redis: RedisServer
) -> Iterator[tuple[BentoServer, BentoServer]]:
    """Two servers sharing the private Redis: remove-background 4/hour, preview 3/hour."""
    env = {
        "REDIS_URL": private_redis.url,
        "RATE_LIMIT_REMOVE_BG_PER_HOUR": "4",
        "RATE_LIMIT_PREVIEW_PER_HOUR": "3",
        **REDIS_ENV,
    }
    workdirs = [tmp_path_factory.mktemp("replica") for _ in range(2)]
    with ThreadPoolExecutor(2) as pool:  # both start at once
        starting = [pool.submit(BentoServer(workdir, env=env).start) for workdir in workdirs]
        wait(starting)
    started = [future.result() for future in starting if future.exception() is None]
    try:
        assert len(started) == 2, [future.exception() for future in starting]
        yield started[0], started[1]
    finally:
        for server in started:
            server.stop()


# --- requests and assertions --------------------------------------------------------------


def good(client: httpx.Client, path: str) -> httpx.Response:
    """A request the endpoint answers with 200 (an image-upload endpoint)."""
    return client.post(path, files={"file": ("cat.jpg", PHOTO, "image/jpeg")})


def bad(client: httpx.Client, path: str) -> httpx.Response:
    """A request refused after the limit check: a bad option (400)."""
    return client.post(
        path, files={"file": ("cat.jpg", PHOTO, "image/jpeg")}, data={"quality": "5"}
    )


def health(server: BentoServer) -> httpx.Response:
    return httpx.get(f"{server.url}/health", timeout=10)


def wait_healthy(servers: tuple[BentoServer, ...]) -> None:
    deadline = time.monotonic() + RECOVERY_TIMEOUT_S
    pending = set(servers)
    while pending and time.monotonic() < deadline:
        pending = {server for server in pending if health(server).json()["status"] != "healthy"}
        if pending:
            time.sleep(0.2)
    assert not pending, [health(server).json() for server in pending]


def metric(server: BentoServer, series: str) -> float:
    """One series' value on the server's /metrics (Prometheus text format)."""
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    values = [line.rsplit(" ", 1)[1] for line in text.splitlines() if line.startswith(series + " ")]
    assert len(values) == 1, f"{series}: {values}"
    return float(values[0])


def warnings_logged(server: BentoServer) -> int:
    lines = server.log_path.read_text(errors="replace").splitlines()
    return sum(OUTAGE_WARNING in line and "WARNING" in line for line in lines)


# --- two replicas, one Redis, and its outages ---------------------------------------------


class TestSharedRedis:
    """In order: one shared budget; Redis killed; back on the same port; frozen and thawed.
    Each test brings Redis to the state it starts from, so each can also run alone."""

    def test_replicas_share_one_budget(
        self, replicas: tuple[BentoServer, BentoServer], connect: Connect
    ) -> None:
        first, second = replicas
        for server in replicas:
            body = health(server).json()
            assert body["status"] == "healthy", body
            assert body["checks"]["redis"] == {
                "ok": True,
                "detail": "limits: redis ok; cache: redis ok",
            }
        address = fresh_address()
        on_a, on_b = connect(first, address), connect(second, address)
        for client, remaining in [(on_a, 3), (on_b, 2)]:
            response = good(client, "/remove-background")
            assert_ok(response)
            assert_budget(response, 4, remaining)
        for client, remaining in [(on_a, 1), (on_b, 0)]:  # refused options spend one too
            response = bad(client, "/remove-background")
            assert response.status_code == 400, response.text
            assert_budget(response, 4, remaining)
        assert_limited(good(on_a, "/remove-background"), 4)
        assert_limited(good(on_b, "/remove-background"), 4)

    def test_outage_serves_on_in_process_limits(
        self,
        replicas: tuple[BentoServer, BentoServer],
        private_redis: RedisServer,
        connect: Connect,
    ) -> None:
        first, second = replicas
        warned = [warnings_logged(server) for server in replicas]
        private_redis.stop()
        outage_started = time.monotonic()
        address = fresh_address()
        on_a, on_b = connect(first, address), connect(second, address)

        def timed(call: Callable[[], httpx.Response]) -> httpx.Response:
            started = time.monotonic()
            response = call()
            assert time.monotonic() - started < OUTAGE_REQUEST_MAX_S
            return response

        # Replica A: its own in-process budget of 3, exactly.
        for remaining in (2, 1, 0):
            response = timed(lambda: good(on_a, "/remove-background-preview"))
            assert_ok(response)
            assert_budget(response, 3, remaining)
        assert_limited(timed(lambda: good(on_a, "/remove-background-preview")), 3)
        # Replica B: at most 3 as well (one real image, two refused options).
        response = timed(lambda: good(on_b, "/remove-background-preview"))
        assert_ok(response)
        assert_budget(response, 3, 2)
        for remaining in (1, 0):
            response = timed(lambda: bad(on_b, "/remove-background-preview"))
            assert response.status_code == 400
            assert_budget(response, 3, remaining)
        assert_limited(timed(lambda: good(on_b, "/remove-background-preview")), 3)

        # Outlive a probe interval, so failed probes happen, then look at health and logs.
        time.sleep(max(0.0, outage_started + RETRY_INTERVAL_S + 0.2 - time.monotonic()))
        for server, client, before in zip(replicas, (on_a, on_b), warned, strict=True):
            assert_ok(timed(lambda client=client: good(client, "/remove-background")))
            response = timed(lambda server=server: health(server))
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["status"] == "degraded", body
            assert body["checks"]["redis"]["ok"] is False
            assert body["checks"]["redis"]["detail"].startswith("limits: redis unreachable: ")
            assert all(check["ok"] for name, check in body["checks"].items() if name != "redis")
            assert warnings_logged(server) == before + 1, server.log()  # one per outage
            # Fail-open is visible: both roles down, and the budgets decided in process.
            assert metric(server, 'bg_remover_redis_up{role="limits"}') == 0
            assert metric(server, 'bg_remover_redis_up{role="cache"}') == 0
            fallback = 'bg_remover_ratelimit_fallback_total{endpoint="remove-background-preview"}'
            assert metric(server, fallback) >= 4

    def test_recovery_shares_the_budget_again(
        self,
        replicas: tuple[BentoServer, BentoServer],
        private_redis: RedisServer,
        connect: Connect,
    ) -> None:
        first, second = replicas
        warned = [warnings_logged(server) for server in replicas]
        private_redis.stop()  # whatever the previous test left
        private_redis.start()  # same port
        wait_healthy(replicas)

        address = fresh_address()
        on_a, on_b = connect(first, address), connect(second, address)
        response = good(on_a, "/remove-background")
        assert_ok(response)
        assert_budget(response, 4, 3)
        response = good(on_b, "/remove-background")
        assert_ok(response)
        assert_budget(response, 4, 2)
        store = redis.Redis.from_url(private_redis.url)
        try:
            assert list(store.scan_iter(match="bg_remover*"))
        finally:
            store.close()
        assert [warnings_logged(server) for server in replicas] == warned  # no new outage
        for server in replicas:
            assert metric(server, 'bg_remover_redis_up{role="limits"}') == 1

    def test_frozen_redis_is_another_outage(
        self,
        replicas: tuple[BentoServer, BentoServer],
        private_redis: RedisServer,
        connect: Connect,
    ) -> None:
        """A Redis that accepts connections but never answers (SIGSTOP) must cost a request
        no more than the timeouts; once it thaws, the budget is shared and exact again."""
        if private_redis.process is None:
            private_redis.start()
        wait_healthy(replicas)
        warned = [warnings_logged(server) for server in replicas]
        address = fresh_address()
        on_a, on_b = connect(replicas[0], address), connect(replicas[1], address)
        assert private_redis.process is not None
        private_redis.process.send_signal(signal.SIGSTOP)
        try:
            for client in (on_a, on_b, on_a, on_b):
                started = time.monotonic()
                response = bad(client, "/remove-background")
                assert time.monotonic() - started < OUTAGE_REQUEST_MAX_S
                assert response.status_code == 400, response.text
            assert_budget(response, 4, 2)  # in process: each replica counted its own two
            for server in replicas:
                started = time.monotonic()
                body = health(server).json()
                assert time.monotonic() - started < OUTAGE_REQUEST_MAX_S
                assert body["status"] == "degraded", body
        finally:
            private_redis.process.send_signal(signal.SIGCONT)
        assert [warnings_logged(server) for server in replicas] == [n + 1 for n in warned]

        wait_healthy(replicas)
        address = fresh_address()
        on_a, on_b = connect(replicas[0], address), connect(replicas[1], address)
        for client, remaining in [(on_a, 3), (on_b, 2), (on_a, 1), (on_b, 0)]:
            response = bad(client, "/remove-background")
            assert response.status_code == 400, response.text
            assert_budget(response, 4, remaining)
        assert_limited(good(on_a, "/remove-background"), 4)
