"""FailoverBackend over the budgets' breaker, with a fake clock and a scripted Redis.

No server is contacted: the operation decides whether "Redis" fails.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from limits.aio.storage import MemoryStorage, RedisClusterStorage, RedisStorage
from limits.aio.strategies import RateLimiter as Strategy
from redis.asyncio.cluster import RedisCluster

from ratelimit import RedisUnavailable
from ratelimit.backend import FailoverBackend, redis_storage
from redisroles import Breaker, RedisConnection, parse_url


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ScriptedRedis:
    """An operation that records where it ran and fails while ``down`` is set."""

    def __init__(self) -> None:
        self.down = False
        self.calls: list[str] = []

    async def __call__(self, strategy: Strategy) -> str:
        where = "memory" if isinstance(strategy.storage, MemoryStorage) else "redis"
        self.calls.append(where)
        if where == "redis" and self.down:
            raise ConnectionError("refused")
        return where


def storage_for(url: str):  # type: ignore[no-untyped-def]
    return redis_storage(RedisConnection(parse_url(url), 0.1), "p")


def make_backend(clock: Clock, fail_open: bool = True) -> FailoverBackend:
    # Nothing connects at construction; the scripted operation never uses the client.
    storage = storage_for("redis://127.0.0.1:1/0")
    breaker = Breaker(
        "limits", deadline=0.5, retry_interval=5.0, meanwhile="in-process limits", clock=clock
    )
    return FailoverBackend("moving-window", storage, breaker, never_called, fail_open=fail_open)


async def never_called() -> None:
    raise AssertionError("no health check here")


async def where(backend: FailoverBackend, redis: ScriptedRedis) -> str:
    answer, in_process = await backend.run(redis)
    assert in_process == (answer == "memory")  # the fallback says so
    return answer


def test_outage_falls_back_and_probes_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, redis = Clock(), ScriptedRedis()
    backend = make_backend(clock)

    async def scenario() -> None:
        assert await where(backend, redis) == "redis"
        redis.down = True
        redis.calls.clear()
        results = [await where(backend, redis) for _ in range(10)]
        assert results == ["memory"] * 10
        # Only the first request tried Redis; the other nine went straight to memory.
        assert redis.calls == ["redis"] + ["memory"] * 10
        assert backend.degraded

        redis.calls.clear()
        clock.now += 4.9
        await where(backend, redis)
        assert redis.calls == ["memory"]
        clock.now += 0.2  # the probe is due: exactly one request tries Redis
        await where(backend, redis)
        await where(backend, redis)
        assert redis.calls == ["memory", "redis", "memory", "memory"]

        redis.down = False
        clock.now += 5.1
        assert await where(backend, redis) == "redis"
        assert not backend.degraded
        assert await where(backend, redis) == "redis"

    with caplog.at_level(logging.INFO, logger="bg_remover.redis"):
        asyncio.run(scenario())
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "bg_remover.redis"]
    # One warning per outage, one recovery line, both naming the role.
    assert [level for level, _ in lines] == ["WARNING", "INFO"]
    assert all("Redis for limits" in message for _, message in lines)
    assert "in-process limits until it answers" in lines[0][1]


def test_fail_closed_raises_without_retrying_every_request() -> None:
    clock, redis = Clock(), ScriptedRedis()
    backend = make_backend(clock, fail_open=False)
    redis.down = True

    async def scenario() -> None:
        for _ in range(3):
            with pytest.raises(RedisUnavailable, match="refused"):
                await where(backend, redis)
        assert redis.calls == ["redis"]
        assert backend.degraded

    asyncio.run(scenario())


def test_no_redis_configured_always_uses_memory() -> None:
    backend = FailoverBackend("moving-window", None)
    redis = ScriptedRedis()
    assert asyncio.run(backend.run(redis)) == ("memory", False)  # the primary, not a fallback
    assert not backend.degraded


@pytest.mark.parametrize(
    "url", ["redis://h:1/0", "rediss://h:1", "async+redis://h:1", "unix:///tmp/r.sock?db=1"]
)
def test_limits_runs_on_the_connections_own_pool(url: str) -> None:
    connection = RedisConnection(parse_url(url), 0.1)
    storage = redis_storage(connection, "p")
    assert isinstance(storage, RedisStorage) and not isinstance(storage, RedisClusterStorage)
    assert storage.bridge.get_connection().connection_pool is connection.pool


def test_a_cluster_url_gives_limits_its_cluster_storage() -> None:
    connection = RedisConnection(parse_url("redis+cluster://u:pw@h1:7000,h2:7001"), 0.1)
    storage = redis_storage(connection, "p")
    assert isinstance(storage, RedisClusterStorage)
    client = storage.bridge.get_connection()
    assert isinstance(client, RedisCluster)
    assert {(node.host, node.port) for node in client.startup_nodes} == {
        ("h1", 7000),
        ("h2", 7001),
    }
    assert client.connection_kwargs["password"] == "pw"
    assert client.connection_kwargs["socket_timeout"] == 0.1


def test_requests_during_a_probe_do_not_probe_too() -> None:
    clock, redis = Clock(), ScriptedRedis()
    backend = make_backend(clock)

    async def slow_dead_redis(strategy: Strategy) -> str:
        if not isinstance(strategy.storage, MemoryStorage):
            redis.calls.append("redis")
            await asyncio.sleep(0.05)  # a probe that takes its time, then fails
            raise TimeoutError
        redis.calls.append("memory")
        return "memory"

    async def scenario() -> None:
        redis.down = True
        await where(backend, redis)  # outage starts
        clock.now += 5.1  # a probe is due
        redis.calls.clear()
        await asyncio.gather(*(backend.run(slow_dead_redis) for _ in range(6)))
        assert redis.calls.count("redis") == 1
        assert redis.calls.count("memory") == 6

    asyncio.run(scenario())
