"""Spending a client's budget before a route's parameters are looked at (contract order:
401 -> 413 -> 429 -> 400), and the headers that follow every later response."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from starlette.types import Scope

from contract.errors import RateLimited, Unavailable
from gateway.response_headers import add_response_headers
from operations.metrics import RATE_LIMITED
from ratelimit import RateLimiter, RateLimitExceeded, RedisUnavailable


async def spend_budget(limiter: RateLimiter, scope: Scope, endpoint: str, cost: int) -> None:
    client = scope.get("state", {}).get("client_key", "unknown")
    try:
        status = await limiter.hit(endpoint, client, cost)
    except RateLimitExceeded as exceeded:
        add_response_headers(scope, exceeded.status.headers())
        RATE_LIMITED.labels(endpoint=endpoint).inc()
        left = exceeded.status.remaining
        raise RateLimited(
            f"Limit of {exceeded.status.limit} per hour reached: this request needs {cost}, "
            f"{left} left"
        ) from None
    except RedisUnavailable:
        raise Unavailable("Rate limits cannot be checked: Redis is unreachable") from None
    if status is not None:
        add_response_headers(scope, status.headers())


def budget(limiter: RateLimiter, endpoint: str, per_file_field: str | None = None) -> Any:
    """A route dependency spending one unit, or one per upload in `per_file_field`."""

    async def spend(request: Request) -> None:
        cost = 1
        if per_file_field is not None:
            cost = max(1, len((await request.form()).getlist(per_file_field)))
        await spend_budget(limiter, request.scope, endpoint, cost)

    return Depends(spend)
