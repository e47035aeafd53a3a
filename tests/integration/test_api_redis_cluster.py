"""Two replicas of the whole HTTP API in process on a real three-master Redis Cluster started
here on loopback: budgets exact across the replicas, results shared, no multi-key command
across slots, and a master killed and started again under them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests import images
from tests.answers import assert_budget, assert_limited, assert_ok
from tests.integration.api_server import InProcessServer
from tests.redis_cluster import RedisCluster, running_cluster
from tests.serving import Connect, fresh_address

pytestmark = pytest.mark.slow

BUDGET = 4
PHOTO = images.photo("chelsea", "JPEG")
RETRY_INTERVAL_S = 0.5
RECOVERY_TIMEOUT_S = 20.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    with running_cluster(tmp_path_factory.mktemp("cluster")) as started:
        yield started


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, cluster: RedisCluster
) -> Iterator[tuple[InProcessServer, InProcessServer]]:
    env = {
        "REDIS_URL": cluster.url,
        "RATE_LIMIT_REMOVE_BG_PER_HOUR": str(BUDGET),
        "REDIS_RETRY_INTERVAL": str(RETRY_INTERVAL_S),
    }
    with (
        InProcessServer(tmp_path_factory.mktemp("replica-a"), env=env) as first,
        InProcessServer(tmp_path_factory.mktemp("replica-b"), env=env) as second,
    ):
        yield first, second


def remove(
    client: httpx.Client, photo: bytes, path: str = "/remove-background", **options: str
) -> httpx.Response:
    return client.post(path, files={"file": ("cat.jpg", photo)}, data=options)


def preview(client: httpx.Client, photo: bytes, **options: str) -> httpx.Response:
    """Its own budget, which this module leaves generous."""
    return remove(client, photo, "/remove-background-preview", **options)


def redis_check(server: InProcessServer) -> tuple[str, str]:
    body = httpx.get(f"{server.url}/health", timeout=10).json()
    return body["status"], body["checks"]["redis"]["detail"]


def wait_healthy(servers: tuple[InProcessServer, ...]) -> None:
    deadline = time.monotonic() + RECOVERY_TIMEOUT_S
    while any(redis_check(server)[0] != "healthy" for server in servers):
        assert time.monotonic() < deadline, [redis_check(server) for server in servers]
        time.sleep(0.2)


def both(replicas: tuple[InProcessServer, ...], connect: Connect) -> list[httpx.Client]:
    """A client on each replica speaking from one address: one budget, if it is shared."""
    address = fresh_address()
    return [connect(server, address) for server in replicas]


class TestCluster:
    """In order; each test starts from a healthy cluster, so each can also run alone."""

    def test_budgets_are_exact_across_replicas(
        self, replicas: tuple[InProcessServer, ...], cluster: RedisCluster, connect: Connect
    ) -> None:
        on_a, on_b = both(replicas, connect)
        for client, remaining in [(on_a, 3), (on_b, 2), (on_a, 1), (on_b, 0)]:
            response = remove(client, images.fresh(PHOTO))
            assert_ok(response)
            assert_budget(response, BUDGET, remaining)
        assert_limited(remove(on_a, PHOTO), BUDGET)
        assert_limited(remove(on_b, PHOTO), BUDGET)
        assert cluster.keys("bg_remover:LIMITER*")
        for server in replicas:
            assert redis_check(server) == ("healthy", "limits: redis ok; cache: redis ok")

    def test_a_result_made_on_one_replica_is_a_hit_on_the_other(
        self, replicas: tuple[InProcessServer, ...], cluster: RedisCluster, connect: Connect
    ) -> None:
        on_a, on_b = both(replicas, connect)
        photos = [images.fresh(PHOTO) for _ in range(3)]  # spread over the slots
        for photo in photos:
            made, reused = preview(on_a, photo), preview(on_b, photo)
            assert (made.headers["x-cache"], reused.headers["x-cache"]) == ("miss", "hit")
            assert reused.json()["image"] == made.json()["image"]
        masked = preview(on_b, photos[0], format="WEBP")
        assert masked.headers["x-cache"] == "mask"
        conditional = on_b.post(
            "/remove-background-preview",
            files={"file": ("cat.jpg", photos[0])},
            headers={"If-None-Match": preview(on_a, photos[0]).headers["etag"]},
        )
        assert conditional.status_code == 304
        # Each request's keys share a hash tag: no command ever spanned two slots.
        assert len(cluster.keys("bg_remover:cache:*")) >= 2 * len(photos)
        assert cluster.total("errorstats", "errorstat_CROSSSLOT") == 0

    def test_a_master_killed_keeps_the_service_answering_until_it_recovers(
        self, replicas: tuple[InProcessServer, ...], cluster: RedisCluster, connect: Connect
    ) -> None:
        victim = cluster.nodes[1]
        victim.stop()
        try:
            cluster.wait_state("fail", [node for node in cluster.nodes if node is not victim])
            on_a, on_b = both(replicas, connect)
            photo = images.fresh(PHOTO)
            # Fail-open: each replica counts a fresh budget of its own; the cache is skipped.
            for client in (on_a, on_b):
                for remaining in (3, 2):
                    response = remove(client, photo)
                    assert_ok(response)
                    assert_budget(response, BUDGET, remaining)
                    assert response.headers["x-cache"] == "miss"
            for server in replicas:
                status, detail = redis_check(server)
                assert status == "degraded", detail
                assert detail.startswith("limits: redis unreachable: "), detail
                assert "; cache: redis unreachable (" in detail
        finally:
            victim.start()  # same port and nodes.conf: it rejoins with its slots
        cluster.wait_state("ok")
        wait_healthy(replicas)
        on_a, on_b = both(replicas, connect)
        photo = images.fresh(PHOTO)
        assert_budget(remove(on_a, photo), BUDGET, 3)
        again = remove(on_b, photo)
        assert_budget(again, BUDGET, 2)  # shared through the cluster again
        assert again.headers["x-cache"] == "hit"
