"""The request gate (application/gate.py): a slot, then the budget, with the limiter's outcomes
turned into the contract's headers and errors. On the real in-process limiter, and on a limiter
whose Redis does not answer."""

from __future__ import annotations

import asyncio
from fractions import Fraction
from typing import Any

import pytest
from prometheus_client import REGISTRY

from application.admission import MIB, Admission
from application.gate import RequestGate, rate_limit_headers
from application.replies import Caller
from contract import routes
from contract.errors import Overloaded, RateLimited, Unavailable
from ratelimit import RateLimiter, RateLimitStatus
from tests.serving import free_port

BUDGET = routes.BUDGETS[routes.PREVIEW]


def gate(limit: int = 2, max_requests: int = 4, **limiter: Any) -> RequestGate:
    admission = Admission(max_requests=max_requests, memory_budget=MIB, wait_s=1)
    return RequestGate(admission, RateLimiter({BUDGET: f"{limit}/hour"}, **limiter))


def rate_limited() -> float:
    return REGISTRY.get_sample_value("bg_remover_rate_limited_total", {"endpoint": BUDGET}) or 0.0


def test_the_budget_is_spent_and_told_in_headers_then_refused() -> None:
    async def scenario() -> None:
        gated, caller = gate(limit=2), Caller("ip:1")
        for left in ("1", "0"):
            async with gated.request(caller, routes.PREVIEW):
                assert caller.headers["X-RateLimit-Remaining"] == left
        before = rate_limited()
        with pytest.raises(RateLimited, match="needs 1, 0 left"):
            async with gated.request(caller, routes.PREVIEW):
                raise AssertionError("a refused request never runs")
        assert rate_limited() == before + 1
        assert int(caller.headers["Retry-After"]) >= 1
        assert await gated.remaining(caller, routes.PREVIEW) == 0
        assert await gated.remaining(Caller("ip:2"), routes.PREVIEW) == 2

    asyncio.run(scenario())


def test_a_cost_is_spent_whole_or_not_at_all() -> None:
    async def scenario() -> None:
        gated, caller = gate(limit=3), Caller("ip:1")
        with pytest.raises(RateLimited, match="needs 5, 3 left"):
            async with gated.request(caller, routes.PREVIEW, cost=5):
                pass
        assert await gated.remaining(caller, routes.PREVIEW) == 3

    asyncio.run(scenario())


def test_the_slot_comes_before_the_budget() -> None:
    """A request refused for the concurrency cap spends nothing."""

    async def scenario() -> None:
        gated, caller = gate(limit=5, max_requests=1), Caller("ip:1")
        async with gated.request(caller, routes.PREVIEW):
            with pytest.raises(Overloaded):
                async with gated.request(caller, routes.PREVIEW):
                    pass
        assert await gated.remaining(caller, routes.PREVIEW) == 4

    asyncio.run(scenario())


def test_a_load_test_client_spends_at_the_load_test_limit() -> None:
    async def scenario() -> None:
        gated = gate(limit=1, loadtest_limit="3/hour")
        tester = Caller("loadtest:abc", loadtest=True)
        async with gated.request(tester, routes.PREVIEW):
            assert tester.headers["X-RateLimit-Limit"] == "3"
        assert await gated.remaining(tester, routes.PREVIEW) == 2

    asyncio.run(scenario())


def test_budgets_that_cannot_be_kept_are_unavailable() -> None:
    """Redis does not answer and limits fail closed: 503, whether spending or reading."""

    async def scenario() -> None:
        dead_redis = f"redis://127.0.0.1:{free_port()}/0"
        gated = gate(redis_url=dead_redis, fail_open=False, socket_timeout=0.2)
        with pytest.raises(Unavailable, match="Rate limits cannot be checked"):
            async with gated.request(Caller("ip:1"), routes.PREVIEW):
                pass
        with pytest.raises(Unavailable, match="budget cannot be read"):
            await gated.remaining(Caller("ip:1"), routes.PREVIEW)
        await gated.limiter.aclose()

    asyncio.run(scenario())


def test_headers_name_the_budget_and_add_retry_after_only_when_spent() -> None:
    status = RateLimitStatus(limit=10, remaining=9, reset_at=1_700_000_000)
    assert rate_limit_headers(status) == {
        "X-RateLimit-Limit": "10",
        "X-RateLimit-Remaining": "9",
        "X-RateLimit-Reset": "1700000000",
    }
    spent = RateLimitStatus(limit=10, remaining=0, reset_at=1_700_000_100, exceeded=True)
    assert rate_limit_headers(spent, now=1_700_000_000)["Retry-After"] == "100"


def test_a_budget_kept_in_quarters_is_spent_and_told_in_units() -> None:
    """remove.bg's preview costs a quarter of the /remove-background budget."""

    async def scenario() -> None:
        budget = routes.BUDGETS[routes.REMOVEBG]
        parts = routes.parts_of(budget)
        limiter = RateLimiter(
            {budget: f"{2 * parts}/hour"}, loadtest_limit={budget: f"{5 * parts}/hour"}
        )
        admission = Admission(max_requests=4, memory_budget=MIB, wait_s=1)
        gated, caller = RequestGate(admission, limiter), Caller("key:a")
        async with gated.request(caller, routes.REMOVEBG, Fraction(1, 4)):
            assert caller.headers["X-RateLimit-Limit"] == "2"
            assert caller.headers["X-RateLimit-Remaining"] == "1.75"
        async with gated.request(caller, routes.REMOVE):
            assert caller.headers["X-RateLimit-Remaining"] == "0.75"
        with pytest.raises(RateLimited, match=r"needs 1, 0\.75 left"):
            async with gated.request(caller, routes.REMOVEBG):
                raise AssertionError("a refused request never runs")
        assert await gated.remaining(caller, routes.REMOVE) == Fraction(3, 4)
        tester = Caller("loadtest:a", loadtest=True)
        async with gated.request(tester, routes.REMOVE):
            assert tester.headers["X-RateLimit-Limit"] == "5"  # the load-test limit, in units

    asyncio.run(scenario())
