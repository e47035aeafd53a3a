"""The cache stores against the real thing: one test class over the in-process store and a
private redis-server, then Redis outages (stopped, then started again)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis

from cache import CacheKeys, MemoryStore, RedisStore, codec
from tests.redis_server import RedisServer

TTL_S = 300
TIMEOUT_S = 0.25


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def fresh_keys() -> CacheKeys:
    return CacheKeys(f"{time.monotonic_ns():x}", "u2netp:md5", "options")


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> MemoryStore | RedisStore:
    if request.param == "memory":
        return MemoryStore(max_bytes=10 << 20, max_item_bytes=4 << 20, ttl_s=TTL_S)
    server: RedisServer = request.getfixturevalue("private_redis")
    return RedisStore(
        server.url, max_item_bytes=4 << 20, ttl_s=TTL_S, timeout=TIMEOUT_S, retry_interval=0.5
    )


class TestStores:
    def test_saved_result_and_mask_come_back(self, store: MemoryStore | RedisStore) -> None:
        keys = fresh_keys()

        async def scenario() -> Any:
            await store.save(
                [(keys.result, {"format": "PNG"}, b"png bytes"), (keys.mask, {}, b"mask bytes")]
            )
            return await store.lookup(keys)

        found = run(scenario())
        assert found.result == ({"format": "PNG"}, b"png bytes")
        assert found.mask == ({}, b"mask bytes")

    def test_a_miss_is_empty(self, store: MemoryStore | RedisStore) -> None:
        found = run(store.lookup(fresh_keys()))
        assert found.result is None and found.mask is None

    def test_values_over_the_item_bound_are_not_kept(self, store: MemoryStore | RedisStore) -> None:
        keys = fresh_keys()

        async def scenario() -> Any:
            await store.save([(keys.result, {}, b"x" * (5 << 20))])
            return await store.lookup(keys)

        assert run(scenario()).result is None

    def test_the_store_reports_itself_healthy(self, store: MemoryStore | RedisStore) -> None:
        ok, detail = run(store.check())
        assert ok and "cache" in detail


def test_redis_values_carry_the_ttl_and_one_prefix(private_redis: RedisServer) -> None:
    store = RedisStore(private_redis.url, 4 << 20, TTL_S, TIMEOUT_S, 0.5)
    keys = fresh_keys()
    run(store.save([(keys.result, {}, b"r"), (keys.mask, {}, b"m")]))
    client = redis.Redis.from_url(private_redis.url)
    try:
        for key in (keys.result, keys.mask):
            assert key.startswith("bg_remover:cache:")
            assert 0 < client.ttl(key) <= TTL_S
    finally:
        client.close()


def test_a_corrupted_redis_value_is_a_miss_and_is_deleted(private_redis: RedisServer) -> None:
    store = RedisStore(private_redis.url, 4 << 20, TTL_S, TIMEOUT_S, 0.5)
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


def test_a_dead_redis_is_a_fast_miss_and_the_cache_resumes(killable_redis: RedisServer) -> None:
    store = RedisStore(killable_redis.url, 4 << 20, TTL_S, TIMEOUT_S, retry_interval=0.5)
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
        await asyncio.sleep(0.6)  # past the retry interval
        await store.save([(keys.result, {}, b"after")])
        assert (await store.lookup(keys)).result == ({}, b"after")
        assert (await store.check())[0]

    run(scenario())
