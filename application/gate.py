"""The gate of every rate-limited request, passed once its body has arrived: a slot among the
MAX_CONCURRENCY requests in flight (503 `overloaded` past it), then the client's budget for the
route, spent before anything else of the request is looked at (the contract's order:
401 -> 413 -> 429 -> 400).

The limiter's outcomes become the contract's here: the rate-limit headers on the answer
whatever its outcome, 429 `rate_limited` (counted in `bg_remover_rate_limited_total`), and 503
`unavailable` when Redis is down and limits fail closed.

A cost may be a fraction of a unit (remove.bg's preview: a quarter): a budget counted in parts
(`routes.UNIT_PARTS`) is kept by the limiter in parts, and told to the client in units.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from fractions import Fraction

from application.admission import Admission
from application.replies import Caller
from contract import headers, routes
from contract.errors import RateLimited, Unavailable
from operations.metrics import RATE_LIMITED
from ratelimit import RateLimiter, RateLimitExceeded, RateLimitStatus, RedisUnavailable


class RequestGate:
    def __init__(self, admission: Admission, limiter: RateLimiter) -> None:
        self.admission = admission
        self.limiter = limiter

    @asynccontextmanager
    async def request(
        self, caller: Caller, route: str, cost: Fraction | int = 1
    ) -> AsyncIterator[None]:
        """A request of `route` at work, spending `cost` units of the client's budget."""
        with self.admission.request():
            await self._spend(caller, routes.BUDGETS[route], cost)
            yield

    async def remaining(self, caller: Caller, route: str) -> Fraction | None:
        """What is left of the client's budget for `route`, in units, spending none (None:
        unlimited)."""
        budget = routes.BUDGETS[route]
        try:
            status = await self.limiter.peek(budget, caller.client, loadtest=caller.loadtest)
        except RedisUnavailable:
            raise Unavailable("The budget cannot be read: Redis is unreachable") from None
        return Fraction(status.remaining, routes.parts_of(budget)) if status is not None else None

    async def _spend(self, caller: Caller, budget: str, cost: Fraction | int) -> None:
        parts = routes.parts_of(budget)
        try:
            status = await self.limiter.hit(
                budget, caller.client, int(cost * parts), loadtest=caller.loadtest
            )
        except RateLimitExceeded as exceeded:
            caller.headers.update(rate_limit_headers(exceeded.status, parts))
            RATE_LIMITED.labels(endpoint=budget).inc()
            left = units(exceeded.status.remaining, parts)
            raise RateLimited(
                f"Limit of {units(exceeded.status.limit, parts)} per hour reached: this request "
                f"needs {units(cost * parts, parts)}, {left} left"
            ) from None
        except RedisUnavailable:
            raise Unavailable("Rate limits cannot be checked: Redis is unreachable") from None
        if status is not None:
            caller.headers.update(rate_limit_headers(status, parts))


def units(count: Fraction | int, parts: int = 1) -> str:
    """`count` parts as units: `10`, `9.75`."""
    value = Fraction(count) / parts
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"


def rate_limit_headers(
    status: RateLimitStatus, parts: int = 1, now: float | None = None
) -> dict[str, str]:
    """The contract's `X-RateLimit-*` headers, in units of a budget kept in `parts`, plus
    `Retry-After` when the budget is spent."""
    described = {
        headers.RATE_LIMIT_LIMIT: units(status.limit, parts),
        headers.RATE_LIMIT_REMAINING: units(status.remaining, parts),
        headers.RATE_LIMIT_RESET: str(status.reset_at),
    }
    if status.exceeded:
        described[headers.RETRY_AFTER] = str(status.retry_after(now))
    return described
