"""Whether each Redis role answers: the probe behind `bg_remover_redis_up{role}` while no
request arrives, and the `/health` check that names the roles.

`limits` (budgets) uses RATE_LIMIT_REDIS_URL, `cache` (results) CACHE_REDIS_URL, each REDIS_URL
when unset (`application.wiring` builds them). Each role has its own breaker, its own
`bg_remover_redis_up{role}` (set by the breaker at once when Redis goes away or comes back, and
by these probes) and its own lines in the log.
"""

from __future__ import annotations

import asyncio

from cache import CacheStore, RedisStore
from operations import health
from ratelimit import RateLimiter
from redisroles import CACHE, LIMITS


async def redis_roles(limiter: RateLimiter, store: CacheStore | None) -> dict[str, bool | None]:
    """Each role -> its Redis answers a probe (which also moves its breaker), or None where
    the role has no Redis."""
    limits = (await limiter.check_backend())[0] if limiter.uses_redis else None
    cache = (await store.check())[0] if isinstance(store, RedisStore) else None
    return {LIMITS: limits, CACHE: cache}


async def redis_check(
    limiter: RateLimiter, store: CacheStore | None, fail_open: bool
) -> health.Check:
    """One check in the contract's shape, a detail per role: `limits: …; cache: …`. Budgets
    down while failing closed make the service unhealthy; anything else down, degraded."""
    limits, cache = await asyncio.gather(
        limiter.check_backend() if limiter.enabled else _constant("off"),
        store.check() if store is not None else _constant("off"),
    )
    return health.Check(
        limits[0] and cache[0],
        f"limits: {limits[1]}; cache: {cache[1]}",
        critical=not limits[0] and not fail_open,
    )


async def _constant(detail: str) -> tuple[bool, str]:
    return True, detail
