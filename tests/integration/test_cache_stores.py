"""The cache stores against the real thing: one test class over the in-process store and a
private redis-server, then Redis outages (stopped, then started again). Each test runs its
coroutines on one event loop (`run`) and closes its stores' connections on it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from cache import CacheKeys, Lookup, MemoryStore, RedisStore, codec
from tests.integration.conftest import Run
from tests.redis_server import RedisServer

TTL_S = 300
TIMEOUT_S = 0.25


def fresh_keys() -> CacheKeys:
    return CacheKeys(f"{time.monotonic_ns():x}", "u2netp:md5", "options")


@dataclass
class Clock:
    """The store's clock, moved by the test: past the retry interval without waiting."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def make_store(run: Run) -> Iterator[Callable[..., RedisStore]]:
    """RedisStore(...) whose connections are closed on the test's loop afterwards."""
    made: list[RedisStore] = []

    def make(url: str, **options: Any) -> RedisStore:
        options = {"timeout": TIMEOUT_S, "retry_interval": 0.5, **options}
        made.append(RedisStore(url, 4 << 20, TTL_S, **options))
        return made[-1]

    yield make
    for store in made:
        run(store.aclose())


@pytest.fixture(params=["memory", "redis"])
def store(
    request: pytest.FixtureRequest, make_store: Callable[..., RedisStore]
) -> MemoryStore | RedisStore:
    if request.param == "memory":
        return MemoryStore(max_bytes=10 << 20, max_item_bytes=4 << 20, ttl_s=TTL_S)
    server: RedisServer = request.getfixturevalue("private_redis")
    return make_store(server.url)


class TestStores:
    def test_saved_result_and_mask_come_back(
        self, store: MemoryStore | RedisStore, run: Run
    ) -> None:
        keys = fresh_keys()

        async def scenario() -> Lookup:
            await store.save(
                [(keys.result, {"format": "PNG"}, b"png bytes"), (keys.mask, {}, b"mask bytes")]
            )
            return await store.lookup(keys)

        found = run(scenario())
        assert found.result == ({"format": "PNG"}, b"png bytes")
        assert found.mask == ({}, b"mask bytes")

    def test_a_miss_is_empty(self, store: MemoryStore | RedisStore, run: Run) -> None:
        found = run(store.lookup(fresh_keys()))
        assert found.result is None and found.mask is None

    def test_values_over_the_item_bound_are_not_kept(
        self, store: MemoryStore | RedisStore, run: Run
    ) -> None:
        keys = fresh_keys()

        async def scenario() -> Lookup:
            await store.save([(keys.result, {}, b"x" * (5 << 20))])
            return await store.lookup(keys)

        assert run(scenario()).result is None

    def test_the_store_reports_itself_healthy(
        self, store: MemoryStore | RedisStore, run: Run
    ) -> None:
        ok, detail = run(store.check())
        assert ok and "cache" in detail


def test_redis_values_carry_the_ttl_and_one_prefix(
    private_redis: RedisServer, make_store: Callable[..., RedisStore], run: Run
) -> None:
    store = make_store(private_redis.url)
    keys = fresh_keys()
    run(store.save([(keys.result, {}, b"r"), (keys.mask, {}, b"m")]))
    client = redis.Redis.from_url(private_redis.url)
    try:
        for key in (keys.result, keys.mask):
            assert key.startswith("bg_remover:cache:")
            assert 0 < client.ttl(key) <= TTL_S
    finally:
        client.close()


def test_a_corrupted_redis_value_is_a_miss_and_is_deleted(
    private_redis: RedisServer, make_store: Callable[..., RedisStore], run: Run
) -> None:
    store = make_store(private_redis.url)
    keys = fresh_keys()
    client = redis.Redis.from_url(private_redis.url)
    try:
        client.set(keys.result, codec.encode({"format": "PNG"}, b"payload")[:-5])
        client.set(keys.mask, b"not a cache value at all")
        found = run(store.lookup(keys))
        assert found.result is None and found.mask is None
        assert client.exists(keys.result, keys.mask) == 0
    finally:
        client.close()


def test_a_dead_redis_is_a_fast_miss_and_the_cache_resumes(
    killable_redis: RedisServer, make_store: Callable[..., RedisStore], run: Run
) -> None:
    clock = Clock()
    store = make_store(killable_redis.url, retry_interval=0.5, clock=clock)
    keys = fresh_keys()

    async def scenario() -> None:
        await store.save([(keys.result, {}, b"before")])
        killable_redis.stop()
        started = time.monotonic()
        assert (await store.lookup(keys)).result is None
        await store.save([(keys.mask, {}, b"lost")])  # no error either
        assert time.monotonic() - started < 4 * TIMEOUT_S + 0.5
        ok, detail = await store.check()
        assert not ok and detail == "cache: off (redis unavailable)"
        killable_redis.start()
        await store.save([(keys.result, {}, b"skipped")])  # Redis skipped until the interval ends
        clock.now += 0.5
        assert (await store.lookup(keys)).result is None  # the restarted Redis is empty
        await store.save([(keys.result, {}, b"after")])
        assert (await store.lookup(keys)).result == ({}, b"after")
        assert (await store.check())[0]

    run(scenario())
