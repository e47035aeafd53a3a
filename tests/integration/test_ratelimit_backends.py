"""The same budget tests on every storage, then Redis outages on a private server.

Like ``limits``' own suite: one class, parametrized over backends and strategies. Each test runs
its coroutines on one event loop (`run`) and closes its limiters' connections on it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import pytest
import redis

from ratelimit import RateLimiter, RateLimitExceeded, RedisUnavailable
from tests.integration.conftest import Run


class RedisServer(Protocol):
    """What conftest's private redis-server fixtures provide."""

    @property
    def url(self) -> str: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...


STRATEGIES = ["moving-window", "fixed-window", "sliding-window-counter"]
LIMITS = {"remove": "3/hour", "preview": "5/hour", "batch": "10/hour"}
BUDGET_TEST_SOCKET_TIMEOUT_S = 5.0


@dataclass
class Backend:
    name: str
    redis_url: str | None
    key_prefix: str
    made: list[RateLimiter] = field(default_factory=list)

    def limiter(self, limits: dict[str, str], **options: Any) -> RateLimiter:
        # Budget tests check counting, not outages: a busy machine must not turn a slow
        # answer into a fail-open fallback (the outage tests set their own timeout).
        options.setdefault("socket_timeout", BUDGET_TEST_SOCKET_TIMEOUT_S)
        limiter = RateLimiter(
            limits, redis_url=self.redis_url, key_prefix=self.key_prefix, **options
        )
        self.made.append(limiter)
        return limiter

    def stored_keys(self) -> list[bytes]:
        assert self.redis_url is not None
        client = redis.Redis.from_url(self.redis_url)
        try:
            return list(client.scan_iter(match=f"{self.key_prefix}:*"))
        finally:
            client.close()


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest, key_prefix: str, run: Run) -> Iterator[Backend]:
    """In process, or the session's shared Redis under this test's own key prefix."""
    url = request.getfixturevalue("shared_redis") if request.param == "redis" else None
    backend = Backend(request.param, url, key_prefix)
    yield backend
    for limiter in backend.made:
        run(limiter.aclose())


async def spend_until_refused(limiter: RateLimiter, endpoint: str, client: str) -> int:
    for spent in range(1000):
        try:
            await limiter.hit(endpoint, client)
        except RateLimitExceeded:
            return spent
    raise AssertionError("never refused")


@pytest.mark.parametrize("strategy", STRATEGIES)
class TestBudgets:
    def test_exact_budget_counts_down(self, backend: Backend, strategy: str, run: Run) -> None:
        async def scenario() -> None:
            limiter = backend.limiter(LIMITS, strategy=strategy)
            remaining = []
            for _ in range(5):
                status = await limiter.hit("preview", "ip:1")
                assert status is not None and not status.exceeded
                remaining.append(status.remaining)
            assert remaining == [4, 3, 2, 1, 0]
            for _ in range(2):  # refusals spend nothing and keep refusing
                with pytest.raises(RateLimitExceeded) as refused:
                    await limiter.hit("preview", "ip:1")
                assert refused.value.status.remaining == 0
                assert refused.value.status.retry_after() >= 1
            assert not limiter.degraded

        run(scenario())

    def test_batch_refused_whole(self, backend: Backend, strategy: str, run: Run) -> None:
        async def scenario() -> None:
            limiter = backend.limiter(LIMITS, strategy=strategy)
            status = await limiter.hit("batch", "ip:1", cost=7)
            assert status is not None and status.remaining == 3
            with pytest.raises(RateLimitExceeded) as refused:
                await limiter.hit("batch", "ip:1", cost=5)
            assert refused.value.status.remaining == 3
            status = await limiter.hit("batch", "ip:1", cost=3)
            assert status is not None and status.remaining == 0

        run(scenario())

    def test_independent_endpoints_and_clients(
        self, backend: Backend, strategy: str, run: Run
    ) -> None:
        async def scenario() -> None:
            limiter = backend.limiter(LIMITS, strategy=strategy)
            assert await spend_until_refused(limiter, "remove", "ip:1") == 3
            assert await spend_until_refused(limiter, "preview", "ip:1") == 5
            assert await spend_until_refused(limiter, "remove", "ip:2") == 3

        run(scenario())

    def test_concurrent_hits_never_overspend(
        self, backend: Backend, strategy: str, run: Run
    ) -> None:
        async def scenario() -> int:
            limiter = backend.limiter({"remove": "10/hour"}, strategy=strategy)

            async def one() -> bool:
                try:
                    await limiter.hit("remove", "ip:1")
                except RateLimitExceeded:
                    return False
                return True

            return sum(await asyncio.gather(*(one() for _ in range(30))))

        assert run(scenario()) == 10

    def test_two_instances(self, backend: Backend, strategy: str, run: Run) -> None:
        async def scenario() -> None:
            first = backend.limiter(LIMITS, strategy=strategy)
            second = backend.limiter(LIMITS, strategy=strategy)
            await first.hit("remove", "ip:1")
            await first.hit("remove", "ip:1")
            if backend.redis_url is None:  # in-process: one budget per instance
                assert await spend_until_refused(second, "remove", "ip:1") == 3
            else:  # Redis: one budget for every replica
                assert await spend_until_refused(second, "remove", "ip:1") == 1
                with pytest.raises(RateLimitExceeded):
                    await first.hit("remove", "ip:1")

        run(scenario())

    def test_health_and_key_prefix(self, backend: Backend, strategy: str, run: Run) -> None:
        async def scenario() -> tuple[bool, str]:
            limiter = backend.limiter(LIMITS, strategy=strategy)
            await limiter.hit("remove", "ip:1")
            return await limiter.check_backend()

        ok, detail = run(scenario())
        assert ok
        if backend.redis_url is None:
            assert detail == "in-process limits"
        else:
            assert detail == "redis ok"
            assert backend.stored_keys(), "keys must live under the configured prefix"


# --- faults, on a private server only ------------------------------------------------


RETRY_INTERVAL_S = 5.0


@dataclass
class Clock:
    """The limiter's clock, moved by the test: past the retry interval without waiting."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def make_limiter(run: Run) -> Iterator[Callable[..., RateLimiter]]:
    """RateLimiter(...) whose connections are closed on the test's loop afterwards."""
    made: list[RateLimiter] = []

    def make(*args: Any, **options: Any) -> RateLimiter:
        made.append(RateLimiter(*args, **options))
        return made[-1]

    yield make
    for limiter in made:
        run(limiter.aclose())


@pytest.fixture
def outage_limiter_options(killable_redis: RedisServer, key_prefix: str) -> dict[str, Any]:
    return {
        "redis_url": killable_redis.url,
        "key_prefix": key_prefix,
        "retry_interval": RETRY_INTERVAL_S,
        "clock": Clock(),
    }


def test_outage_falls_back_and_recovers(
    killable_redis: RedisServer,
    outage_limiter_options: dict[str, Any],
    make_limiter: Callable[..., RateLimiter],
    run: Run,
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = outage_limiter_options["clock"]

    async def scenario() -> None:
        limiter = make_limiter({"remove": "5/hour"}, **outage_limiter_options)
        for _ in range(2):
            await limiter.hit("remove", "ip:1")
        assert not limiter.degraded

        killable_redis.stop()
        started = time.monotonic()
        status = await limiter.hit("remove", "ip:1")
        assert time.monotonic() - started < 1.0
        assert limiter.degraded
        assert status is not None and status.remaining == 4  # fresh in-process budget
        # Limits are still enforced, in process.
        assert await spend_until_refused(limiter, "remove", "ip:1") == 4
        started = time.monotonic()
        ok, detail = await limiter.check_backend()
        assert time.monotonic() - started < 2.0
        assert not ok and detail.startswith("redis unreachable")

        killable_redis.start()  # same port, empty (no persistence)
        with pytest.raises(RateLimitExceeded):  # in process until the retry interval is over
            await limiter.hit("remove", "ip:1")
        clock.now += RETRY_INTERVAL_S  # the next hit probes Redis
        status = await limiter.hit("remove", "ip:1")
        # The fallback budget is exhausted, so success proves we are on Redis again.
        assert status is not None and status.remaining == 4
        assert not limiter.degraded
        assert await limiter.check_backend() == (True, "redis ok")

    with caplog.at_level(logging.INFO, logger="bg_remover.redis"):
        run(scenario())
    levels = [r.levelname for r in caplog.records if r.name == "bg_remover.redis"]
    assert levels == ["WARNING", "INFO"]


def test_fail_closed_raises(
    killable_redis: RedisServer,
    outage_limiter_options: dict[str, Any],
    make_limiter: Callable[..., RateLimiter],
    run: Run,
) -> None:
    async def scenario() -> None:
        limiter = make_limiter({"remove": "5/hour"}, fail_open=False, **outage_limiter_options)
        assert await limiter.hit("remove", "ip:1") is not None
        killable_redis.stop()
        for _ in range(3):
            with pytest.raises(RedisUnavailable):
                await limiter.hit("remove", "ip:1")
        assert limiter.degraded
        killable_redis.start()
        with pytest.raises(RedisUnavailable):  # not probed before the retry interval
            await limiter.hit("remove", "ip:1")
        outage_limiter_options["clock"].now += RETRY_INTERVAL_S
        assert await limiter.hit("remove", "ip:1") is not None
        assert not limiter.degraded

    run(scenario())


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A port that accepts TCP connections (the kernel does) but never answers:
    a hung Redis, which only socket timeouts can detect."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"


def test_hung_redis_costs_one_timeout_per_probe(
    silent_server: str, key_prefix: str, make_limiter: Callable[..., RateLimiter], run: Run
) -> None:
    async def scenario() -> None:
        limiter = make_limiter(
            {"remove": "50/hour"},
            redis_url=silent_server,
            key_prefix=key_prefix,
            socket_timeout=0.2,
            retry_interval=60,
        )
        started = time.monotonic()
        await limiter.hit("remove", "ip:1")
        assert time.monotonic() - started < 1.0
        assert limiter.degraded
        started = time.monotonic()
        for _ in range(20):  # no request retries Redis before retry_interval
            await limiter.hit("remove", "ip:1")
        assert time.monotonic() - started < 0.2
        started = time.monotonic()
        ok, detail = await limiter.check_backend()
        assert time.monotonic() - started < 2.0
        assert not ok and "redis unreachable" in detail

    run(scenario())


def test_moving_window_costs_two_round_trips(
    private_redis: RedisServer, key_prefix: str, make_limiter: Callable[..., RateLimiter], run: Run
) -> None:
    """The figure quoted in RateLimiter's docstring, counted by Redis itself.

    commandstats also counts the commands the Lua scripts run; those are the only
    other commands allowed in the difference.
    """
    client = redis.Redis.from_url(private_redis.url)
    script_internal = {"lindex", "lpush", "ltrim", "expire", "info"}

    def calls() -> dict[str, int]:
        stats = client.info("commandstats")
        return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}

    async def hits(count: int) -> dict[str, int]:
        limiter = make_limiter(
            {"batch": "1000/hour"}, redis_url=private_redis.url, key_prefix=key_prefix
        )
        await limiter.hit("batch", "ip:warm-up")  # loads the scripts once
        before = calls()
        for _ in range(count):
            await limiter.hit("batch", "ip:1")
        after = calls()
        return {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)}

    try:
        sent = run(hits(10))
    finally:
        client.close()
    assert sent.pop("evalsha") == 20
    assert set(sent) <= script_internal
