"""A spent budget stays spent, however Redis is laid out: the whole HTTP API in process with
the real model, over real redis-servers with a small `maxmemory`.

The attack it guards against: spend a budget, then send enough cache misses on another route
to fill Redis. With budgets and results in one evicting Redis, the idle budget key is the
least recently used one and goes first, and the budget comes back.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests import images
from tests.integration.api_server import InProcessServer
from tests.redis_server import RedisServer, running_redis
from tests.serving import Connect

pytestmark = pytest.mark.slow

BUDGET = 3  # /remove-background per hour
MAXMEMORY = 24 << 20
EVICTING = ("--maxmemory", str(MAXMEMORY), "--maxmemory-policy", "allkeys-lru")


@pytest.fixture(scope="module")
def big_photo() -> bytes:
    """A 1400x1400 PNG: about 4 MB of PNG result per miss."""
    return images.encode(images.photo_image("astronaut").resize((1400, 1400)), "PNG")


@pytest.fixture
def evicting_redis(tmp_path: Path) -> Iterator[RedisServer]:
    (tmp_path / "redis").mkdir()
    with running_redis(tmp_path / "redis", *EVICTING) as server:
        yield server


def spend_the_budget(client: httpx.Client) -> None:
    photo = images.fresh(images.rgba_png())
    answers = [
        client.post("/remove-background", files={"file": ("a.png", photo)}) for _ in range(4)
    ]
    assert [answer.status_code for answer in answers] == [200] * BUDGET + [429]


def fill_with_misses(client: httpx.Client, photo: bytes, total: int) -> int:
    """Cache misses on the preview route (its own budget) until `total` bytes of results were
    made; returns how many bytes that was."""
    made = 0
    while made < total:
        files = {"file": ("big.png", images.fresh(photo))}
        answer = client.post("/remove-background-preview", files=files)
        assert answer.status_code == 200, answer.text[:300]
        assert answer.headers["x-cache"] == "miss"
        made += int(answer.headers["x-optimized-size"])
    return made


def still_refused(client: httpx.Client) -> httpx.Response:
    return client.post("/remove-background", files={"file": ("a.png", images.rgba_png())})


def cache_keys(url: str) -> list[bytes]:
    with redis.Redis.from_url(url) as client:
        return list(client.scan_iter(match="bg_remover:cache:*"))


def test_one_evicting_redis_for_both_keeps_a_spent_budget(
    tmp_path: Path, evicting_redis: RedisServer, big_photo: bytes, connect: Connect
) -> None:
    env = {"REDIS_URL": evicting_redis.url, "RATE_LIMIT_REMOVE_BG_PER_HOUR": str(BUDGET)}
    with InProcessServer(tmp_path / "api", env=env) as server:
        client = connect(server)
        spend_the_budget(client)
        fill_with_misses(client, big_photo, 2 * MAXMEMORY)
        again = still_refused(client)
    assert again.status_code == 429, "the spent budget came back after the cache filled Redis"
    assert again.headers["x-ratelimit-remaining"] == "0"
    assert cache_keys(evicting_redis.url), "the cache never wrote to Redis"
