"""The cache stores against the real thing: one test class over the in-process store and a
private redis-server, then Redis outages (stopped, then started again), then results and
budgets in one Redis with a small `maxmemory` under every eviction policy. Each test runs its
coroutines on one event loop (`run`) and closes its stores' connections on it."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from cache import CacheKeys, Lookup, MemoryStore, RedisStore, codec
from cache.redis_store import SCAN_LIMIT
from ratelimit import RateLimiter, RateLimitExceeded
from redisroles import CACHE, LIMITS, RedisConnection, breaker_for, connect, parse_url
from tests.integration.conftest import Run
from tests.redis_server import RedisServer, running_redis

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

    def make(
        url: str,
        retry_interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        budgets_here: bool = False,
        **marks: Any,
    ) -> RedisStore:
        connection = RedisConnection(parse_url(url), TIMEOUT_S)
        breaker = breaker_for(CACHE, TIMEOUT_S, retry_interval, "results not cached", clock=clock)
        options = {"memory_percent": 75.0, "unbounded_max_bytes": 256 << 20, **marks}
        made.append(
            RedisStore(
                connection,
                breaker,
                max_item_bytes=4 << 20,
                ttl_s=TTL_S,
                budgets_here=budgets_here,
                **options,
            )
        )
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
        expected = "redis ok" if isinstance(store, RedisStore) else "in process, 0 of 10 MiB used"
        assert ok and detail == expected


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
        assert not ok and detail.startswith("redis unreachable (ConnectionError")
        assert detail.endswith("results not cached")
        killable_redis.start()
        await store.save([(keys.result, {}, b"skipped")])  # Redis skipped until the interval ends
        clock.now += 0.5
        assert (await store.lookup(keys)).result is None  # the restarted Redis is empty
        await store.save([(keys.result, {}, b"after")])
        assert (await store.lookup(keys)).result == ({}, b"after")
        assert (await store.check())[0]

    run(scenario())


# --- the cache and the budgets in one Redis ----------------------------------------------------

MAXMEMORY = 24 << 20
VALUE = 1 << 20


def bounded_redis(tmp_path: Path, policy: str, maxmemory: int = MAXMEMORY) -> Any:
    (tmp_path / "redis").mkdir(exist_ok=True)
    options = ("--maxmemory", str(maxmemory), "--maxmemory-policy", policy)
    return running_redis(tmp_path / "redis", *options)


def info(url: str) -> dict[str, Any]:
    with redis.Redis.from_url(url) as client:
        return {**client.info("memory"), **client.info("stats")}


async def kept(store: RedisStore, written: list[CacheKeys]) -> list[bool]:
    """Which of the written results are still there. (Which ones went is not asserted: idle
    times are whole seconds, and a test writes them all within one or two.)"""
    return [(await store.lookup(keys)).result is not None for keys in written]


async def fill(store: RedisStore, megabytes: int) -> list[CacheKeys]:
    written = []
    for _ in range(megabytes):
        keys = fresh_keys()
        await store.save([(keys.result, {}, os.urandom(VALUE))])
        written.append(keys)
    return written


def budget_keys(url: str) -> int:
    with redis.Redis.from_url(url) as client:
        return sum(1 for _ in client.scan_iter(match="bg_remover:LIMITER*"))


@pytest.mark.parametrize(
    "policy", ["allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru", "noeviction"]
)
def test_a_spent_budget_stays_spent_in_a_shared_redis(
    tmp_path: Path, policy: str, run: Run
) -> None:
    """Budgets and results in one Redis: whatever Redis does when full, filling it with
    results neither evicts a budget nor makes a budget write fail (which would fail open),
    and the cache keeps its newest results by dropping its own idlest ones."""
    with bounded_redis(tmp_path, policy) as server:
        connections = connect({LIMITS: server.url, CACHE: server.url}, TIMEOUT_S)
        limiter = RateLimiter({"remove": "3/hour"}, connection=connections[LIMITS])
        store = RedisStore(
            connections[CACHE],
            breaker_for(CACHE, TIMEOUT_S, 5.0, "results not cached"),
            max_item_bytes=4 << 20,
            ttl_s=TTL_S,
            budgets_here=True,
            memory_percent=75.0,
            unbounded_max_bytes=256 << 20,
        )
        clients = [f"ip:{n}" for n in range(100)]

        async def scenario() -> tuple[int, list[bool]]:  # one loop: the clients are its
            for client in clients:
                for _ in range(3):
                    await limiter.hit("remove", client)
            spent = budget_keys(server.url)
            written = await fill(store, 2 * MAXMEMORY // VALUE)
            for client in clients:
                with pytest.raises(RateLimitExceeded):
                    await limiter.hit("remove", client)
            assert not limiter.degraded, "a budget write failed: the limits failed open"
            found = await kept(store, written)
            await limiter.aclose()  # and the store's: one connection
            return spent, found

        spent, found = run(scenario())
        stats = info(server.url)
        assert budget_keys(server.url) == spent == len(clients)
    assert stats["evicted_keys"] == 0
    assert stats["used_memory_peak"] <= MAXMEMORY
    assert found[-1] and not all(found), "the newest kept, some of the cache's own dropped"
    assert not store.full


def test_a_cache_of_its_own_lets_redis_evict_old_results(
    tmp_path: Path, make_store: Callable[..., RedisStore], run: Run
) -> None:
    with bounded_redis(tmp_path, "allkeys-lru") as server:
        store = make_store(server.url)

        async def scenario() -> list[bool]:
            return await kept(store, await fill(store, 2 * MAXMEMORY // VALUE))

        found = run(scenario())
        stats = info(server.url)
    assert stats["evicted_keys"] > 0  # Redis's own LRU did it
    assert found[-1] and not all(found)


@pytest.mark.parametrize(("policy", "maxmemory"), [("noeviction", MAXMEMORY), ("allkeys-lru", 0)])
def test_a_redis_that_never_evicts_gets_the_cache_s_own_lru(
    tmp_path: Path, policy: str, maxmemory: int, make_store: Callable[..., RedisStore], run: Run
) -> None:
    """Under noeviction a full Redis refuses writes, and without maxmemory it grows until it
    is killed: the cache keeps below its mark (50 % of maxmemory, or the bound) instead."""
    with bounded_redis(tmp_path, policy, maxmemory) as server:
        store = make_store(server.url, memory_percent=50.0, unbounded_max_bytes=12 << 20)

        async def scenario() -> Lookup:
            written = await fill(store, MAXMEMORY // VALUE)
            return await store.lookup(written[-1])

        newest = run(scenario())
        stats = info(server.url)
    mark = MAXMEMORY // 2 if maxmemory else 12 << 20
    assert stats["used_memory"] <= mark + VALUE
    assert stats["evicted_keys"] == 0
    assert newest.result is not None and not store.full and store.breaker.up


def test_the_cache_yields_to_other_data_and_never_deletes_it(
    tmp_path: Path, make_store: Callable[..., RedisStore], run: Run
) -> None:
    """A Redis already above the mark with data that is not the cache's: nothing is cached,
    nothing of that data is deleted, and the store says it is full."""
    with bounded_redis(tmp_path, "noeviction") as server:
        with redis.Redis.from_url(server.url) as client:
            for n in range(14):  # above the mark (12 MB), below maxmemory
                client.set(f"bg_remover:LIMITER/other/{n}", os.urandom(VALUE))
        store = make_store(server.url, budgets_here=True, memory_percent=50.0)

        async def scenario() -> tuple[Lookup, tuple[bool, str]]:
            keys = await fill(store, 3)
            return await store.lookup(keys[-1]), await store.check()

        last, check = run(scenario())
        assert budget_keys(server.url) == 14
    assert last.result is None and store.full
    assert check == (True, "redis ok, full of other data: new results are not cached")


BUDGETS = 3 * SCAN_LIMIT // 4  # within what one save scans for the cache's own keys


def test_the_cache_finds_its_own_keys_among_many_budgets(
    tmp_path: Path, make_store: Callable[..., RedisStore], run: Run
) -> None:
    """A Redis holding far more budgets than results (a thousand for each of the cache's): the
    cache still finds its own results to drop (SCAN with MATCH, not a random key, which would
    nearly always be a budget), and drops nothing else."""
    with bounded_redis(tmp_path, "noeviction") as server:
        with redis.Redis.from_url(server.url) as client:
            pipe = client.pipeline(transaction=False)
            for n in range(BUDGETS):
                pipe.rpush(f"bg_remover:LIMITER/moving-window/remove/ip:{n}/3/1/hour", n)
            pipe.execute()
        store = make_store(server.url, budgets_here=True)

        async def scenario() -> list[bool]:
            return await kept(store, await fill(store, 2 * MAXMEMORY // VALUE))

        found = run(scenario())
        stats = info(server.url)
        assert budget_keys(server.url) == BUDGETS
    assert found[-1] and not all(found) and not store.full
    assert stats["evicted_keys"] == 0 and stats["used_memory_peak"] <= MAXMEMORY
