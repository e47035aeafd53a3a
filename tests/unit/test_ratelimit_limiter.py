"""RateLimiter on the in-process MemoryStorage (no Redis configured)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from ratelimit import RateLimiter, RateLimitExceeded, RateLimitStatus

T = TypeVar("T")
STRATEGIES = ["moving-window", "fixed-window", "sliding-window-counter"]
LIMITS = {"remove": "3/hour", "preview": "5/hour", "batch": "10/hour"}


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def spend_until_refused(limiter: RateLimiter, endpoint: str, client: str) -> int:
    for spent in range(1000):
        try:
            await limiter.hit(endpoint, client)
        except RateLimitExceeded:
            return spent
    raise AssertionError("never refused")


@pytest.fixture(params=STRATEGIES)
def strategy(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_exact_budget_and_countdown(strategy: str) -> None:
    async def scenario() -> None:
        limiter = RateLimiter(LIMITS, strategy=strategy)
        remaining = []
        for _ in range(5):
            status = await limiter.hit("preview", "ip:1")
            assert status is not None and status.limit == 5 and not status.exceeded
            remaining.append(status.remaining)
        assert remaining == [4, 3, 2, 1, 0]
        with pytest.raises(RateLimitExceeded) as refused:
            await limiter.hit("preview", "ip:1")
        assert refused.value.status.exceeded
        assert refused.value.status.remaining == 0
        assert refused.value.status.limit == 5
        # Refusals spend nothing and keep refusing.
        with pytest.raises(RateLimitExceeded):
            await limiter.hit("preview", "ip:1")

    run(scenario())


def test_endpoints_and_clients_are_independent(strategy: str) -> None:
    async def scenario() -> None:
        limiter = RateLimiter(LIMITS, strategy=strategy)
        assert await spend_until_refused(limiter, "remove", "ip:1") == 3
        assert await spend_until_refused(limiter, "preview", "ip:1") == 5
        assert await spend_until_refused(limiter, "remove", "ip:2") == 3
        assert await spend_until_refused(limiter, "remove", "key:abc") == 3

    run(scenario())


def test_batch_refused_whole_spends_nothing(strategy: str) -> None:
    async def scenario() -> None:
        limiter = RateLimiter(LIMITS, strategy=strategy)
        status = await limiter.hit("batch", "ip:1", cost=7)
        assert status is not None and status.remaining == 3
        with pytest.raises(RateLimitExceeded) as refused:
            await limiter.hit("batch", "ip:1", cost=5)
        assert refused.value.status.remaining == 3
        status = await limiter.hit("batch", "ip:1", cost=3)
        assert status is not None and status.remaining == 0
        with pytest.raises(RateLimitExceeded):
            await limiter.hit("batch", "ip:1")

    run(scenario())


def test_cost_above_the_whole_limit_is_refused(strategy: str) -> None:
    async def scenario() -> None:
        limiter = RateLimiter(LIMITS, strategy=strategy)
        with pytest.raises(RateLimitExceeded):
            await limiter.hit("batch", "ip:1", cost=11)
        status = await limiter.hit("batch", "ip:1", cost=10)
        assert status is not None and status.remaining == 0

    run(scenario())


def test_disabled_and_unlimited_endpoints_return_none() -> None:
    async def scenario() -> None:
        disabled = RateLimiter(LIMITS, enabled=False)
        for _ in range(20):
            assert await disabled.hit("remove", "ip:1") is None
        limiter = RateLimiter(LIMITS)
        for _ in range(20):
            assert await limiter.hit("presets", "ip:1") is None

    run(scenario())


def test_reset_and_retry_after_are_consistent(strategy: str) -> None:
    async def scenario() -> None:
        limiter = RateLimiter({"remove": "2/hour"}, strategy=strategy)
        before = time.time()
        first = await limiter.hit("remove", "ip:1")
        await limiter.hit("remove", "ip:1")
        with pytest.raises(RateLimitExceeded) as refused:
            await limiter.hit("remove", "ip:1")
        after = time.time()
        status = refused.value.status
        assert first is not None
        assert before < status.reset_at <= after + 3600 + 1
        assert first.reset_at <= status.reset_at
        retry = status.retry_after(after)
        assert after + retry >= status.reset_at
        assert retry <= 3601
        assert (status.limit, status.remaining, status.exceeded) == (2, 0, True)

    run(scenario())


def test_moving_window_reset_is_oldest_entry_plus_window() -> None:
    async def scenario() -> None:
        limiter = RateLimiter({"remove": "2/hour"})
        now = time.time()
        status = await limiter.hit("remove", "ip:1")
        assert status is not None
        assert 0 <= status.reset_at - (now + 3600) <= 1

    run(scenario())


@pytest.mark.parametrize(
    ("reset_at", "now", "expected"),
    [(100, 99.5, 1), (100, 50.2, 50), (100, 100.0, 1), (100, 150.0, 1), (100, 40.0, 60)],
)
def test_retry_after(reset_at: int, now: float, expected: int) -> None:
    status = RateLimitStatus(limit=1, remaining=0, reset_at=reset_at, exceeded=True)
    assert status.retry_after(now) == expected
    assert now + status.retry_after(now) >= reset_at or status.retry_after(now) == 1


def test_invalid_configuration_fails_early() -> None:
    with pytest.raises(ValueError, match="strategy"):
        RateLimiter(LIMITS, strategy="token-bucket")
    with pytest.raises(ValueError):
        RateLimiter({"remove": "ten per fortnight"})


def test_cost_must_be_positive() -> None:
    async def scenario() -> None:
        limiter = RateLimiter(LIMITS)
        with pytest.raises(ValueError):
            await limiter.hit("batch", "ip:1", cost=0)

    run(scenario())


def test_in_process_backend_health() -> None:
    limiter = RateLimiter(LIMITS)
    assert run(limiter.check_backend()) == (True, "in-process limits")
    assert limiter.degraded is False


def test_concurrent_hits_never_overspend(strategy: str) -> None:
    async def scenario() -> None:
        limiter = RateLimiter({"remove": "10/hour"}, strategy=strategy)

        async def one() -> bool:
            try:
                await limiter.hit("remove", "ip:1")
            except RateLimitExceeded:
                return False
            return True

        results = await asyncio.gather(*(one() for _ in range(30)))
        assert sum(results) == 10

    run(scenario())


def test_peek_reports_without_spending() -> None:
    import asyncio

    from ratelimit import RateLimiter

    async def scenario() -> tuple[int, int, int]:
        limiter = RateLimiter({"remove-background": "3/hour"})
        before = await limiter.peek("remove-background", "ip:1.2.3.4")
        await limiter.hit("remove-background", "ip:1.2.3.4")
        after = await limiter.peek("remove-background", "ip:1.2.3.4")
        again = await limiter.peek("remove-background", "ip:1.2.3.4")
        assert before is not None and after is not None and again is not None
        return before.remaining, after.remaining, again.remaining

    assert asyncio.run(scenario()) == (3, 2, 2)
    assert asyncio.run(RateLimiter({}).peek("remove-background", "ip:1.2.3.4")) is None


def test_a_load_test_client_has_the_load_test_limit_on_limited_endpoints_only() -> None:
    async def scenario() -> None:
        limiter = RateLimiter(LIMITS, loadtest_limit="7/hour")
        status = await limiter.hit("remove", "loadtest:a", loadtest=True)
        assert status is not None and status.limit == 7 and status.remaining == 6
        peeked = await limiter.peek("remove", "loadtest:a", loadtest=True)
        assert peeked is not None and peeked.remaining == 6
        ordinary = await limiter.hit("remove", "key:a")  # everyone else: the endpoint's limit
        assert ordinary is not None and ordinary.limit == 3
        assert await limiter.hit("unlisted", "loadtest:a", loadtest=True) is None

    run(scenario())
