"""The gate of every rate-limited request, passed once its body has arrived: a slot among the
MAX_CONCURRENCY requests in flight (503 `overloaded` past it), then the client's budget for the
route, spent before anything else of the request is looked at (the contract's order:
401 -> 413 -> 429 -> 400).

The limiter's outcomes become the contract's here: the rate-limit headers on the answer
whatever its outcome, 429 `rate_limited` (counted in `bg_remover_rate_limited_total`), and 503
`unavailable` when Redis is down and limits fail closed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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
    async def request(self, caller: Caller, route: str, cost: int = 1) -> AsyncIterator[None]:
        """A request of `route` at work, spending `cost` units of the client's budget."""
        with self.admission.request():
            await self._spend(caller, routes.BUDGETS[route], cost)
            yield

    async def remaining(self, caller: Caller, route: str) -> int | None:
        """What is left of the client's budget for `route`, spending none (None: unlimited)."""
        try:
            status = await self.limiter.peek(
                routes.BUDGETS[route], caller.client, loadtest=caller.loadtest
            )
        except RedisUnavailable:
            raise Unavailable("The budget cannot be read: Redis is unreachable") from None
        return status.remaining if status is not None else None

    async def _spend(self, caller: Caller, budget: str, cost: int) -> None:
        try:
            status = await self.limiter.hit(budget, caller.client, cost, loadtest=caller.loadtest)
        except RateLimitExceeded as exceeded:
            caller.headers.update(rate_limit_headers(exceeded.status))
            RATE_LIMITED.labels(endpoint=budget).inc()
            raise RateLimited(
                f"Limit of {exceeded.status.limit} per hour reached: this request needs {cost}, "
                f"{exceeded.status.remaining} left"
            ) from None
        except RedisUnavailable:
            raise Unavailable("Rate limits cannot be checked: Redis is unreachable") from None
        if status is not None:
            caller.headers.update(rate_limit_headers(status))


def rate_limit_headers(status: RateLimitStatus, now: float | None = None) -> dict[str, str]:
    """The contract's `X-RateLimit-*` headers, plus `Retry-After` when the budget is spent."""
    described = {
        headers.RATE_LIMIT_LIMIT: str(status.limit),
        headers.RATE_LIMIT_REMAINING: str(status.remaining),
        headers.RATE_LIMIT_RESET: str(status.reset_at),
    }
    if status.exceeded:
        described[headers.RETRY_AFTER] = str(status.retry_after(now))
    return described
