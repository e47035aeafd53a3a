"""FailoverBackend's outage state machine, with a fake clock and a scripted Redis.

No server is contacted: the operation decides whether "Redis" fails.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import RateLimiter as Strategy

from ratelimit import RedisUnavailable
from ratelimit.backend import FailoverBackend, redis_storage


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


def make_backend(clock: Clock, fail_open: bool = True) -> FailoverBackend:
    # Nothing connects at construction; the scripted operation never uses the client.
    storage = redis_storage("redis://127.0.0.1:1/0", "test", 0.25)
    return FailoverBackend(
        "moving-window", storage, fail_open=fail_open, retry_interval=5.0, clock=clock
    )


def test_outage_falls_back_and_probes_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, redis = Clock(), ScriptedRedis()
    backend = make_backend(clock)

    async def scenario() -> None:
        assert await backend.run(redis) == "redis"
        redis.down = True
        redis.calls.clear()
        results = [await backend.run(redis) for _ in range(10)]
        assert results == ["memory"] * 10
        # Only the first request tried Redis; the other nine went straight to memory.
        assert redis.calls == ["redis"] + ["memory"] * 10
        assert backend.degraded

        redis.calls.clear()
        clock.now += 4.9
        await backend.run(redis)
        assert redis.calls == ["memory"]
        clock.now += 0.2  # the probe is due: exactly one request tries Redis
        await backend.run(redis)
        await backend.run(redis)
        assert redis.calls == ["memory", "redis", "memory", "memory"]

        redis.down = False
        clock.now += 5.1
        assert await backend.run(redis) == "redis"
        assert not backend.degraded
        assert await backend.run(redis) == "redis"

    with caplog.at_level(logging.INFO, logger="ratelimit"):
        asyncio.run(scenario())
    levels = [r.levelname for r in caplog.records if r.name == "ratelimit"]
    assert levels == ["WARNING", "INFO"]  # one warning per outage, one recovery line


def test_fail_closed_raises_without_retrying_every_request() -> None:
    clock, redis = Clock(), ScriptedRedis()
    backend = make_backend(clock, fail_open=False)
    redis.down = True

    async def scenario() -> None:
        for _ in range(3):
            with pytest.raises(RedisUnavailable, match="refused"):
                await backend.run(redis)
        assert redis.calls == ["redis"]
        assert backend.degraded

    asyncio.run(scenario())


def test_no_redis_configured_always_uses_memory() -> None:
    backend = FailoverBackend("moving-window", None)
    redis = ScriptedRedis()
    assert asyncio.run(backend.run(redis)) == "memory"
    assert not backend.degraded


def test_redis_url_forms() -> None:
    for url in ("redis://h:1/0", "rediss://h:1", "async+redis://h:1"):
        assert redis_storage(url, "p", 0.1) is not None


def test_unsupported_url_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="scheme") as error:
        redis_storage("http://user:pw@h:1", "p", 0.1)
    assert "pw" not in str(error.value)


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
        await backend.run(redis)  # outage starts
        clock.now += 5.1  # a probe is due
        redis.calls.clear()
        await asyncio.gather(*(backend.run(slow_dead_redis) for _ in range(6)))
        assert redis.calls.count("redis") == 1
        assert redis.calls.count("memory") == 6

    asyncio.run(scenario())
