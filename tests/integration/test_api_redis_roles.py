"""A spent budget stays spent, however Redis is laid out, and each role's Redis can go away on
its own: the whole HTTP API in process with the real model, over real redis-servers.

The attack the first test guards against: spend a budget, then send enough cache misses on
another route to fill Redis. With budgets and results in one evicting Redis, the idle budget
key is the least recently used one and goes first, and the budget comes back.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client import REGISTRY

from tests import images
from tests.answers import assert_budget, assert_limited, assert_ok
from tests.integration.api_server import InProcessServer
from tests.redis_server import RedisServer, running_redis
from tests.serving import Connect

pytestmark = pytest.mark.slow

BUDGET = 3  # /remove-background per hour
MAXMEMORY = 24 << 20
EVICTING = ("--maxmemory", str(MAXMEMORY), "--maxmemory-policy", "allkeys-lru")
RETRY_INTERVAL_S = 0.5
RECOVERY_TIMEOUT_S = 10.0
BUDGET_KEYS = "bg_remover:LIMITER*"
CACHE_KEYS = "bg_remover:cache:*"


@pytest.fixture(scope="module")
def big_photo() -> bytes:
    """A 1400x1400 PNG: about 4 MB of PNG result per miss."""
    return images.encode(images.photo_image("astronaut").resize((1400, 1400)), "PNG")


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def start_redis(stack: ExitStack, tmp_path: Path, name: str, *options: str) -> RedisServer:
    (tmp_path / name).mkdir()
    return stack.enter_context(running_redis(tmp_path / name, *options))


def serve(stack: ExitStack, tmp_path: Path, **urls: str) -> InProcessServer:
    env = {
        **urls,
        "RATE_LIMIT_REMOVE_BG_PER_HOUR": str(BUDGET),
        "REDIS_RETRY_INTERVAL": str(RETRY_INTERVAL_S),
    }
    return stack.enter_context(InProcessServer(tmp_path / "api", env=env))


def remove(client: httpx.Client, photo: bytes | None = None) -> httpx.Response:
    files = {"file": ("a.png", photo or images.fresh(images.rgba_png()))}
    return client.post("/remove-background", files=files)


def preview(client: httpx.Client, photo: bytes) -> httpx.Response:
    answer = client.post("/remove-background-preview", files={"file": photo})
    assert answer.status_code == 200, answer.text[:300]
    return answer


def fill_with_misses(client: httpx.Client, photo: bytes, total: int) -> bytes:
    """Cache misses on the preview route (its own budget) until `total` bytes of results were
    made; returns the last photo sent."""
    made = 0
    while made < total:
        sent = images.fresh(photo)
        answer = preview(client, sent)
        assert answer.headers["x-cache"] == "miss"
        made += int(answer.headers["x-optimized-size"])
    return sent


def keys(server: RedisServer, pattern: str) -> list[bytes]:
    with redis.Redis.from_url(server.url) as client:
        return list(client.scan_iter(match=pattern))


def evicted(server: RedisServer) -> int:
    with redis.Redis.from_url(server.url) as client:
        return int(client.info("stats")["evicted_keys"])


def redis_check(client: httpx.Client) -> tuple[str, dict[str, object]]:
    body = client.get("/health").json()
    return body["status"], body["checks"]["redis"]


def gauge(role: str) -> float | None:
    return REGISTRY.get_sample_value("bg_remover_redis_up", {"role": role})


def fallbacks() -> float:
    labels = {"endpoint": "remove-background"}
    return REGISTRY.get_sample_value("bg_remover_ratelimit_fallback_total", labels) or 0.0


def wait_healthy(client: httpx.Client) -> None:
    deadline = time.monotonic() + RECOVERY_TIMEOUT_S
    while redis_check(client)[0] != "healthy":
        assert time.monotonic() < deadline, redis_check(client)
        time.sleep(0.1)


@pytest.mark.parametrize("layout", ["one Redis", "two roles"])
def test_filling_the_cache_never_brings_a_spent_budget_back(
    tmp_path: Path, servers: ExitStack, big_photo: bytes, connect: Connect, layout: str
) -> None:
    cache_redis = start_redis(servers, tmp_path, "cache", *EVICTING)
    if layout == "one Redis":  # REDIS_URL only: budgets and results share its memory
        budgets_redis = cache_redis
        api = serve(servers, tmp_path, REDIS_URL=cache_redis.url)
    else:
        budgets_redis = start_redis(
            servers, tmp_path, "budgets", "--maxmemory-policy", "noeviction"
        )
        api = serve(
            servers,
            tmp_path,
            RATE_LIMIT_REDIS_URL=budgets_redis.url,
            CACHE_REDIS_URL=cache_redis.url,
        )
    client = connect(api)
    assert [remove(client).status_code for _ in range(BUDGET + 1)] == [200] * BUDGET + [429]
    last = fill_with_misses(client, big_photo, 2 * MAXMEMORY)
    assert_limited(remove(client), BUDGET), "the spent budget came back after the cache filled"
    assert keys(budgets_redis, BUDGET_KEYS)
    assert preview(client, last).headers["x-cache"] == "hit"  # the newest results stay
    assert redis_check(client)[1] == {"ok": True, "detail": "limits: redis ok; cache: redis ok"}
    if layout == "one Redis":  # the cache dropped its own oldest: Redis never had to evict
        assert evicted(cache_redis) == 0
    else:  # a Redis of its own evicts old results, and never sees a budget
        assert evicted(cache_redis) > 0
        assert not keys(cache_redis, BUDGET_KEYS) and not keys(budgets_redis, CACHE_KEYS)


def test_losing_the_cache_redis_leaves_budgets_untouched(
    tmp_path: Path, servers: ExitStack, connect: Connect
) -> None:
    budgets_redis = start_redis(servers, tmp_path, "budgets")
    cache_redis = start_redis(servers, tmp_path, "cache")
    api = serve(
        servers, tmp_path, RATE_LIMIT_REDIS_URL=budgets_redis.url, CACHE_REDIS_URL=cache_redis.url
    )
    client, photo = connect(api), images.fresh(images.photo("chelsea", "JPEG"))
    assert remove(client, photo).headers["x-cache"] == "miss"
    assert (gauge("limits"), gauge("cache")) == (1, 1)
    fallen_back = fallbacks()

    cache_redis.stop()
    during = remove(client, photo)
    assert_ok(during)
    assert during.headers["x-cache"] == "miss"  # the cache is skipped, never an error
    assert_budget(during, BUDGET, 1)  # counted in the budgets' Redis, exactly
    assert_ok(remove(client, photo))
    assert_limited(remove(client, photo), BUDGET)
    status, check = redis_check(client)
    assert status == "degraded" and check["ok"] is False
    assert str(check["detail"]).startswith("limits: redis ok; cache: redis unreachable (")
    assert (gauge("limits"), gauge("cache")) == (1, 0)
    assert fallbacks() == fallen_back  # no budget decided in process

    cache_redis.start()  # empty: what it held is gone, the budgets are not
    wait_healthy(client)
    assert gauge("cache") == 1
    assert_limited(remove(client, photo), BUDGET)


def test_losing_the_budgets_redis_fails_open_and_says_so(
    tmp_path: Path, servers: ExitStack, connect: Connect
) -> None:
    budgets_redis = start_redis(servers, tmp_path, "budgets")
    cache_redis = start_redis(servers, tmp_path, "cache")
    api = serve(
        servers, tmp_path, RATE_LIMIT_REDIS_URL=budgets_redis.url, CACHE_REDIS_URL=cache_redis.url
    )
    client, photo = connect(api), images.fresh(images.photo("chelsea", "JPEG"))
    assert_budget(remove(client, photo), BUDGET, 2)
    fallen_back = fallbacks()

    budgets_redis.stop()
    # RATE_LIMIT_FAIL_OPEN: a fresh budget of 3 in this process, and the cache still works.
    during = [remove(client, photo) for _ in range(BUDGET + 1)]
    assert [answer.status_code for answer in during] == [200] * BUDGET + [429]
    assert_budget(during[0], BUDGET, 2)
    assert {answer.headers.get("x-cache") for answer in during[:BUDGET]} == {"hit"}
    assert fallbacks() == fallen_back + BUDGET + 1  # every decision counted, the 429 too
    status, check = redis_check(client)
    assert status == "degraded" and check["ok"] is False
    assert str(check["detail"]).startswith("limits: redis unreachable: ")
    assert str(check["detail"]).endswith("; cache: redis ok")
    assert (gauge("limits"), gauge("cache")) == (0, 1)

    budgets_redis.start()  # empty: this test's server keeps no AOF
    wait_healthy(client)
    assert gauge("limits") == 1
    assert_budget(remove(client, photo), BUDGET, 2)  # shared through Redis again
    assert fallbacks() == fallen_back + BUDGET + 1
