"""The Redis roles without a server: URLs, which roles share a Redis, one client per Redis,
and the outage breaker (fake clock, scripted operations)."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from redisroles import CACHE, LIMITS, Breaker, RedisDown, connect, parse_url


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- URLs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "nodes", "tls"),
    [
        ("redis://redis:6379/0", (("redis", 6379),), False),
        ("redis://:secret@Redis.Example/2", (("redis.example", 6379),), False),
        ("rediss://h:6380", (("h", 6380),), True),
        ("async+redis://h:1", (("h", 1),), False),
        ("unix:///run/redis.sock?db=1", (("/run/redis.sock", 0),), False),
    ],
)
def test_one_server(url: str, nodes: tuple, tls: bool) -> None:
    address = parse_url(url)
    assert (address.nodes, address.tls, address.cluster) == (nodes, tls, False)
    assert address.url == url.removeprefix("async+")


def test_a_cluster_lists_its_nodes_and_credentials() -> None:
    address = parse_url("rediss+cluster://app:p%40ss@a:7000,b,[::1]:7002")
    assert address.cluster and address.tls
    assert address.nodes == (("a", 7000), ("b", 6379), ("::1", 7002))
    assert (address.username, address.password) == ("app", "p@ss")
    # limits takes clusters as redis+cluster only (TLS goes to it as an option).
    assert address.limits_url == "async+redis+cluster://app:p%40ss@a:7000,b,[::1]:7002"


@pytest.mark.parametrize(
    ("url", "limits_url"),
    [
        ("redis://h:1/0", "async+redis://h:1/0"),
        ("rediss://h:1", "async+rediss://h:1"),
        ("unix:///s.sock", "async+redis+unix:///s.sock"),
    ],
)
def test_the_url_limits_reads(url: str, limits_url: str) -> None:
    assert parse_url(url).limits_url == limits_url


@pytest.mark.parametrize(
    "url",
    [
        "http://user:secret@h:1",
        "redis+cluster://user:secret@a:1/3",  # a cluster has only database 0
        "redis+cluster://user:secret@",
        "redis+cluster://user:secret@a:99999",
        "redis://user:secret@h:port",
        "memcached://user:secret@h:1",
    ],
)
def test_a_bad_url_is_a_value_error_without_the_password(url: str) -> None:
    with pytest.raises(ValueError) as error:
        parse_url(url)
    assert "secret" not in str(error.value)


def test_two_databases_of_one_server_are_one_redis() -> None:
    budgets = parse_url("redis://redis:6379/0")
    assert budgets.shares_server_with(parse_url("redis://:pw@redis:6379/1"))
    assert not budgets.shares_server_with(parse_url("redis://redis-cache:6379/0"))
    assert not budgets.shares_server_with(parse_url("redis://redis:6380/0"))
    cluster = parse_url("redis+cluster://a:7000,b:7001")
    assert cluster.shares_server_with(parse_url("redis+cluster://b:7001"))
    assert not cluster.shares_server_with(parse_url("redis+cluster://c:7000"))


def test_roles_on_one_url_share_one_client() -> None:
    together = connect({LIMITS: "redis://r:1/0", CACHE: "redis://r:1/0"}, 0.1)
    assert together[LIMITS] is together[CACHE]
    assert together[LIMITS].pool is not None
    apart = connect({LIMITS: "redis://r:1/0", CACHE: "redis://c:1/0"}, 0.1)
    assert apart[LIMITS] is not apart[CACHE]
    assert apart[CACHE].pool is not apart[LIMITS].pool
    assert connect({}, 0.1) == {}


def test_a_cluster_connection_has_a_cluster_client_and_no_pool() -> None:
    (connection,) = connect({CACHE: "redis+cluster://a:7000,b:7001"}, 0.1).values()
    assert connection.pool is None
    assert type(connection.client).__name__ == "RedisCluster"
    assert connection.limits_options["socket_timeout"] == 0.1


# --- the breaker ------------------------------------------------------------------------------


class Scripted:
    def __init__(self) -> None:
        self.down = False
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.down:
            raise ConnectionError("refused")
        return "answer"


def breaker(clock: Clock, changes: list[bool] | None = None) -> Breaker:
    return Breaker(
        "cache",
        deadline=0.2,
        retry_interval=5.0,
        meanwhile="results not cached",
        clock=clock,
        on_change=None if changes is None else changes.append,
    )


def test_an_outage_fails_fast_and_probes_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, redis, changes = Clock(), Scripted(), []
    role = breaker(clock, changes)

    async def scenario() -> None:
        assert await role.call(redis) == "answer"
        redis.down = True
        for _ in range(5):
            with pytest.raises(RedisDown, match="refused"):
                await role.call(redis)
        assert redis.calls == 2 and not role.up  # only the first failure reached Redis
        clock.now += 5.1
        redis.down = False
        assert await role.call(redis) == "answer"  # the probe
        assert role.up

    with caplog.at_level(logging.INFO, logger="bg_remover.redis"):
        asyncio.run(scenario())
    assert changes == [False, True]
    messages = [r.getMessage() for r in caplog.records if r.name == "bg_remover.redis"]
    assert len(messages) == 2 and all("Redis for cache" in m for m in messages)
    assert "results not cached until it answers" in messages[0]


def test_a_health_probe_tries_redis_during_an_outage() -> None:
    clock, redis = Clock(), Scripted()
    role = breaker(clock)
    redis.down = True

    async def scenario() -> None:
        with pytest.raises(RedisDown):
            await role.call(redis)
        redis.down = False
        assert await role.call(redis, probe=True) == "answer"  # not due, but a probe
        assert role.up

    asyncio.run(scenario())


def test_a_hung_redis_costs_one_deadline() -> None:
    role = breaker(Clock())

    async def hung() -> None:
        await asyncio.Event().wait()

    async def scenario() -> float:
        started = time.monotonic()
        with pytest.raises(RedisDown, match="TimeoutError"):
            await role.call(hung)
        return time.monotonic() - started

    assert 0.2 <= asyncio.run(scenario()) < 1.0
